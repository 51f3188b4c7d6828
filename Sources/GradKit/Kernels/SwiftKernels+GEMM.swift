// GradKit — pure-Swift twin of SGEMM. SPDX-License-Identifier: MIT
//
// The same BLIS structure as the C kernel, with portable SIMD types: op(B) is
// packed into 16-wide panels, op(A) into 4-tall panels, and a 4 x 16
// micro-kernel keeps its tile in four SIMD16<Float> accumulators. No fused
// multiply-add: Swift would call libm's fmaf per lane without an explicit CPU
// flag, which is 30x slower.
//
// In bfloat16 precision the packs round the operands and the micro-kernel takes
// k in pairs, the second first: the C kernel's order (ck_gemm.h), so the twins
// agree bit for bit. A product of two rounded operands is exact in FP32, so its
// multiply and add give the bits of the C kernel's fused multiply-add.

extension SwiftKernels {
    // kc is the C kernel's KC (CK_GEMM_BF16_BLOCK): bfloat16 sums are cut at its blocks.
    private static let mr = 4, nr = 16, kc = 256, mc = 64, nc = 1024

    private static func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }

    static func gemmWorkspaceSize(m: Int, n: Int, k: Int) -> Int {
        if m == 0 || n == 0 || k == 0 { return 0 }
        let kcEff = Swift.min(kc, k)
        let ncEff = roundUp(Swift.min(nc, n), nr)
        let mcEff = roundUp(Swift.min(mc, m), mr)
        return (kcEff * ncEff + mcEff * kcEff) * MemoryLayout<Float>.stride + 64
    }

    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: ConstFloatPointer, lda: Int, b: ConstFloatPointer, ldb: Int,
        beta: Float, c: FloatPointer, ldc: Int, precision: MatmulPrecision, workspace: UnsafeMutableRawPointer?
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            for i in 0..<m {
                let row = c + i &* ldc
                for j in 0..<n { row[j] = beta == 0 ? 0 : row[j] * beta }
            }
            return
        }
        guard let workspace else { preconditionFailure("SwiftKernels.gemm: workspace required") }
        let base = workspace.alignedUp(toMultipleOf: 64).assumingMemoryBound(to: Float.self)
        let kcEff = Swift.min(kc, k)
        let bfloat16 = precision == .bfloat16
        let bp = base
        let ap = base + roundUp(Swift.min(nc, n), nr) * kcEff

        var jc = 0
        while jc < n {
            let ncCur = Swift.min(nc, n - jc)
            var pc = 0
            while pc < k {
                let kcCur = Swift.min(kc, k - pc)
                let betaCur = pc == 0 ? beta : 1
                packB(transposeB, b, ldb, pc, kcCur, jc, ncCur, bp, bfloat16)
                var ic = 0
                while ic < m {
                    let mcCur = Swift.min(mc, m - ic)
                    packA(transposeA, a, lda, ic, mcCur, pc, kcCur, ap, bfloat16)
                    var jr = 0
                    while jr < ncCur {
                        let cols = Swift.min(nr, ncCur - jr)
                        var ir = 0
                        while ir < mcCur {
                            let rows = Swift.min(mr, mcCur - ir)
                            let offset: Int = (ic &+ ir) &* ldc &+ jc &+ jr
                            microKernel(
                                kcCur, ap + ir &* kcCur, bp + jr &* kcCur, c + offset, ldc, rows, cols, alpha,
                                betaCur, paired: bfloat16)
                            ir &+= mr
                        }
                        jr &+= nr
                    }
                    ic &+= mc
                }
                pc &+= kc
            }
            jc &+= nc
        }
    }

    /// `x` rounded to bfloat16 (8 significant bits), as an FP32 value: to
    /// nearest, ties to even; past the largest bfloat16 to infinity; NaN made
    /// quiet; zeros and denormals to a zero of the same sign. The bits of
    /// `vcvtneps2bf16` and of the C kernels (`ck_gemm.h`).
    static func roundedToBFloat16(_ x: Float) -> Float {
        let bits = x.bitPattern
        if bits & 0x7f80_0000 == 0 { return Float(bitPattern: bits & 0x8000_0000) }
        if bits & 0x7fff_ffff > 0x7f80_0000 { return Float(bitPattern: (bits | 0x0040_0000) & 0xffff_0000) }
        // Adding 0x7fff and the lowest kept bit carries exactly when the cut part
        // is above half, or half with an odd kept part; infinity stays infinity.
        return Float(bitPattern: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) & 0xffff_0000)
    }

    /// Panels of 4 rows of op(A)[i0 ..< i0+mc, p0 ..< p0+kc]: for each p, 4 values.
    private static func packA(
        _ transposed: Bool, _ a: ConstFloatPointer, _ lda: Int, _ i0: Int, _ mcCur: Int, _ p0: Int, _ kcCur: Int,
        _ ap: FloatPointer, _ bfloat16: Bool
    ) {
        var q = 0
        while q < mcCur {
            let rows = Swift.min(mr, mcCur - q)
            let panel = ap + q &* kcCur
            for p in 0..<kcCur {
                for i in 0..<mr {
                    var v: Float = 0
                    if i < rows {
                        v = transposed ? a[(p0 &+ p) &* lda &+ i0 &+ q &+ i] : a[(i0 &+ q &+ i) &* lda &+ p0 &+ p]
                        if bfloat16 { v = roundedToBFloat16(v) }
                    }
                    panel[p &* mr &+ i] = v
                }
            }
            q &+= mr
        }
    }

    /// Panels of 16 columns of op(B)[p0 ..< p0+kc, j0 ..< j0+nc]: for each p, 16 values.
    private static func packB(
        _ transposed: Bool, _ b: ConstFloatPointer, _ ldb: Int, _ p0: Int, _ kcCur: Int, _ j0: Int, _ ncCur: Int,
        _ bp: FloatPointer, _ bfloat16: Bool
    ) {
        var q = 0
        while q < ncCur {
            let cols = Swift.min(nr, ncCur - q)
            let panel = bp + q &* kcCur
            for p in 0..<kcCur {
                for j in 0..<nr {
                    var v: Float = 0
                    if j < cols {
                        v = transposed ? b[(j0 &+ q &+ j) &* ldb &+ p0 &+ p] : b[(p0 &+ p) &* ldb &+ j0 &+ q &+ j]
                        if bfloat16 { v = roundedToBFloat16(v) }
                    }
                    panel[p &* nr &+ j] = v
                }
            }
            q &+= nr
        }
    }

    /// C[0 ..< rows, 0 ..< cols] := alpha * Ap * Bp + beta * C   (beta == 0: C not read)
    /// k in order, or with `paired` in pairs, the second of each pair first (an odd last k alone).
    @inline(__always)
    private static func microKernel(
        _ kcCur: Int, _ ap: ConstFloatPointer, _ bp: ConstFloatPointer, _ c: FloatPointer, _ ldc: Int,
        _ rows: Int, _ cols: Int, _ alpha: Float, _ beta: Float, paired: Bool
    ) {
        var c0 = SIMD16<Float>(), c1 = SIMD16<Float>(), c2 = SIMD16<Float>(), c3 = SIMD16<Float>()
        let rawB = UnsafeRawPointer(bp)
        @inline(__always)
        func step(_ p: Int) {
            let bv = rawB.loadUnaligned(fromByteOffset: p &* 64, as: SIMD16<Float>.self)
            let o = p &* 4
            c0 += bv * ap[o]
            c1 += bv * ap[o &+ 1]
            c2 += bv * ap[o &+ 2]
            c3 += bv * ap[o &+ 3]
        }
        var p = 0
        if paired {
            while p &+ 2 <= kcCur {
                step(p &+ 1)
                step(p)
                p &+= 2
            }
        }
        while p < kcCur {
            step(p)
            p &+= 1
        }
        storeRow(c0, c, cols, alpha, beta)
        if rows > 1 { storeRow(c1, c + ldc, cols, alpha, beta) }
        if rows > 2 { storeRow(c2, c + 2 &* ldc, cols, alpha, beta) }
        if rows > 3 { storeRow(c3, c + 3 &* ldc, cols, alpha, beta) }
    }

    @inline(__always)
    private static func storeRow(_ tile: SIMD16<Float>, _ row: FloatPointer, _ cols: Int, _ alpha: Float, _ beta: Float) {
        let acc = tile * alpha
        if cols == 16 {
            let raw = UnsafeMutableRawPointer(row)
            if beta == 0 {
                raw.storeBytes(of: acc, as: SIMD16<Float>.self)
            } else {
                let old = UnsafeRawPointer(row).loadUnaligned(as: SIMD16<Float>.self)
                raw.storeBytes(of: acc + old * beta, as: SIMD16<Float>.self)
            }
        } else {
            for j in 0..<cols { row[j] = beta == 0 ? acc[j] : acc[j] + beta * row[j] }
        }
    }
}
