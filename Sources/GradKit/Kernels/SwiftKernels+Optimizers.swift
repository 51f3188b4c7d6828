// GradKit — pure-Swift twins of the optimizer and norm kernels. SPDX-License-Identifier: MIT
//
// The same IEEE operations in the same order as ck_optim.h / ck_norm.h (Swift
// never fuses a multiply-add on its own), so these reproduce the C kernels bit
// for bit; the tests check exactly that.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SwiftKernels {
    @inline(__always)
    static func gradient(_ g: Float, _ p: Float, _ scale: Float, _ weightDecay: Float) -> Float {
        let d = g * scale
        return weightDecay != 0 ? d + weightDecay * p : d
    }

    /// torch.lerp.
    @inline(__always)
    static func lerp(_ start: Float, _ end: Float, _ weight: Float) -> Float {
        weight < 0.5 ? start + weight * (end - start) : end - (end - start) * (1 - weight)
    }

    static func sgdStep(count n: Int, parameters p: FloatPointer, momentumBuffer b: FloatPointer?, gradients g: ConstFloatPointer, _ s: SGDScalars) {
        let negLR = -s.learningRate
        guard s.momentum != 0, let b else {
            for i in 0..<n { p[i] = p[i] + negLR * gradient(g[i], p[i], s.gradientScale, s.weightDecay) }
            return
        }
        for i in 0..<n {
            let d = gradient(g[i], p[i], s.gradientScale, s.weightDecay)
            let buffer = s.first ? d : b[i] * s.momentum + s.oneMinusDampening * d
            b[i] = buffer
            let u = s.nesterov ? d + s.momentum * buffer : buffer
            p[i] = p[i] + negLR * u
        }
    }

    static func adagradStep(count n: Int, parameters p: FloatPointer, sum: FloatPointer, gradients g: ConstFloatPointer, _ s: AdaGradScalars) {
        let negCLR = -s.clr
        for i in 0..<n {
            let d = gradient(g[i], p[i], s.gradientScale, s.weightDecay)
            let accumulated = sum[i] + d * d
            sum[i] = accumulated
            let std = accumulated.squareRoot() + s.epsilon
            p[i] = p[i] + negCLR * d / std
        }
    }

    static func rmspropStep(
        count n: Int, parameters p: FloatPointer, squareAverage sq: FloatPointer, gradientAverage ga: FloatPointer?,
        momentumBuffer b: FloatPointer?, gradients g: ConstFloatPointer, _ s: RMSpropScalars
    ) {
        let negLR = -s.learningRate
        let withMomentum = s.momentum > 0
        for i in 0..<n {
            let d = gradient(g[i], p[i], s.gradientScale, s.weightDecay)
            let v = sq[i] * s.alpha + s.oneMinusAlpha * d * d
            sq[i] = v
            var average: Float
            if s.centered, let ga {
                let a = lerp(ga[i], d, s.oneMinusAlpha)
                ga[i] = a
                average = (v - a * a).squareRoot()
            } else {
                average = v.squareRoot()
            }
            average = average + s.epsilon
            if withMomentum, let b {
                let buffer = b[i] * s.momentum + d / average
                b[i] = buffer
                p[i] = p[i] + negLR * buffer
            } else {
                p[i] = p[i] + negLR * d / average
            }
        }
    }

    static func adamStep(
        count n: Int, parameters p: FloatPointer, expAvg m: FloatPointer, expAvgSq v: FloatPointer,
        maxExpAvgSq vmax: FloatPointer?, gradients g: ConstFloatPointer, _ s: AdamScalars
    ) {
        let negStep = -s.stepSize
        for i in 0..<n {
            let pi = p[i] * s.decayFactor
            let d = gradient(g[i], pi, s.gradientScale, s.weightDecay)
            let mi = lerp(m[i], d, s.oneMinusBeta1)
            var vi = v[i] * s.beta2 + s.oneMinusBeta2 * d * d
            m[i] = mi
            v[i] = vi
            if s.amsgrad, let vmax {
                let w = vmax[i]
                let larger = (vi > w || vi.isNaN) ? vi : w
                vmax[i] = larger
                vi = larger
            }
            let denominator = vi.squareRoot() / s.biasCorrection2Sqrt + s.epsilon
            p[i] = pi + negStep * mi / denominator
        }
    }

    /// The canonical power sum of one block (see norm.c).
    static func powerBlock(_ kind: NormKind, _ x: ConstFloatPointer, _ n: Int, _ p: Double) -> Double {
        func term(_ v: Float) -> Double {
            switch kind {
            case .squares: let d = Double(v); return d * d
            case .absolute: return Swift.abs(Double(v))
            default:
                // As norm.c: small integer powers by multiplication.
                let d = Swift.abs(Double(v)), d2 = d * d
                if p == 3 { return d2 * d }
                if p == 4 { return d2 * d2 }
                return Glibc.pow(d, p)
            }
        }
        // Lanes 0-15 in `low`, 16-31 in `high` (SIMD32<Double> element access is slow).
        var low = SIMD16<Double>(), high = SIMD16<Double>()
        var i = 0
        if kind == .squares {
            // Whole-vector loads and multiply-adds (no fusing: d * d is exact in double anyway).
            let raw = UnsafeRawPointer(x)
            while i &+ 32 <= n {
                let a = SIMD16<Double>(raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self))
                let b = SIMD16<Double>(raw.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self))
                low += a * a
                high += b * b
                i &+= 32
            }
        }
        while i &+ 32 <= n {
            for j in 0..<16 {
                low[j] += term(x[i &+ j])
                high[j] += term(x[i &+ 16 &+ j])
            }
            i &+= 32
        }
        return finishBlock(x, from: i, to: n, low: &low, high: &high, term)
    }

    static func normSegments(
        _ kind: NormKind, segments: [ConstFloatPointer], lengths: [Int], p: Double, partials: UnsafeMutablePointer<Double>
    ) -> Double {
        var total = 0.0
        for (s, x) in segments.enumerated() {
            let n = lengths[s]
            var value = 0.0
            if kind == .maximumAbsolute {
                var m: Float = 0
                for i in 0..<n {
                    let v = Swift.abs(x[i])
                    m = (v > m || v.isNaN) ? v : m
                }
                value = Double(m)
                total = (value > total || value.isNaN) ? value : total
            } else {
                let block = sumBlockSize(n)
                var start = 0
                while start < n {
                    value += powerBlock(kind, x + start, Swift.min(block, n - start), p)
                    start += block
                }
                total += value
            }
            partials[s] = value
        }
        return total
    }

    static func allFinite(count n: Int, _ x: ConstFloatPointer) -> Bool {
        for i in 0..<n where !x[i].isFinite { return false }
        return true
    }

    static func adaptiveClip(
        rows: Int, columns: Int, gradients g: FloatPointer, weights w: ConstFloatPointer, clipFactor: Float, epsilon: Float
    ) -> Int {
        var clipped = 0
        for r in 0..<rows {
            let gr = g + r * columns, wr = w + r * columns
            let gn = Float(powerBlock(.squares, gr, columns, 2).squareRoot())
            let wn = Float(powerBlock(.squares, wr, columns, 2).squareRoot())
            let limit = clipFactor * (wn > epsilon ? wn : epsilon)
            if gn > limit {
                let scale = limit / (gn > 1e-6 ? gn : 1e-6)
                for i in 0..<columns { gr[i] = gr[i] * scale }
                clipped += 1
            }
        }
        return clipped
    }
}
