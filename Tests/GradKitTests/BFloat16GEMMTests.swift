// bfloat16 matmul precision: the rounding against an independent reference, the GEMM
// against an emulation of its contract (fused multiply-adds in the pair order) on every
// ISA path, backend and thread count, and the scoped setting.
import CKernels
import Dispatch
import Testing

@testable import GradKit

/// `x` rounded to bfloat16, decided by value: the two bfloat16 neighbours of
/// `x` (the largest one's upper neighbour counts as 2^128, as IEEE rounding
/// with an unbounded exponent), the nearer, ties to the one whose last kept
/// bit is 0. Zeros and denormals give a signed zero; NaN is checked by
/// ``expectQuietNaN(_:from:)``.
private func referenceBFloat16(_ x: Float) -> Float {
    if x.isNaN { return x }
    if x.isInfinite { return x }
    if x == 0 || x.isSubnormal { return Float(signOf: x, magnitudeOf: 0) }
    let truncated = x.bitPattern & 0xffff_0000
    let lower = Float(bitPattern: truncated)  // towards zero
    let upper = Float(bitPattern: truncated + 0x1_0000)  // away from zero; may be infinity
    let upperValue = upper.isInfinite ? Double(Float(signOf: x, magnitudeOf: 1)) * 0x1p128 : Double(upper)
    let toLower = Swift.abs(Double(x) - Double(lower)), toUpper = Swift.abs(upperValue - Double(x))
    if toLower < toUpper { return lower }
    if toUpper < toLower { return upper }
    return (truncated >> 16) & 1 == 0 ? lower : upper
}

/// A rounded NaN is NaN with the sign and top six payload bits of `x` and the quiet bit set, low half zero.
private func isQuietNaN(_ rounded: Float, from x: Float) -> Bool {
    let r = rounded.bitPattern, u = x.bitPattern
    return rounded.isNaN && r & 0xffff == 0 && r & 0x0040_0000 != 0 && r & 0x803f_0000 == u & 0x803f_0000
}

private struct Product: CustomStringConvertible {
    var transposeA = false, transposeB = false
    var m: Int, n: Int, k: Int
    var alpha: Float = 1, beta: Float = 0
    var pad = 1
    var bias = false, relu = false

    var description: String {
        "\(transposeA ? "T" : "N")\(transposeB ? "T" : "N") m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta)"
            + (bias ? " bias" : "") + (relu ? " relu" : "")
    }

    var lda: Int { (transposeA ? m : k) + pad }
    var ldb: Int { (transposeB ? k : n) + pad }
    var ldc: Int { n + pad }
    func a(_ a: [Float], _ i: Int, _ p: Int) -> Float { transposeA ? a[p * lda + i] : a[i * lda + p] }
    func b(_ b: [Float], _ p: Int, _ j: Int) -> Float { transposeB ? b[j * ldb + p] : b[p * ldb + j] }

    /// Random operands, C and bias for this product.
    func operands(seed: UInt64) -> (a: [Float], b: [Float], c: [Float], bias: [Float]) {
        (randomScalars((transposeA ? k : m) * lda, seed: seed), randomScalars((transposeB ? n : k) * ldb, seed: seed + 1),
         randomScalars(m * ldc, seed: seed + 2), randomScalars(n, seed: seed + 3))
    }

    /// The kernels' result on this thread's backend, ISA and precision.
    func run(_ a: [Float], _ b: [Float], _ c0: [Float], _ bias: [Float]) -> [Float] {
        var out = c0
        out.withUnsafeMutableBufferPointer { cb in
            a.withUnsafeBufferPointer { ab in
                b.withUnsafeBufferPointer { bb in
                    bias.withUnsafeBufferPointer { biasBuffer in
                        Kernels.gemm(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                            a: ab.baseAddress!, lda: lda, b: bb.baseAddress!, ldb: ldb, beta: beta, c: cb.baseAddress!,
                            ldc: ldc, bias: self.bias ? biasBuffer.baseAddress! : nil, relu: relu)
                    }
                }
            }
        }
        return out
    }

    /// The contract of ``MatmulPrecision/bfloat16`` computed independently: operands
    /// rounded by ``referenceBFloat16(_:)``; per block of 256 k, a chain of fused
    /// multiply-adds (`addingProduct`, libm's fmaf) over the pairs, the second of
    /// each pair first; each block stored as `alpha * acc + beta * C` (beta = 1 after
    /// the first); then bias and ReLU.
    func emulate(_ a: [Float], _ b: [Float], _ c0: [Float], _ bias: [Float]) -> [Float] {
        var out = c0
        for i in 0..<m {
            for j in 0..<n {
                func term(_ p: Int) -> (Float, Float) {
                    (referenceBFloat16(self.a(a, i, p)), referenceBFloat16(self.b(b, p, j)))
                }
                var v = c0[i * ldc + j]
                if k == 0 || alpha == 0 {
                    v = beta == 0 ? 0 : v * beta
                } else {
                    var p0 = 0
                    while p0 < k {
                        let p1 = Swift.min(p0 + 256, k)
                        var acc: Float = 0, p = p0
                        while p + 2 <= p1 {
                            let (a1, b1) = term(p + 1), (a0, b0) = term(p)
                            acc = acc.addingProduct(a1, b1)
                            acc = acc.addingProduct(a0, b0)
                            p += 2
                        }
                        if p < p1 {
                            let (a0, b0) = term(p)
                            acc = acc.addingProduct(a0, b0)
                        }
                        let blockBeta = p0 == 0 ? beta : 1
                        var stored = alpha * acc
                        if blockBeta != 0 { stored = stored + blockBeta * v }
                        v = stored
                        p0 = p1
                    }
                }
                if self.bias { v = v + bias[j] }
                if relu { v = v <= 0 ? 0 : v }
                out[i * ldc + j] = v
            }
        }
        return out
    }

    /// Checks `actual` against the rounded operands' products summed in Double
    /// (pair order, 256-blocks): within (k + 2) u of the |A||B| sum, u = 2^-24.
    func checkAgainstDouble(_ a: [Float], _ b: [Float], _ c0: [Float], _ actual: [Float], _ label: String) {
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let product = Double(referenceBFloat16(self.a(a, i, p))) * Double(referenceBFloat16(self.b(b, p, j)))
                    sum += product
                    magnitude += Swift.abs(product)
                }
                let old = Double(c0[i * ldc + j])
                let expected = Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * old)
                let allowed = Double(k + 2) * 0x1p-24 * (Double(Swift.abs(alpha)) * magnitude + Swift.abs(Double(beta) * old))
                    + 1e-30
                if !(Swift.abs(Double(actual[i * ldc + j]) - expected) <= allowed) {
                    Issue.record("\(label) \(self): C[\(i),\(j)] = \(actual[i * ldc + j]), Double \(expected), bound \(allowed)")
                    return
                }
            }
        }
    }
}

/// Every shape class of the kernel: direct products (m <= 4, k over a block),
/// operands the FP32 path reads in place (B untransposed with whole 32-column
/// tiles, Aᵀ and row-major A with whole 8-row tiles), packed products with edge
/// tiles, odd k and k past one and two 256-blocks, more than 512 columns, and the
/// fused bias and ReLU.
private func products() -> [Product] {
    var result: [Product] = []
    let shapes: [(Int, Int, Int)] = [
        (1, 64, 64), (3, 40, 7), (4, 100, 300), (2, 600, 5), (64, 64, 64), (96, 64, 33), (64, 32, 50),
        (37, 45, 61), (130, 70, 257), (17, 33, 513), (12, 32, 1), (8, 96, 2), (25, 3, 3),
    ]
    let scalars: [(Float, Float)] = [(1, 0), (-0.5, 1), (2, -0.75)]
    var index = 0
    for (m, n, k) in shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let (alpha, beta) = scalars[index % scalars.count]
            result.append(
                Product(transposeA: ta, transposeB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta, pad: index % 3,
                        bias: index % 4 == 1, relu: index % 4 == 1 || index % 5 == 2))
            index += 1
        }
    }
    return result
}

@Suite("bfloat16 GEMM")
struct BFloat16GEMMTests {
    @Test("rounding to bfloat16 matches the by-value reference on ties, NaN, infinities, overflow and denormals")
    func roundingSpecialValues() {
        let values: [Float] = [
            0, -0.0, 1, -1, .pi, 1e-3, -65504, .infinity, -.infinity, .greatestFiniteMagnitude, -.greatestFiniteMagnitude,
            .leastNormalMagnitude, -.leastNormalMagnitude, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
            Float(bitPattern: 0x007f_ffff), Float(bitPattern: 0x3f80_8000),  // tie, even below: down
            Float(bitPattern: 0x3f81_8000), Float(bitPattern: 0xbf81_8000),  // tie, odd below: up (away from zero)
            Float(bitPattern: 0x3f80_8001), Float(bitPattern: 0x3f80_7fff),  // just above and below the tie
            Float(bitPattern: 0x7f7f_7fff), Float(bitPattern: 0x7f7f_8000),  // below the top tie; the top tie: to infinity
            Float(bitPattern: 0x00ff_ffff),  // the largest binade-0 value rounds up to 2^-125
        ]
        for x in values {
            let rounded = SwiftKernels.roundedToBFloat16(x)
            #expect(rounded.bitPattern == referenceBFloat16(x).bitPattern, "\(x) (\(String(x.bitPattern, radix: 16)))")
        }
        // What the reference itself must say: the contract in numbers.
        #expect(SwiftKernels.roundedToBFloat16(.greatestFiniteMagnitude) == .infinity)
        #expect(SwiftKernels.roundedToBFloat16(Float(bitPattern: 0x3f80_8000)) == 1)
        #expect(SwiftKernels.roundedToBFloat16(Float(bitPattern: 0x3f81_8000)).bitPattern == 0x3f82_0000)
        #expect(SwiftKernels.roundedToBFloat16(-.leastNonzeroMagnitude).bitPattern == (-0.0 as Float).bitPattern)
        for bits: UInt32 in [0x7f80_0001, 0xff80_0001, 0x7fc0_0000, 0x7fbf_ffff, 0xffff_ffff, 0x7f81_2345] {
            let x = Float(bitPattern: bits)
            #expect(isQuietNaN(SwiftKernels.roundedToBFloat16(x), from: x), "NaN \(String(bits, radix: 16))")
        }
    }

    @Test("the Swift rounding matches the reference, and the C rounding the Swift one, over every upper half and edge low halves")
    func roundingAllPatterns() {
        var rng = SeededGenerator(seed: 7)
        var patterns: [UInt32] = []
        patterns.reserveCapacity(65536 * 8)
        for high in UInt32(0)..<65536 {
            for low: UInt32 in [0, 1, 0x7fff, 0x8000, 0x8001, 0xffff, UInt32.random(in: 0...0xffff, using: &rng)] {
                patterns.append(high << 16 | low)
            }
        }
        let inputs = patterns.map(Float.init(bitPattern:))
        var fromC = [Float](repeating: 0, count: inputs.count)
        inputs.withUnsafeBufferPointer { x in
            fromC.withUnsafeMutableBufferPointer { y in
                Kernels.roundToBFloat16(count: x.count, output: y.baseAddress!, input: x.baseAddress!)
            }
        }
        var mismatches = 0
        for (index, x) in inputs.enumerated() {
            let swift = SwiftKernels.roundedToBFloat16(x)
            let agrees = x.isNaN ? isQuietNaN(swift, from: x) : swift.bitPattern == referenceBFloat16(x).bitPattern
            if !agrees || fromC[index].bitPattern != swift.bitPattern {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(String(x.bitPattern, radix: 16)): Swift \(String(swift.bitPattern, radix: 16)), C \(String(fromC[index].bitPattern, radix: 16)), reference \(String(referenceBFloat16(x).bitPattern, radix: 16))")
                }
            }
        }
        #expect(mismatches == 0)
        // In place (y == x) gives the same bits.
        var inPlace = inputs
        inPlace.withUnsafeMutableBufferPointer { y in
            Kernels.roundToBFloat16(count: y.count, output: y.baseAddress!, input: UnsafePointer(y.baseAddress!))
        }
        expectIdentical(inPlace.map { Float(bitPattern: $0.bitPattern) }, fromC, "in place")
        #expect(zip(inPlace, fromC).allSatisfy { $0.bitPattern == $1.bitPattern })
    }

    @Test("every ISA path and the Swift twin give the contract's bits, and stay within the Double bound")
    func againstContract() {
        Kernels.withMatmulPrecision(.bfloat16) {
            for (index, product) in products().enumerated() {
                let (a, b, c0, bias) = product.operands(seed: UInt64(index * 5 + 1))
                let expected = product.emulate(a, b, c0, bias)
                if !product.bias && !product.relu { product.checkAgainstDouble(a, b, c0, expected, "emulation") }
                forEachBFloat16Path { isa in
                    let actual = Kernels.withBackend(.c) { product.run(a, b, c0, bias) }
                    expectIdentical(actual, expected, "C \(isa) \(product)")
                }
                let swift = Kernels.withBackend(.swift) { product.run(a, b, c0, bias) }
                expectIdentical(swift, expected, "Swift \(product)")
            }
        }
    }

    @Test("operands on rounding ties, next to them, denormal or zero round alike on every path (the packs' vector rounding)")
    func roundingInsidePacks() {
        var rng = SeededGenerator(seed: 5)
        /// Magnitudes in [2^-20, 2^20] (products stay normal), low halves on and around the tie; denormals; signed zeros.
        func special(_ count: Int) -> [Float] {
            (0..<count).map { _ in
                switch Int.random(in: 0..<8, using: &rng) {
                case 0: Float(bitPattern: UInt32.random(in: 1...0x007f_ffff, using: &rng) | (Bool.random(using: &rng) ? 0x8000_0000 : 0))
                case 1: Bool.random(using: &rng) ? 0 : -0.0
                default:
                    Float(bitPattern: (UInt32.random(in: 107...147, using: &rng) << 23)
                        | UInt32.random(in: 0...0x7f, using: &rng) << 16
                        | [0x8000, 0x7fff, 0x8001, 0, 0xffff, UInt32.random(in: 0...0xffff, using: &rng)].randomElement(using: &rng)!
                        | (Bool.random(using: &rng) ? 0x8000_0000 : 0))
                }
            }
        }
        Kernels.withMatmulPrecision(.bfloat16) {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (m, n, k) in [(37, 45, 61), (3, 50, 40), (64, 64, 33)] {
                    let product = Product(transposeA: ta, transposeB: tb, m: m, n: n, k: k, pad: 1)
                    let a = special((ta ? k : m) * product.lda), b = special((tb ? n : k) * product.ldb)
                    let c0 = [Float](repeating: 0, count: m * product.ldc), bias = [Float](repeating: 0, count: n)
                    let expected = product.emulate(a, b, c0, bias)
                    forEachBFloat16Path { isa in
                        expectIdentical(Kernels.withBackend(.c) { product.run(a, b, c0, bias) }, expected, "C \(isa) \(product)")
                    }
                    expectIdentical(Kernels.withBackend(.swift) { product.run(a, b, c0, bias) }, expected, "Swift \(product)")
                }
            }
        }
    }

    @Test("the result does not depend on the thread count (1, 2, 3), on any ISA path, nor on running as a pair")
    func threadCountIndependent() {
        withExclusiveThreadCount {
            Kernels.withMatmulPrecision(.bfloat16) {
                let shapes = [
                    Product(transposeA: false, transposeB: true, m: 100, n: 90, k: 300, pad: 1),
                    Product(transposeA: true, transposeB: false, m: 96, n: 64, k: 70, alpha: -0.5, beta: 1, pad: 0),
                    Product(transposeA: false, transposeB: false, m: 64, n: 256, k: 129, pad: 2, bias: true, relu: true),
                ]
                for (index, product) in shapes.enumerated() {
                    let (a, b, c0, bias) = product.operands(seed: UInt64(index * 5 + 100))
                    let expected = product.emulate(a, b, c0, bias)
                    for threads in [1, 2, 3] {
                        Kernels.threadCount = threads
                        forEachBFloat16Path { isa in
                            let actual = Kernels.withBackend(.c) { product.run(a, b, c0, bias) }
                            expectIdentical(actual, expected, "threads=\(threads) \(isa) \(product)")
                        }
                    }
                }
                // A linear layer's backward pair, run one per thread, against two calls.
                let dY = randomTensor([64 * 48], seed: 1), w = randomTensor([48 * 40], seed: 2), x = randomTensor([64 * 40], seed: 3)
                Kernels.threadCount = 2
                var pairX = [Float](repeating: 0, count: 64 * 40), pairW = [Float](repeating: 0, count: 48 * 40)
                var singleX = pairX, singleW = pairW
                func arguments(_ dX: FloatPointer, _ dW: FloatPointer) -> (GEMMArguments, GEMMArguments) {
                    (GEMMArguments(transposeA: false, transposeB: false, m: 64, n: 40, k: 48, alpha: 1, a: dY.pointer, lda: 48,
                                   b: w.pointer, ldb: 40, beta: 0, c: dX, ldc: 40),
                     GEMMArguments(transposeA: true, transposeB: false, m: 48, n: 40, k: 64, alpha: 1, a: dY.pointer, lda: 48,
                                   b: x.pointer, ldb: 40, beta: 0, c: dW, ldc: 40))
                }
                withExtendedLifetime((dY, w, x)) {
                    Kernels.withBackend(.c) {
                        pairX.withUnsafeMutableBufferPointer { px in
                            pairW.withUnsafeMutableBufferPointer { pw in
                                let (first, second) = arguments(px.baseAddress!, pw.baseAddress!)
                                Kernels.gemmPair(first, second)
                            }
                        }
                    }
                    Kernels.withBackend(.swift) {
                        singleX.withUnsafeMutableBufferPointer { sx in
                            singleW.withUnsafeMutableBufferPointer { sw in
                                let (first, second) = arguments(sx.baseAddress!, sw.baseAddress!)
                                Kernels.gemm(first)
                                Kernels.gemm(second)
                            }
                        }
                    }
                }
                expectIdentical(pairX, singleX, "pair dX vs Swift twin")
                expectIdentical(pairW, singleW, "pair dW vs Swift twin")
            }
        }
    }

    @Test("a call without enough workspace to pack gives the packed path's bits")
    func unpackedFallback() {
        for product in [Product(m: 40, n: 50, k: 300, alpha: 2, beta: -0.75), Product(transposeA: true, transposeB: true, m: 9, n: 700, k: 20)] {
            let (a, b, c0, bias) = product.operands(seed: 11)
            let expected = product.emulate(a, b, c0, bias)
            forEachBFloat16Path { isa in
                var actual = c0
                actual.withUnsafeMutableBufferPointer { c in
                    ck_sgemm_epilogue_f32(
                        product.transposeA ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE,
                        product.transposeB ? CK_TRANSPOSE_YES : CK_TRANSPOSE_NONE, product.m, product.n, product.k,
                        product.alpha, a, product.lda, b, product.ldb, product.beta, c.baseAddress, product.ldc, nil,
                        CK_GEMM_ACTIVATION_NONE, CK_GEMM_PRECISION_BF16, nil, 0)
                }
                expectIdentical(actual, expected, "no workspace \(isa) \(product)")
            }
        }
    }

    @Test("bfloat16 changes the result, float32 stays the default, and the scoped setting is this thread's only")
    func scopedSetting() throws {
        #expect(Kernels.matmulPrecision == .float32)
        let product = Product(m: 20, n: 30, k: 40)
        let (a, b, c0, bias) = product.operands(seed: 3)
        let fp32 = product.run(a, b, c0, bias)
        let bf16 = Kernels.withMatmulPrecision(.bfloat16) {
            // Another thread, meanwhile, sees the global setting.
            let other = onAnotherThread { Kernels.activeMatmulPrecision }
            #expect(other == .float32)
            #expect(Kernels.withMatmulPrecision(.float32) { Kernels.activeMatmulPrecision } == .float32)
            #expect(Kernels.activeMatmulPrecision == .bfloat16)
            return product.run(a, b, c0, bias)
        }
        #expect(Kernels.activeMatmulPrecision == .float32)
        expectIdentical(bf16, product.emulate(a, b, c0, bias))
        #expect(zip(fp32, bf16).contains { $0 != $1 }, "bfloat16 gave the FP32 bits")
        expectIdentical(product.run(a, b, c0, bias), fp32, "FP32 after the scope")
        #expect(MatmulPrecision(name: "bf16") == .bfloat16 && MatmulPrecision(name: "fp32") == .float32)
        #expect(MatmulPrecision(name: "BF16") == nil && MatmulPrecision(name: "half") == nil)
    }

    @Test("vdpbf16ps is the default only where checked and fast enough, granted only where checked; the kind is this thread's only, and restores")
    func dotProductSelection() {
        let detected = Kernels.detectedBFloat16DotProduct
        #expect(detected != .emulatedVDPBF16PS, "emulation is never the default")
        if Kernels.vdpbf16psChecked { #expect(Kernels.cpuHasAVX512BF16 && Kernels.vdpbf16psRate > 0) } else { #expect(Kernels.vdpbf16psRate == 0) }
        #expect(detected == (Kernels.vdpbf16psChecked && Kernels.vdpbf16psRate >= Kernels.vdpbf16psMinimumRate ? .vdpbf16ps : .fusedMultiplyAdd))
        #expect(Kernels.bfloat16DotProduct == detected)
        Kernels.withBFloat16DotProduct(.vdpbf16ps) {
            #expect(Kernels.bfloat16DotProduct == (Kernels.vdpbf16psChecked ? .vdpbf16ps : .fusedMultiplyAdd))
        }
        Kernels.withBFloat16DotProduct(.emulatedVDPBF16PS) {
            let expected: Kernels.BFloat16DotProduct = Kernels.detectedInstructionSet == .avx512 ? .emulatedVDPBF16PS : .fusedMultiplyAdd
            #expect(Kernels.bfloat16DotProduct == expected)
            #expect(onAnotherThread { Kernels.bfloat16DotProduct } == detected)
            Kernels.withBFloat16DotProduct(.fusedMultiplyAdd) { #expect(Kernels.bfloat16DotProduct == .fusedMultiplyAdd) }
            #expect(Kernels.bfloat16DotProduct == expected)
        }
        #expect(Kernels.bfloat16DotProduct == detected)
    }

    @Test("the digits MLP trains as well with bfloat16 matmuls as with FP32 (within 2 points after 10 epochs)")
    func training() throws {
        let parts = try Dataset.digits().split([0.8, 0.2], seed: 0, stratified: true)
        func train(_ precision: MatmulPrecision) throws -> (accuracy: Float, loss: Float) {
            try Kernels.withMatmulPrecision(precision) {
                let model = withManualSeed(0) { MLP(sizes: [64, 64, 10]) }
                let trainer = Trainer(
                    model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy,
                    options: TrainingOptions(epochs: 10, batchSize: 32, progress: .silent))
                let history = try trainer.fit(parts[0])
                return (trainer.evaluate(parts[1]).accuracy!, history.epochs.last!.loss)
            }
        }
        let (fp32, fp32Loss) = try train(.float32), (bf16, bf16Loss) = try train(.bfloat16)
        #expect(fp32Loss != bf16Loss, "the bfloat16 run computed in FP32")
        // 360 test images: 2 points is 7 of them.
        #expect(Swift.abs(fp32 - bf16) <= 0.02, "FP32 \(fp32), bfloat16 \(bf16)")
        #expect(bf16 >= 0.9, "bfloat16 \(bf16)")
    }
}

/// Runs `body` on every C path of a bfloat16 GEMM this CPU has: each ISA level,
/// and on AVX-512 each ``Kernels/BFloat16DotProduct`` (the emulated vdpbf16ps
/// kernel everywhere, the instruction where it passed its check, whether or
/// not it is the default). `body` gets a label.
private func forEachBFloat16Path(_ body: (String) -> Void) {
    forEachInstructionSet { isa in
        guard isa == .avx512 else { return body("\(isa)") }
        var kinds: [Kernels.BFloat16DotProduct] = [.fusedMultiplyAdd, .emulatedVDPBF16PS]
        if Kernels.vdpbf16psChecked { kinds.append(.vdpbf16ps) }
        for kind in kinds {
            Kernels.withBFloat16DotProduct(kind) {
                #expect(Kernels.bfloat16DotProduct == kind)
                body("\(isa) \(kind)")
            }
        }
    }
}

/// Runs `body` on a dispatch worker (not this thread, which waits) and returns its result.
private func onAnotherThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var result: T?
    DispatchQueue.global().async {
        result = body()
        done.signal()
    }
    done.wait()
    return result!
}
