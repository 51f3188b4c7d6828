// GradKit — pure-Swift twins of the fused LSTM and GRU cell steps. SPDX-License-Identifier: MIT
//
// Same contracts as ck_recurrent.h. Sigmoid and tanh are evaluated in Double
// with libm and rounded once, like the elementwise twins; every other
// operation is the C kernel's, in the C kernel's order, so given the same
// saved values the backward steps match the C ones bit for bit.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SwiftKernels {
    @inline(__always) private static func sigmoidf(_ x: Float) -> Float { Float(sigmoid(Double(x))) }
    @inline(__always) private static func tanhf(_ x: Float) -> Float { Float(Glibc.tanh(Double(x))) }

    static func lstmCellForward(
        batch: Int, hidden h: Int, hiddenOutput: FloatPointer, cellOutput: FloatPointer, saved: FloatPointer,
        inputGates: ConstFloatPointer, inputStride: Int, hiddenGates: ConstFloatPointer, previousCell: ConstFloatPointer
    ) {
        for r in 0..<batch {
            let xg = inputGates + r &* inputStride, hg = hiddenGates + r &* 4 &* h
            let cp = previousCell + r &* h, s = saved + r &* 5 &* h
            for j in 0..<h {
                let i = sigmoidf(xg[j] + hg[j])
                let f = sigmoidf(xg[h &+ j] + hg[h &+ j])
                let g = tanhf(xg[2 &* h &+ j] + hg[2 &* h &+ j])
                let o = sigmoidf(xg[3 &* h &+ j] + hg[3 &* h &+ j])
                let cell = f * cp[j] + i * g
                let tc = tanhf(cell)
                cellOutput[r &* h &+ j] = cell
                hiddenOutput[r &* h &+ j] = o * tc
                s[j] = i
                s[h &+ j] = f
                s[2 &* h &+ j] = g
                s[3 &* h &+ j] = o
                s[4 &* h &+ j] = tc
            }
        }
    }

    static func lstmCellBackward(
        batch: Int, hidden h: Int, inputGatesGradient: FloatPointer, inputGradientStride: Int,
        hiddenGatesGradient: FloatPointer, cellGradient: FloatPointer, outputGradient: ConstFloatPointer,
        outputGradientStride: Int, hiddenGradient: ConstFloatPointer, saved: ConstFloatPointer,
        previousCell: ConstFloatPointer
    ) {
        for r in 0..<batch {
            let dxg = inputGatesGradient + r &* inputGradientStride, dhg = hiddenGatesGradient + r &* 4 &* h
            let dc = cellGradient + r &* h, dhOut = outputGradient + r &* outputGradientStride
            let dhNext = hiddenGradient + r &* h, s = saved + r &* 5 &* h, cp = previousCell + r &* h
            for j in 0..<h {
                let i = s[j], f = s[h &+ j], g = s[2 &* h &+ j], o = s[3 &* h &+ j], tc = s[4 &* h &+ j]
                let dh = dhOut[j] + dhNext[j]
                let dct = dc[j] + dh * o * (1 - tc * tc)
                let dai = dct * g * (i * (1 - i))
                let daf = dct * cp[j] * (f * (1 - f))
                let dag = dct * i * (1 - g * g)
                let dao = dh * tc * (o * (1 - o))
                dc[j] = dct * f
                dxg[j] = dai
                dxg[h &+ j] = daf
                dxg[2 &* h &+ j] = dag
                dxg[3 &* h &+ j] = dao
                dhg[j] = dai
                dhg[h &+ j] = daf
                dhg[2 &* h &+ j] = dag
                dhg[3 &* h &+ j] = dao
            }
        }
    }

    static func gruCellForward(
        batch: Int, hidden h: Int, hiddenOutput: FloatPointer, saved: FloatPointer, inputGates: ConstFloatPointer,
        inputStride: Int, hiddenGates: ConstFloatPointer, previousHidden: ConstFloatPointer
    ) {
        for r in 0..<batch {
            let xg = inputGates + r &* inputStride, hg = hiddenGates + r &* 3 &* h
            let hp = previousHidden + r &* h, s = saved + r &* 4 &* h
            for j in 0..<h {
                let reset = sigmoidf(xg[j] + hg[j])
                let z = sigmoidf(xg[h &+ j] + hg[h &+ j])
                let hn = hg[2 &* h &+ j]
                let n = tanhf(xg[2 &* h &+ j] + reset * hn)
                hiddenOutput[r &* h &+ j] = (hp[j] - n) * z + n
                s[j] = reset
                s[h &+ j] = z
                s[2 &* h &+ j] = n
                s[3 &* h &+ j] = hn
            }
        }
    }

    static func gruCellBackward(
        batch: Int, hidden h: Int, inputGatesGradient: FloatPointer, inputGradientStride: Int,
        hiddenGatesGradient: FloatPointer, hiddenGradient: FloatPointer, outputGradient: ConstFloatPointer,
        outputGradientStride: Int, saved: ConstFloatPointer, previousHidden: ConstFloatPointer
    ) {
        for r in 0..<batch {
            let dxg = inputGatesGradient + r &* inputGradientStride, dhg = hiddenGatesGradient + r &* 3 &* h
            let dh = hiddenGradient + r &* h, dhOut = outputGradient + r &* outputGradientStride
            let s = saved + r &* 4 &* h, hp = previousHidden + r &* h
            for j in 0..<h {
                let reset = s[j], z = s[h &+ j], n = s[2 &* h &+ j], hn = s[3 &* h &+ j]
                let dy = dhOut[j] + dh[j]
                let dan = dy * (1 - z) * (1 - n * n)
                let daz = dy * (hp[j] - n) * (z * (1 - z))
                let dar = dan * hn * (reset * (1 - reset))
                dh[j] = dy * z
                dxg[j] = dar
                dxg[h &+ j] = daz
                dxg[2 &* h &+ j] = dan
                dhg[j] = dar
                dhg[h &+ j] = daz
                dhg[2 &* h &+ j] = dan * reset
            }
        }
    }
}
