// GradKit — pure-Swift twins: reductions, softmax, cross-entropy. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension SwiftKernels {
    /// The C kernel's block size for a row of `extent` elements (see reduce.c):
    /// the summation order depends on the sizes only.
    static func sumBlockSize(_ extent: Int) -> Int {
        let blocks = 1024, lanes = 16
        let block = ((extent + blocks - 1) / blocks + lanes - 1) / lanes * lanes
        return Swift.max(block, 4096)
    }

    /// Canonical block sum: lane j takes elements j, j+32, ...; lanes are then
    /// halved pairwise. Bit-identical to the C kernel, which does the same
    /// double additions in the same order.
    static func sumBlock(_ x: ConstFloatPointer, _ n: Int) -> Double {
        // Lanes 0-15 in `low`, 16-31 in `high` (SIMD32<Double> element access is slow).
        var low = SIMD16<Double>(), high = SIMD16<Double>()
        let raw = UnsafeRawPointer(x)
        var i = 0
        while i &+ 32 <= n {
            // Whole-vector loads and adds: the same lane-wise additions as element access, far faster.
            low += SIMD16<Double>(raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<Float>.self))
            high += SIMD16<Double>(raw.loadUnaligned(fromByteOffset: (i &+ 16) &* 4, as: SIMD16<Float>.self))
            i &+= 32
        }
        return finishBlock(x, from: i, to: n, low: &low, high: &high) { Double($0) }
    }

    /// The end of a canonical block reduction: the elements from `start` left over
    /// after whole 32-element rounds go to lanes 0, 1, ... (`low` holds lanes 0-15,
    /// `high` 16-31), then the 32 lanes are halved pairwise, as the C kernels do.
    @inline(__always)
    static func finishBlock(
        _ x: ConstFloatPointer, from start: Int, to n: Int, low: inout SIMD16<Double>, high: inout SIMD16<Double>,
        _ term: (Float) -> Double
    ) -> Double {
        var j = 0
        while start &+ j < n {
            if j < 16 { low[j] += term(x[start &+ j]) } else { high[j &- 16] += term(x[start &+ j]) }
            j &+= 1
        }
        let s16 = low + high
        let s8 = s16.lowHalf + s16.highHalf
        let s4 = s8.lowHalf + s8.highHalf
        let s2 = s4.lowHalf + s4.highHalf
        return s2[0] + s2[1]
    }

    @inline(__always)
    static func extreme(_ isMax: Bool, _ v: Float, _ m: Float) -> Float {
        if isMax { return (v > m || v.isNaN) ? v : m }
        return (v < m || v.isNaN) ? v : m
    }

    static func reduce(
        _ op: ReductionOperation, outer: Int, extent: Int, inner: Int, output y: FloatPointer,
        input x: ConstFloatPointer, scale: Double
    ) {
        let isMax = op == .max
        let start: Float = isMax ? -.infinity : .infinity
        if inner == 1 {
            let block = sumBlockSize(extent)
            for o in 0..<outer {
                let row = x + o &* extent
                if op == .sum {
                    var total = 0.0
                    var s = 0
                    while s < extent {
                        total += sumBlock(row + s, Swift.min(block, extent &- s))
                        s &+= block
                    }
                    y[o] = Float(total * scale)
                } else {
                    var m = start
                    for r in 0..<extent { m = extreme(isMax, row[r], m) }
                    y[o] = m
                }
            }
            return
        }
        for o in 0..<outer {
            let base = x + o &* extent &* inner, out = y + o &* inner
            if op == .sum {
                for i in 0..<inner {
                    var acc = 0.0
                    for r in 0..<extent { acc += Double(base[r &* inner &+ i]) }
                    out[i] = Float(acc * scale)
                }
            } else {
                for i in 0..<inner {
                    var m = start
                    for r in 0..<extent { m = extreme(isMax, base[r &* inner &+ i], m) }
                    out[i] = m
                }
            }
        }
    }

    static func softmax(
        logarithmic: Bool, outer: Int, extent: Int, inner: Int, output y: FloatPointer, input x: ConstFloatPointer
    ) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o &* extent &* inner &+ i
                var m = -Float.infinity
                for r in 0..<extent { m = extreme(true, x[base &+ r &* inner], m) }
                var total: Float = 0
                for r in 0..<extent { total += expf(x[base &+ r &* inner] - m) }
                if logarithmic {
                    let logSum = logf(total)
                    for r in 0..<extent { y[base &+ r &* inner] = (x[base &+ r &* inner] - m) - logSum }
                } else {
                    for r in 0..<extent { y[base &+ r &* inner] = expf(x[base &+ r &* inner] - m) / total }
                }
            }
        }
    }

    static func softmaxBackward(
        logarithmic: Bool, outer: Int, extent: Int, inner: Int, inputGradient dx: FloatPointer,
        outputGradient dy: ConstFloatPointer, output y: ConstFloatPointer
    ) {
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o &* extent &* inner &+ i
                var total: Float = 0
                for r in 0..<extent {
                    let k = base &+ r &* inner
                    total += logarithmic ? dy[k] : dy[k] * y[k]
                }
                for r in 0..<extent {
                    let k = base &+ r &* inner
                    dx[k] = logarithmic ? dy[k] - expf(y[k]) * total : y[k] * (dy[k] - total)
                }
            }
        }
    }

    static func softmaxCrossEntropy(
        rows: Int, classes: Int, losses: FloatPointer, probabilities p: FloatPointer,
        logits x: ConstFloatPointer, labels: UnsafePointer<Int>
    ) {
        for r in 0..<rows {
            let row = x + r &* classes, out = p + r &* classes
            var m = -Float.infinity
            for c in 0..<classes { m = extreme(true, row[c], m) }
            let target = row[labels[r]]
            var total: Float = 0
            for c in 0..<classes {
                let e = expf(row[c] - m)
                out[c] = e
                total += e
            }
            for c in 0..<classes { out[c] /= total }
            losses[r] = (m - target) + logf(total)
        }
    }

    static func softmaxCrossEntropyBackward(
        rows: Int, classes: Int, logitsGradient d: FloatPointer, probabilities p: ConstFloatPointer,
        labels: UnsafePointer<Int>, scale: Float
    ) {
        for r in 0..<rows {
            let o = r &* classes, label = labels[r]
            let target = p[o &+ label]
            for c in 0..<classes { d[o &+ c] = scale * p[o &+ c] }
            d[o &+ label] = scale * (target - 1)
        }
    }
}
