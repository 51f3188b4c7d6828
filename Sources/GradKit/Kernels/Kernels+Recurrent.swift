// GradKit — dispatch of the fused LSTM and GRU cell steps. SPDX-License-Identifier: MIT
//
// Contracts (equations, shapes, strides, aliasing) are ck_recurrent.h's; the
// twins are in SwiftKernels+Recurrent.swift. Callers check shapes.
import CKernels

extension Kernels {
    /// One LSTM step forward: gates from `inputGates` (rows `inputStride` apart)
    /// plus `hiddenGates`, then `cell`, `hidden` and the `saved` values the
    /// backward step reads (see `ck_lstm_cell_forward_f32`).
    static func lstmCellForward(
        batch: Int, hidden: Int, hiddenOutput: FloatPointer, cellOutput: FloatPointer, saved: FloatPointer,
        inputGates: ConstFloatPointer, inputStride: Int, hiddenGates: ConstFloatPointer, previousCell: ConstFloatPointer
    ) {
        if useC {
            ck_lstm_cell_forward_f32(
                batch, hidden, hiddenOutput, cellOutput, saved, inputGates, inputStride, hiddenGates, previousCell)
        } else {
            SwiftKernels.lstmCellForward(
                batch: batch, hidden: hidden, hiddenOutput: hiddenOutput, cellOutput: cellOutput, saved: saved,
                inputGates: inputGates, inputStride: inputStride, hiddenGates: hiddenGates, previousCell: previousCell)
        }
    }

    /// One LSTM step backward: the gates' gradient into `inputGatesGradient`
    /// (rows `inputGradientStride` apart) and `hiddenGatesGradient`; `cellGradient`
    /// goes from c_t's to c_{t-1}'s in place (see `ck_lstm_cell_backward_f32`).
    static func lstmCellBackward(
        batch: Int, hidden: Int, inputGatesGradient: FloatPointer, inputGradientStride: Int,
        hiddenGatesGradient: FloatPointer, cellGradient: FloatPointer, outputGradient: ConstFloatPointer,
        outputGradientStride: Int, hiddenGradient: ConstFloatPointer, saved: ConstFloatPointer,
        previousCell: ConstFloatPointer
    ) {
        if useC {
            ck_lstm_cell_backward_f32(
                batch, hidden, inputGatesGradient, inputGradientStride, hiddenGatesGradient, cellGradient,
                outputGradient, outputGradientStride, hiddenGradient, saved, previousCell)
        } else {
            SwiftKernels.lstmCellBackward(
                batch: batch, hidden: hidden, inputGatesGradient: inputGatesGradient,
                inputGradientStride: inputGradientStride, hiddenGatesGradient: hiddenGatesGradient,
                cellGradient: cellGradient, outputGradient: outputGradient, outputGradientStride: outputGradientStride,
                hiddenGradient: hiddenGradient, saved: saved, previousCell: previousCell)
        }
    }

    /// One GRU step forward: `hidden` and the `saved` values the backward step
    /// reads (see `ck_gru_cell_forward_f32`).
    static func gruCellForward(
        batch: Int, hidden: Int, hiddenOutput: FloatPointer, saved: FloatPointer, inputGates: ConstFloatPointer,
        inputStride: Int, hiddenGates: ConstFloatPointer, previousHidden: ConstFloatPointer
    ) {
        if useC {
            ck_gru_cell_forward_f32(batch, hidden, hiddenOutput, saved, inputGates, inputStride, hiddenGates, previousHidden)
        } else {
            SwiftKernels.gruCellForward(
                batch: batch, hidden: hidden, hiddenOutput: hiddenOutput, saved: saved, inputGates: inputGates,
                inputStride: inputStride, hiddenGates: hiddenGates, previousHidden: previousHidden)
        }
    }

    /// One GRU step backward: the gates' gradients, and `hiddenGradient` from
    /// h_t's (from later steps) to h_{t-1}'s through the update gate, in place
    /// (see `ck_gru_cell_backward_f32`).
    static func gruCellBackward(
        batch: Int, hidden: Int, inputGatesGradient: FloatPointer, inputGradientStride: Int,
        hiddenGatesGradient: FloatPointer, hiddenGradient: FloatPointer, outputGradient: ConstFloatPointer,
        outputGradientStride: Int, saved: ConstFloatPointer, previousHidden: ConstFloatPointer
    ) {
        if useC {
            ck_gru_cell_backward_f32(
                batch, hidden, inputGatesGradient, inputGradientStride, hiddenGatesGradient, hiddenGradient,
                outputGradient, outputGradientStride, saved, previousHidden)
        } else {
            SwiftKernels.gruCellBackward(
                batch: batch, hidden: hidden, inputGatesGradient: inputGatesGradient,
                inputGradientStride: inputGradientStride, hiddenGatesGradient: hiddenGatesGradient,
                hiddenGradient: hiddenGradient, outputGradient: outputGradient,
                outputGradientStride: outputGradientStride, saved: saved, previousHidden: previousHidden)
        }
    }
}
