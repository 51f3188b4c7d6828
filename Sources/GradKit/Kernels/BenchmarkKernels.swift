// GradKit — raw kernels for the benchmark executable (SPI, not public API). SPDX-License-Identifier: MIT

/// Raw kernel entry points for `gradkit-bench`, which times kernels without
/// tensor bookkeeping and needs baselines (a streaming a*x+y) that no tensor
/// operation maps to one-to-one. Every entry runs on the active backend
/// (``Kernels/withBackend(_:_:)``).
/// `@_spi(Benchmarks) import GradKit` to use; not part of the public API.
@_spi(Benchmarks)
public enum BenchmarkKernels {
    /// `count` floats allocated as GradKit allocates large buffers (2 MiB
    /// aligned, transparent huge pages requested); free with `deallocate()`.
    public static func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
        LargeAllocation.allocate(bytes: count * 4).bindMemory(to: Float.self, capacity: count)
    }

    /// y += alpha * x over `count` elements.
    public static func axpy(count: Int, y: UnsafeMutablePointer<Float>, alpha: Float, x: UnsafePointer<Float>) {
        Kernels.axpy(count: count, output: y, alpha: alpha, input: x)
    }

    /// The elementwise maps the benchmarks time.
    public enum Map: String, CaseIterable, Sendable {
        case scale, relu, sigmoid, tanh, gelu

        var operation: UnaryOperation {
            switch self {
            case .scale: .mulScalar
            case .relu: .relu
            case .sigmoid: .sigmoid
            case .tanh: .tanh
            case .gelu: .gelu
            }
        }
    }

    /// y = f(x) (scale: y = 0.5 x).
    public static func map(_ map: Map, count: Int, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>) {
        Kernels.unary(map.operation, count: count, output: y, input: x, a: 0.5)
    }

    /// dx = dy * f'(x) (f'(y) for tanh and sigmoid, as autograd uses them).
    public static func mapBackward(
        _ map: Map, count: Int, dx: UnsafeMutablePointer<Float>, dy: UnsafePointer<Float>, x: UnsafePointer<Float>,
        y: UnsafePointer<Float>
    ) {
        Kernels.unaryBackward(map.operation, count: count, inputGradient: dx, outputGradient: dy, input: x, output: y, a: 0.5)
    }

    /// y[r][c] = x[r][c] + bias[c] (a linear layer's bias add, without the GEMM).
    public static func addBias(rows: Int, columns: Int, y: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, bias: UnsafePointer<Float>) {
        let layout = StridedLayout(shape: [rows, columns], strides: [[columns, 1], [0, 1]])
        Kernels.binary(.add, layout: layout, output: y, lhs: x, rhs: bias)
    }

    /// sums[c] = Σ_r x[r][c] (a bias's gradient).
    public static func columnSums(rows: Int, columns: Int, sums: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>) {
        Kernels.reduce(.sum, outer: 1, extent: rows, inner: columns, output: sums, input: x)
    }

    /// Σ x (double accumulation, fixed order).
    public static func sum(count: Int, x: UnsafePointer<Float>) -> Float {
        var result: Float = 0
        Kernels.reduce(.sum, outer: 1, extent: count, inner: 1, output: &result, input: x)
        return result
    }

    /// Σ |x|^p over one segment (p = 2: the sum of squares; .infinity: max |x|).
    public static func powerSum(count: Int, x: UnsafePointer<Float>, p: Float) -> Double {
        var partial = 0.0
        let kind: NormKind = p == 2 ? .squares : p == 1 ? .absolute : p == .infinity ? .maximumAbsolute : .power
        return Kernels.normSegments(kind, segments: [x], lengths: [count], p: Double(p), partials: &partial)
    }

    /// C := op(A) op(B) (alpha 1, beta 0), row-major with tight leading dimensions.
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>
    ) {
        Kernels.gemm(
            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1, a: a, lda: transposeA ? m : k, b: b,
            ldb: transposeB ? k : n, beta: 0, c: c, ldc: n)
    }

    /// y[i] := x[i] rounded to bfloat16, as ``MatmulPrecision/bfloat16`` rounds GEMM
    /// operands (y may equal x): a benchmark's reference multiplies what the kernel multiplies.
    public static func roundToBFloat16(count: Int, x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        Kernels.roundToBFloat16(count: count, output: y, input: x)
    }

    /// Rows `rows` of the double-accumulating reference for ``gemm(transposeA:transposeB:m:n:k:a:b:c:)``.
    public static func gemmReference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, rows: Range<Int>
    ) {
        // Row i of C depends on row i of op(A): run the reference on those rows only.
        for i in rows {
            let aRow = transposeA ? a + i : a + i * k
            Kernels.gemmReference(
                transposeA: transposeA, transposeB: transposeB, m: 1, n: n, k: k, alpha: 1, a: aRow, lda: transposeA ? m : k,
                b: b, ldb: transposeB ? k : n, beta: 0, c: c + i * n, ldc: n)
        }
    }
}
