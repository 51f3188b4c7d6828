// GradKit — dispatch and Swift twins of the activation statistics kernels. SPDX-License-Identifier: MIT
import CKernels

extension Kernels {
    /// Sums of x and x² (double, canonical order; see ck_stats.h).
    static func moments(count: Int, _ x: ConstFloatPointer) -> (sum: Double, sumOfSquares: Double) {
        if useC {
            var s = 0.0, q = 0.0
            ck_moments_f32(count, x, &s, &q)
            return (s, q)
        }
        return SwiftKernels.moments(count: count, x)
    }

    /// Σ(after − before)² and Σ before² (double, canonical order; see ck_stats.h).
    static func changeMoments(count: Int, after: ConstFloatPointer, before: ConstFloatPointer) -> (sumOfSquaredChanges: Double, sumOfSquares: Double) {
        if useC {
            var d = 0.0, q = 0.0
            ck_change_moments_f32(count, after, before, &d, &q)
            return (d, q)
        }
        return SwiftKernels.changeMoments(count: count, after: after, before: before)
    }

    /// ``changeMoments(count:after:before:)``, then copies `after` over `before`.
    static func changeMomentsUpdating(count: Int, after: ConstFloatPointer, before: FloatPointer) -> (sumOfSquaredChanges: Double, sumOfSquares: Double) {
        if useC {
            var d = 0.0, q = 0.0
            ck_change_moments_update_f32(count, after, before, &d, &q)
            return (d, q)
        }
        let result = SwiftKernels.changeMoments(count: count, after: after, before: before)
        before.update(from: after, count: count)
        return result
    }

    /// The number of values below `low` or above `high`.
    static func countOutside(count: Int, _ x: ConstFloatPointer, low: Float, high: Float) -> Int {
        useC ? ck_count_outside_f32(count, x, low, high) : SwiftKernels.countOutside(count: count, x, low: low, high: high)
    }

    /// The number of columns whose entries are all <= 0.
    static func countDeadColumns(rows: Int, columns: Int, _ y: ConstFloatPointer) -> Int {
        useC ? ck_count_dead_columns_f32(rows, columns, y) : SwiftKernels.countDeadColumns(rows: rows, columns: columns, y)
    }
}

extension SwiftKernels {
    static func moments(count n: Int, _ x: ConstFloatPointer) -> (sum: Double, sumOfSquares: Double) {
        canonicalPairSums(count: n) { i in
            let v = Double(x[i])
            return (v, v * v)
        }
    }

    static func changeMoments(count n: Int, after: ConstFloatPointer, before: ConstFloatPointer) -> (sumOfSquaredChanges: Double, sumOfSquares: Double) {
        var d = 0.0, q = 0.0
        var start = 0
        while start < n {
            let length = Swift.min(4096, n - start)
            var x = SIMD32<Float>(), y = SIMD32<Float>()
            var i = 0
            while i &+ 32 <= length {
                for j in 0..<32 {
                    let b = before[start &+ i &+ j]
                    let u = after[start &+ i &+ j] - b
                    x[j] += u * u
                    y[j] += b * b
                }
                i &+= 32
            }
            var j = 0
            while i &+ j < length {
                let b = before[start &+ i &+ j]
                let u = after[start &+ i &+ j] - b
                x[j] += u * u
                y[j] += b * b
                j &+= 1
            }
            func pairwise(_ v: SIMD32<Float>) -> Float {
                let s16 = v.lowHalf + v.highHalf, s8 = s16.lowHalf + s16.highHalf, s4 = s8.lowHalf + s8.highHalf
                let s2 = s4.lowHalf + s4.highHalf
                return s2[0] + s2[1]
            }
            d += Double(pairwise(x))
            q += Double(pairwise(y))
            start += 4096
        }
        return (d, q)
    }

    /// Two sums of `terms(i)` over 0..<n in the order of ck_moments_f32: fixed
    /// blocks, 16 double lanes each, lanes added pairwise.
    @inline(__always)
    private static func canonicalPairSums(count n: Int, _ terms: (Int) -> (Double, Double)) -> (Double, Double) {
        let block = sumBlockSize(n)
        var s = 0.0, q = 0.0
        var start = 0
        while start < n {
            let length = Swift.min(block, n - start)
            var a = SIMD16<Double>(), b = SIMD16<Double>()
            var i = 0
            while i &+ 16 <= length {
                for j in 0..<16 {
                    let (u, v) = terms(start &+ i &+ j)
                    a[j] += u
                    b[j] += v
                }
                i &+= 16
            }
            var j = 0
            while i &+ j < length {
                let (u, v) = terms(start &+ i &+ j)
                a[j] += u
                b[j] += v
                j &+= 1
            }
            func pairwise(_ v: SIMD16<Double>) -> Double {
                let s8 = v.lowHalf + v.highHalf, s4 = s8.lowHalf + s8.highHalf, s2 = s4.lowHalf + s4.highHalf
                return s2[0] + s2[1]
            }
            s += pairwise(a)
            q += pairwise(b)
            start += block
        }
        return (s, q)
    }

    static func countOutside(count n: Int, _ x: ConstFloatPointer, low: Float, high: Float) -> Int {
        var count = 0
        for i in 0..<n where x[i] < low || x[i] > high { count += 1 }
        return count
    }

    static func countDeadColumns(rows: Int, columns: Int, _ y: ConstFloatPointer) -> Int {
        var dead = 0
        for c in 0..<columns {
            var alive = false
            for r in 0..<rows where y[r &* columns &+ c] > 0 {
                alive = true
                break
            }
            if !alive { dead += 1 }
        }
        return dead
    }
}
