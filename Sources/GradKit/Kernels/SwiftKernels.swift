// GradKit — pure-Swift twins of the C kernels: elementwise maps. SPDX-License-Identifier: MIT
//
// Same contracts as CKernels (see its headers), single-threaded. Transcendental
// functions are evaluated in Double with libm and rounded once, so the twins
// are a near-correctly-rounded reference for the C kernels' vectorizable Float
// approximations. Index arithmetic uses &+ / &* so that overflow checks do not
// block vectorization.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum SwiftKernels {}

extension SwiftKernels {
    // Double-precision helpers: one rounding to Float at the end.
    @inline(__always) static func dexp(_ x: Float) -> Double { Glibc.exp(Double(x)) }
    @inline(__always) static func sigmoid(_ x: Double) -> Double { 1 / (1 + Glibc.exp(-x)) }
    /// Phi(x), the standard normal CDF, via erfc to keep the left tail accurate.
    @inline(__always) static func normalCDF(_ x: Double) -> Double { 0.5 * erfc(-x / 2.0.squareRoot()) }
    @inline(__always) static func normalPDF(_ x: Double) -> Double { Glibc.exp(-0.5 * x * x) / (2 * Double.pi).squareRoot() }
    @inline(__always) static func geluTanhInner(_ x: Double) -> Double {
        Double(Float(0.797_884_560_802_865_36)) * (x + Double(Float(0.044715)) * x * x * x)
    }

    static func unary(
        _ op: UnaryOperation, count n: Int, output y: FloatPointer, input x: ConstFloatPointer, a: Float, b: Float
    ) {
        switch op {
        case .negate: for i in 0..<n { y[i] = -x[i] }
        case .exp: for i in 0..<n { y[i] = Float(dexp(x[i])) }
        case .log: for i in 0..<n { y[i] = Float(Glibc.log(Double(x[i]))) }
        case .sqrt: for i in 0..<n { y[i] = x[i].squareRoot() }
        case .abs: for i in 0..<n { y[i] = Swift.abs(x[i]) }
        case .square: for i in 0..<n { y[i] = x[i] * x[i] }
        case .sigmoid: for i in 0..<n { y[i] = Float(sigmoid(Double(x[i]))) }
        case .tanh: for i in 0..<n { y[i] = Float(Glibc.tanh(Double(x[i]))) }
        case .relu: for i in 0..<n { y[i] = x[i] <= 0 ? 0 : x[i] }
        case .leakyRelu: for i in 0..<n { y[i] = x[i] > 0 ? x[i] : a * x[i] }
        case .elu: for i in 0..<n { y[i] = x[i] > 0 ? x[i] : Float(Double(a) * expm1(Double(x[i]))) }
        case .gelu: for i in 0..<n { y[i] = Float(Double(x[i]) * normalCDF(Double(x[i]))) }
        case .geluTanh:
            for i in 0..<n {
                let v = Double(x[i])
                y[i] = Float(v * sigmoid(2 * geluTanhInner(v)))
            }
        case .softplus:
            for i in 0..<n {
                let z = a * x[i]
                y[i] = z > b ? x[i] : Float(log1p(Glibc.exp(Double(z))) / Double(a))
            }
        case .pow:
            if a == 2 { for i in 0..<n { y[i] = x[i] * x[i] } } else { for i in 0..<n { y[i] = powf(x[i], a) } }
        case .clamp:
            for i in 0..<n {
                let v = x[i] < a ? a : x[i]
                y[i] = v > b ? b : v
            }
        case .addScalar: for i in 0..<n { y[i] = x[i] + a }
        case .mulScalar: for i in 0..<n { y[i] = x[i] * a }
        case .divScalar: for i in 0..<n { y[i] = x[i] / a }
        case .rsubScalar: for i in 0..<n { y[i] = a - x[i] }
        case .rdivScalar: for i in 0..<n { y[i] = a / x[i] }
        }
    }

    static func unaryBackward(
        _ op: UnaryOperation, count n: Int, inputGradient dx: FloatPointer, outputGradient dy: ConstFloatPointer,
        input: ConstFloatPointer?, output: ConstFloatPointer?, a: Float, b: Float
    ) {
        // Operands an op does not read may be nil; alias them to dy (never read).
        let x = input ?? dy, y = output ?? dy
        switch op {
        case .negate, .rsubScalar: for i in 0..<n { dx[i] = -dy[i] }
        case .exp: for i in 0..<n { dx[i] = dy[i] * y[i] }
        case .log: for i in 0..<n { dx[i] = dy[i] / x[i] }
        case .sqrt: for i in 0..<n { dx[i] = dy[i] / (2 * y[i]) }
        case .abs: for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : (x[i] < 0 ? -dy[i] : 0 * dy[i]) }
        case .square: for i in 0..<n { dx[i] = dy[i] * 2 * x[i] }
        case .sigmoid: for i in 0..<n { dx[i] = dy[i] * y[i] * (1 - y[i]) }
        case .tanh: for i in 0..<n { dx[i] = dy[i] * (1 - y[i] * y[i]) }
        case .relu: for i in 0..<n { dx[i] = y[i] > 0 ? dy[i] : 0 }
        case .leakyRelu: for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : dy[i] * a }
        case .elu: for i in 0..<n { dx[i] = x[i] > 0 ? dy[i] : Float(Double(dy[i]) * Double(a) * dexp(x[i])) }
        case .gelu:
            for i in 0..<n {
                let v = Double(x[i])
                dx[i] = Float(Double(dy[i]) * (normalCDF(v) + v * normalPDF(v)))
            }
        case .geluTanh:
            for i in 0..<n {
                let v = Double(x[i]), k = Double(Float(0.797_884_560_802_865_36)), c = Double(Float(0.044715))
                let s = sigmoid(2 * geluTanhInner(v))
                dx[i] = Float(Double(dy[i]) * (s + 2 * v * s * (1 - s) * k * (1 + 3 * c * v * v)))
            }
        case .softplus:
            for i in 0..<n {
                let z = a * x[i]
                dx[i] = z > b ? dy[i] : Float(Double(dy[i]) * sigmoid(Double(z)))
            }
        case .pow:
            if a == 2 {
                for i in 0..<n { dx[i] = dy[i] * 2 * x[i] }
            } else if a == 0 {
                for i in 0..<n { dx[i] = 0 }
            } else {
                for i in 0..<n { dx[i] = dy[i] * a * powf(x[i], a - 1) }
            }
        case .clamp: for i in 0..<n { dx[i] = (x[i] >= a && x[i] <= b) ? dy[i] : 0 }
        case .addScalar: for i in 0..<n { dx[i] = dy[i] }
        case .mulScalar: for i in 0..<n { dx[i] = dy[i] * a }
        case .divScalar: for i in 0..<n { dx[i] = dy[i] / a }
        case .rdivScalar: for i in 0..<n { dx[i] = -(dy[i] * y[i]) / x[i] }
        }
    }

    @inline(__always)
    static func apply(_ op: BinaryOperation, _ a: Float, _ b: Float) -> Float {
        switch op {
        case .add: a + b
        case .sub: a - b
        case .mul: a * b
        case .div: a / b
        case .maximum: (a > b || a.isNaN) ? a : b
        case .minimum: (a < b || a.isNaN) ? a : b
        case .pow: powf(a, b)
        case .equal: a == b ? 1 : 0
        }
    }

    /// Calls `body(row, offsetA, offsetB)` for every row (innermost dimension)
    /// of a strided layout, in row-major order.
    @inline(__always)
    static func forEachRow(_ layout: StridedLayout, _ body: (Int, Int, Int) -> Void) {
        let shape = layout.shape, sa = layout.strides[0], sb = layout.strides[1]
        let rank = shape.count
        if rank <= 1 {
            body(0, 0, 0)
            return
        }
        var rows = 1
        for d in 0..<(rank - 1) { rows &*= shape[d] }
        var index = [Int](repeating: 0, count: rank - 1)
        var oa = 0, ob = 0
        for r in 0..<rows {
            body(r, oa, ob)
            var d = rank - 2
            while d >= 0 {
                index[d] &+= 1
                oa &+= sa[d]
                ob &+= sb[d]
                if index[d] < shape[d] { break }
                oa &-= sa[d] &* shape[d]
                ob &-= sb[d] &* shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    static func binary(
        _ op: BinaryOperation, layout: StridedLayout, output y: FloatPointer, lhs a: ConstFloatPointer,
        rhs b: ConstFloatPointer
    ) {
        let rank = layout.shape.count
        let n = rank == 0 ? 1 : layout.shape[rank - 1]
        let ia = rank == 0 ? 0 : layout.strides[0][rank - 1], ib = rank == 0 ? 0 : layout.strides[1][rank - 1]
        forEachRow(layout) { r, oa, ob in
            let yr = y + r &* n, ar = a + oa, br = b + ob
            for i in 0..<n { yr[i] = apply(op, ar[i &* ia], br[i &* ib]) }
        }
    }

    static func binaryBackward(
        _ op: BinaryOperation, layout: StridedLayout, lhsGradient ga: FloatPointer?, rhsGradient gb: FloatPointer?,
        outputGradient g: ConstFloatPointer, lhs a: ConstFloatPointer, rhs b: ConstFloatPointer,
        output y: ConstFloatPointer?
    ) {
        let rank = layout.shape.count
        let n = rank == 0 ? 1 : layout.shape[rank - 1]
        let ia = rank == 0 ? 0 : layout.strides[0][rank - 1], ib = rank == 0 ? 0 : layout.strides[1][rank - 1]
        func share(_ u: Float, _ v: Float) -> Float { u > v ? 1 : (u == v ? 0.5 : 0) }
        forEachRow(layout) { r, oa, ob in
            let o = r &* n
            for i in 0..<n {
                let gv = g[o &+ i], av = a[oa &+ i &* ia], bv = b[ob &+ i &* ib]
                let da: Float, db: Float
                switch op {
                case .mul: da = gv * bv; db = gv * av
                case .div: da = gv / bv; db = -gv * av / (bv * bv)
                case .maximum: da = gv * share(av, bv); db = gv * share(bv, av)
                case .minimum: da = gv * share(bv, av); db = gv * share(av, bv)
                case .pow:
                    da = bv == 0 ? 0 : gv * bv * powf(av, bv - 1)
                    db = (av == 0 && bv >= 0) ? 0 : gv * y![o &+ i] * logf(av)
                case .add, .sub, .equal:
                    preconditionFailure("binaryBackward: \(op) needs no kernel")
                }
                ga?[o &+ i] = da
                gb?[o &+ i] = db
            }
        }
    }

    static func fill(count n: Int, output y: FloatPointer, value: Float) {
        for i in 0..<n { y[i] = value }
    }

    static func axpy(count n: Int, output y: FloatPointer, alpha: Float, input x: ConstFloatPointer) {
        for i in 0..<n { y[i] += alpha * x[i] }
    }
}
