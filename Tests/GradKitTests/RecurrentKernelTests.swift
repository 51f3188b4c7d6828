// The fused LSTM and GRU cell kernels: C against the Swift twins, on every instruction-set path.
import Testing

@_spi(Benchmarks) @testable import GradKit

/// Unit roundoff of Float, 2^-24: one correctly rounded operation errs by at most u|result|.
private let u: Float = 0x1p-24

/// One step's operands, laid out as the recurrence lays them out: the input
/// gates are step 1 of a `[batch, 3, gates]` projection (rows `3·gates` apart),
/// the output gradient step 1 of a `[batch, 3, hidden]` one.
private struct StepOperands {
    let batch: Int, hidden: Int, gates: Int
    var inputStride: Int { 3 * gates }
    var outputStride: Int { 3 * hidden }
    let projection: [Float]  // [batch, 3, gates]; step 1 is read
    let hiddenGates: [Float]  // [batch, gates]
    let previous: [Float]  // [batch, hidden]: c_{t-1} (LSTM) or h_{t-1} (GRU)
    let outputGradient: [Float]  // [batch, 3, hidden]; step 1 is read
    let laterGradient: [Float]  // [batch, hidden]: of h_t (LSTM: and of c_t, below) from step t+1
    let laterCellGradient: [Float]

    init(_ cell: RecurrentCell, batch: Int, hidden: Int, seed: UInt64) {
        self.batch = batch
        self.hidden = hidden
        gates = cell.gateCount * hidden
        // Preactivations up to ±6 (saturated and linear regions both), states up to ±2.
        projection = randomScalars(batch * 3 * cell.gateCount * hidden, seed: seed, in: -3...3)
        hiddenGates = randomScalars(batch * cell.gateCount * hidden, seed: seed + 1, in: -3...3)
        previous = randomScalars(batch * hidden, seed: seed + 2, in: -2...2)
        outputGradient = randomScalars(batch * 3 * hidden, seed: seed + 3)
        laterGradient = randomScalars(batch * hidden, seed: seed + 4)
        laterCellGradient = randomScalars(batch * hidden, seed: seed + 5)
    }
}

/// The forward step's outputs on one backend: h, c (LSTM) and the saved values.
private func forward(_ cell: RecurrentCell, _ s: StepOperands, backend: KernelBackend) -> (h: [Float], c: [Float], saved: [Float]) {
    let plane = s.batch * s.hidden
    var c = [Float](repeating: .nan, count: plane)
    var saved = [Float](repeating: .nan, count: s.batch * cell.savedCount * s.hidden)
    let h = output(count: plane, backend: backend) { h in
        c.withUnsafeMutableBufferPointer { c in
            saved.withUnsafeMutableBufferPointer { saved in
                let x = s.projection.withUnsafeBufferPointer { $0.baseAddress! + s.gates }
                withExtendedLifetime(s.projection) {
                    switch cell {
                    case .lstm:
                        Kernels.lstmCellForward(
                            batch: s.batch, hidden: s.hidden, hiddenOutput: h, cellOutput: c.baseAddress!,
                            saved: saved.baseAddress!, inputGates: x, inputStride: s.inputStride,
                            hiddenGates: s.hiddenGates, previousCell: s.previous)
                    case .gru:
                        Kernels.gruCellForward(
                            batch: s.batch, hidden: s.hidden, hiddenOutput: h, saved: saved.baseAddress!, inputGates: x,
                            inputStride: s.inputStride, hiddenGates: s.hiddenGates, previousHidden: s.previous)
                    case .elmanTanh, .elmanReLU: fatalError("the fused gate kernels are the gated cells' only")
                    }
                }
            }
        }
    }
    return (h, cell == .lstm ? c : [], saved)
}

/// The backward step's outputs on one backend, from the given saved values:
/// the input gates' gradient (rows strided in a [batch, 3, gates] buffer whose
/// other steps must stay untouched), the recurrent gates' gradient, and the
/// state gradient written in place (c_{t-1}'s for the LSTM, the direct part of
/// h_{t-1}'s for the GRU).
private func backward(
    _ cell: RecurrentCell, _ s: StepOperands, saved: [Float], backend: KernelBackend
) -> (inputGates: [Float], hiddenGates: [Float], state: [Float]) {
    var inputGates = [Float](repeating: 7, count: s.batch * 3 * s.gates)
    var state = cell == .lstm ? s.laterCellGradient : s.laterGradient
    let hiddenGates = output(count: s.batch * s.gates, backend: backend) { dhg in
        inputGates.withUnsafeMutableBufferPointer { dxg in
            state.withUnsafeMutableBufferPointer { state in
                let dy = s.outputGradient.withUnsafeBufferPointer { $0.baseAddress! + s.hidden }
                withExtendedLifetime(s.outputGradient) {
                    switch cell {
                    case .lstm:
                        Kernels.lstmCellBackward(
                            batch: s.batch, hidden: s.hidden, inputGatesGradient: dxg.baseAddress! + s.gates,
                            inputGradientStride: s.inputStride, hiddenGatesGradient: dhg, cellGradient: state.baseAddress!,
                            outputGradient: dy, outputGradientStride: s.outputStride, hiddenGradient: s.laterGradient,
                            saved: saved, previousCell: s.previous)
                    case .gru:
                        Kernels.gruCellBackward(
                            batch: s.batch, hidden: s.hidden, inputGatesGradient: dxg.baseAddress! + s.gates,
                            inputGradientStride: s.inputStride, hiddenGatesGradient: dhg, hiddenGradient: state.baseAddress!,
                            outputGradient: dy, outputGradientStride: s.outputStride, saved: saved,
                            previousHidden: s.previous)
                    case .elmanTanh, .elmanReLU: fatalError("the fused gate kernels are the gated cells' only")
                    }
                }
            }
        }
    }
    return (inputGates, hiddenGates, state)
}

/// `|actual - expected| <= bound` elementwise, lengths first.
private func expectWithin(
    _ actual: [Float], _ expected: [Float], _ bound: [Float], _ context: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count && expected.count == bound.count, "lengths \(context)", sourceLocation: sourceLocation)
    guard actual.count == expected.count, expected.count == bound.count else { return }
    let first = actual.indices.first { !(Swift.abs(actual[$0] - expected[$0]) <= bound[$0]) }
    #expect(
        first == nil,
        "element \(first ?? -1): \(first.map { actual[$0] } ?? 0) vs \(first.map { expected[$0] } ?? 0), bound \(first.map { bound[$0] } ?? 0) \(context)",
        sourceLocation: sourceLocation)
}

/// The columns `range` of every row of a row-major `[rows, n]` array.
private func columns(_ values: [Float], _ range: Range<Int>, rows: Int) -> [Float] {
    let width = rows == 0 ? 0 : values.count / rows
    return (0..<rows).flatMap { r in values[(r * width + range.lowerBound)..<(r * width + range.upperBound)] }
}

/// Within `ulps` units in the last place of the twin's values.
private func expectWithinULPs(
    _ actual: [Float], _ expected: [Float], _ ulps: Double, _ context: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "lengths \(context)", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let first = actual.indices.first { !(ulpDistance(actual[$0], Double(expected[$0])) <= ulps) }
    #expect(first == nil, "element \(first ?? -1): \(first.map { actual[$0] } ?? 0) vs \(first.map { expected[$0] } ?? 0) \(context)", sourceLocation: sourceLocation)
}

/// Batch and hidden sizes: the enumerated sizes (SIMD edges, odd tails) at
/// batch 1 and 3, and one shape large enough to be split across threads.
private let stepShapes: [(batch: Int, hidden: Int)] = enumeratedSizes.flatMap { [(1, $0), (3, $0)] } + [(67, 257)]

@Suite("Fused recurrent cells: C kernels against their Swift twins")
struct RecurrentKernelTests {
    // Forward bounds. Sigmoid and tanh in C are within 2.5 ulp of the correctly
    // rounded value (ck_math.h), the twins' within 0.5 ulp: the activations of
    // both sides differ by at most 4 ulp ≤ 8u|a| (an ulp of x is at most 2u|x|);
    // the sums of preactivations are the same operations on the same operands.
    // What follows is propagated through the cell's operations, each rounded once
    // on either side (an extra u|result| each), from the twin's values.

    @Test("LSTM step forward: gates within 4 ulp, c, tanh c and h within the propagated bound, every ISA")
    func lstmForward() {
        for (index, shape) in stepShapes.enumerated() {
            let s = StepOperands(.lstm, batch: shape.batch, hidden: shape.hidden, seed: UInt64(index) * 10 + 1)
            let reference = forward(.lstm, s, backend: .swift)
            let h = s.hidden
            // c = fl(fl(f c') + fl(i g)): |Δ(f c')| ≤ (8u + 2u)|f c'|, |Δ(i g)| ≤ (16u + 2u)|i g|, and the
            // sum's own rounding 2u|c| ≤ 2u(|f c'| + |i g|): in all at most 24u (|f c'| + |i g|).
            // tanh c: tanh is 1-Lipschitz, plus 4 ulp ≤ 8u|tanh c| (10u leaves room for Δc moving the ulp).
            // h = fl(o tanh c): |Δh| ≤ 8u|h| + |o| |Δ tanh c| + 2u|h|, so 11u|h| + |o| Δ(tanh c).
            var cellBound: [Float] = [], tanhBound: [Float] = [], hiddenBound: [Float] = []
            for r in 0..<s.batch {
                for j in 0..<h {
                    let saved = reference.saved, base = r * 5 * h
                    let i = saved[base + j], f = saved[base + h + j], g = saved[base + 2 * h + j]
                    let o = saved[base + 3 * h + j], tc = saved[base + 4 * h + j]
                    let dc = 24 * u * (Swift.abs(f * s.previous[r * h + j]) + Swift.abs(i * g)) + Float.leastNormalMagnitude
                    let dtc = dc + 10 * u * Swift.abs(tc) + Float.leastNormalMagnitude
                    cellBound.append(dc)
                    tanhBound.append(dtc)
                    hiddenBound.append(11 * u * Swift.abs(reference.h[r * h + j]) + Swift.abs(o) * dtc + Float.leastNormalMagnitude)
                }
            }
            forEachInstructionSet { isa in
                let fast = forward(.lstm, s, backend: .c)
                let context = "batch \(s.batch) hidden \(h) \(isa)"
                let gates = 0..<(4 * h), tanh = (4 * h)..<(5 * h)
                expectWithinULPs(columns(fast.saved, gates, rows: s.batch), columns(reference.saved, gates, rows: s.batch), 4, "i, f, g, o " + context)
                expectWithin(fast.c, reference.c, cellBound, "c " + context)
                expectWithin(columns(fast.saved, tanh, rows: s.batch), columns(reference.saved, tanh, rows: s.batch), tanhBound, "tanh c " + context)
                expectWithin(fast.h, reference.h, hiddenBound, "h " + context)
            }
        }
    }

    @Test("GRU step forward: gates within 4 ulp, n and h within the propagated bound, h_n exact, every ISA")
    func gruForward() {
        for (index, shape) in stepShapes.enumerated() {
            let s = StepOperands(.gru, batch: shape.batch, hidden: shape.hidden, seed: UInt64(index) * 10 + 2)
            let reference = forward(.gru, s, backend: .swift)
            let h = s.hidden
            // a = fl(x_n + fl(r h_n)): |Δ(r h_n)| ≤ (8u + 2u)|r h_n|, the sum adds 2u|a| (and u|Δ|):
            // 12u (|r h_n| + |a|). n = tanh a: Δa (1-Lipschitz) + 10u|n|.
            // d = fl(h' - n): Δn + 3u|d|; e = fl(d z): |z| Δd + 11u|e|; h = fl(e + n): Δe + Δn + 3u|h|.
            var candidateBound: [Float] = [], hiddenBound: [Float] = []
            for r in 0..<s.batch {
                for j in 0..<h {
                    let base = r * 4 * h
                    let reset = reference.saved[base + j], z = reference.saved[base + h + j]
                    let n = reference.saved[base + 2 * h + j], hn = reference.saved[base + 3 * h + j]
                    let a = s.projection[r * s.inputStride + s.gates + 2 * h + j] + reset * hn
                    let da = 12 * u * (Swift.abs(reset * hn) + Swift.abs(a))
                    let dn = da + 10 * u * Swift.abs(n) + Float.leastNormalMagnitude
                    let d = s.previous[r * h + j] - n
                    let dd = dn + 3 * u * Swift.abs(d)
                    let de = Swift.abs(z) * dd + 11 * u * Swift.abs(d * z)
                    candidateBound.append(dn)
                    hiddenBound.append(de + dn + 3 * u * Swift.abs(reference.h[r * h + j]) + Float.leastNormalMagnitude)
                }
            }
            forEachInstructionSet { isa in
                let fast = forward(.gru, s, backend: .c)
                let context = "batch \(s.batch) hidden \(h) \(isa)"
                let gates = 0..<(2 * h), candidates = (2 * h)..<(3 * h), products = (3 * h)..<(4 * h)
                expectWithinULPs(columns(fast.saved, gates, rows: s.batch), columns(reference.saved, gates, rows: s.batch), 4, "r, z " + context)
                expectWithin(columns(fast.saved, candidates, rows: s.batch), columns(reference.saved, candidates, rows: s.batch), candidateBound, "n " + context)
                expectIdentical(columns(fast.saved, products, rows: s.batch), columns(reference.saved, products, rows: s.batch), "h_n " + context)
                expectWithin(fast.h, reference.h, hiddenBound, "h " + context)
            }
        }
    }

    @Test("backward steps, given the same saved values, are bit-identical on every ISA", arguments: [RecurrentCell.lstm, .gru])
    func backwardIdentical(cell: RecurrentCell) {
        for (index, shape) in stepShapes.enumerated() {
            let s = StepOperands(cell, batch: shape.batch, hidden: shape.hidden, seed: UInt64(index) * 10 + 3)
            let saved = forward(cell, s, backend: .swift).saved
            let reference = backward(cell, s, saved: saved, backend: .swift)
            // The twin writes only step 1 of the strided input-gate gradient.
            for r in 0..<s.batch {
                for k in 0..<(3 * s.gates) where k < s.gates || k >= 2 * s.gates {
                    #expect(reference.inputGates[r * 3 * s.gates + k] == 7, "row \(r) element \(k) was written")
                }
            }
            forEachInstructionSet { isa in
                let fast = backward(cell, s, saved: saved, backend: .c)
                let context = "\(cell) batch \(s.batch) hidden \(s.hidden) \(isa)"
                expectIdentical(fast.inputGates, reference.inputGates, "input gates' gradient " + context)
                expectIdentical(fast.hiddenGates, reference.hiddenGates, "recurrent gates' gradient " + context)
                expectIdentical(fast.state, reference.state, "state gradient " + context)
            }
        }
    }
}
