// The kernels' run-time choices that must never change results: subnormal flushing, which follows the
// calling thread onto the pool's workers, and the controller that decides whether small products are split.
import CKernels
import Testing

@testable import GradKit

@Suite("Floating-point mode and the split controller")
struct FloatingPointModeTests {
    /// 2^20 subnormals (±k · 2^-149 for k in 1...4096) and normal numbers, in alternation: enough that an
    /// elementwise kernel splits them over every thread.
    static let mixed: Tensor = {
        let values = (0..<(1 << 20)).map { i -> Float in
            let sign: Float = i % 4 < 2 ? 1 : -1
            return i % 2 == 0 ? sign * Float(i % 4096 + 1) * Float.leastNonzeroMagnitude : sign * Float(i % 1000 + 1)
        }
        return Tensor(shape: [values.count], scalars: values)
    }()

    @Test("flushing subnormals reaches every part a pool worker runs, and leaving it does too")
    func flushingFollowsTheCaller() throws {
        try #require(Kernels.canFlushSubnormals, "x86-64 and AArch64 flush subnormals")
        let x = Self.mixed
        // The exact products: a subnormal times 0.5 is representable (k · 2^-150 rounds to even: exact for even k).
        let exact = x.scalars.map { $0 * 0.5 }
        // Flushed, a subnormal operand reads as a zero of its sign.
        let flushed = x.scalars.map { $0.isSubnormal ? Float(signOf: $0, magnitudeOf: 0) : $0 * 0.5 }
        withExclusiveThreadCount {
            for threads in [1, 2, 3] {
                Kernels.threadCount = threads
                for backend in KernelBackend.allCases {
                    let inMode = Kernels.withBackend(backend) { Kernels.withSubnormalsFlushed { (x * 0.5).scalars } }
                    expectIdentical(inMode, flushed, "flushed, \(backend), \(threads) threads")
                    #expect(!Kernels.flushesSubnormals, "the mode is put back")
                    // The workers ran the flushed job last: they must take on this thread's mode again.
                    let after = Kernels.withBackend(backend) { (x * 0.5).scalars }
                    expectIdentical(after, exact, "after, \(backend), \(threads) threads")
                }
            }
        }
    }

    @Test("flushing is both halves: subnormal results become zero, and subnormal operands read as zero")
    func bothHalves() throws {
        try #require(Kernels.canFlushSubnormals)
        let count = 1 << 20
        // 1e-20 · 1e-20 = 1e-40: normal operands, a subnormal result (flush to zero's half).
        let tiny = Tensor(shape: [count], scalars: [Float](repeating: 1e-20, count: count))
        // A subnormal times 2^100 is normal: only reading the operand as zero (the other half) gives 0.
        let subnormal = Tensor(shape: [count], scalars: [Float](repeating: 3 * Float.leastNonzeroMagnitude, count: count))
        let scale = Float(sign: .plus, exponent: 100, significand: 1)
        withExclusiveThreadCount {
            for threads in [1, 2, 3] {
                Kernels.threadCount = threads
                for backend in KernelBackend.allCases {
                    let (underflow, scaled) = Kernels.withBackend(backend) {
                        Kernels.withSubnormalsFlushed { ((tiny * tiny).scalars, (subnormal * scale).scalars) }
                    }
                    #expect(underflow.allSatisfy { $0.bitPattern == 0 }, "a subnormal result, \(backend), \(threads) threads")
                    #expect(scaled.allSatisfy { $0.bitPattern == 0 }, "a subnormal operand, \(backend), \(threads) threads")
                    let plain = Kernels.withBackend(backend) { ((tiny * tiny).scalars, (subnormal * scale).scalars) }
                    #expect(plain.0.allSatisfy { $0 == Float(1e-20) * Float(1e-20) && $0.isSubnormal })
                    #expect(plain.1.allSatisfy { $0 == 3 * Float.leastNonzeroMagnitude * scale && $0.isNormal })
                }
            }
        }
    }

    @Test("in flushing mode the C kernels and the Swift twins agree bit for bit on subnormal data")
    func backendsAgreeWhenFlushing() throws {
        try #require(Kernels.canFlushSubnormals)
        let x = Self.mixed
        let y = Tensor(shape: x.shape, scalars: x.scalars.reversed())
        func compute() -> [[Float]] {
            // Operations whose twins round alike (exp, for one, is a different polynomial in each).
            [(x * y).scalars, (x + y).scalars, x.relu().scalars, (x - y).scalars, (x * 1e-30).scalars]
        }
        Kernels.withSubnormalsFlushed {
            let c = Kernels.withBackend(.c, compute), swift = Kernels.withBackend(.swift, compute)
            for (index, (a, b)) in zip(c, swift).enumerated() { expectIdentical(a, b, "result \(index)") }
            #expect(c[4].allSatisfy { !$0.isSubnormal }, "products that fall below the normal range are zero")
        }
    }

    @Test("Adam flushes its moments' subnormals and still agrees between backends")
    func adamWithSubnormalMoments() throws {
        try #require(Kernels.canFlushSubnormals)
        // Gradients of 1e-20 square to 1e-40, a subnormal second moment without flushing.
        func run(_ backend: KernelBackend) -> (parameter: [Float], state: [Float]) {
            Kernels.withBackend(backend) {
                let parameter = Parameter(Tensor(shape: [4096], scalars: (0..<4096).map { Float($0 % 7) - 3 }))
                let adam = Adam([parameter], learningRate: 1e-3)
                for step in 0..<3 {
                    parameter.gradient = Tensor(shape: [4096], scalars: (0..<4096).map { Float(($0 + step) % 5 + 1) * 1e-20 })
                    adam.step()
                }
                let state = adam.exportState().parameters[0].buffers["exp_avg_sq"]!.scalars
                return (parameter.value.scalars, state)
            }
        }
        let plain = run(.c)
        #expect(plain.state.contains { $0.isSubnormal }, "the unflushed second moments are subnormal")
        Kernels.withSubnormalsFlushed {
            let c = run(.c), swift = run(.swift)
            expectIdentical(c.parameter, swift.parameter, "parameters")
            expectIdentical(c.state, swift.state, "second moments")
            // Bit patterns: a subnormal compares equal to zero while subnormals are read as zero.
            #expect(c.state.allSatisfy { $0.bitPattern == 0 }, "the second moments underflow to zero")
            // The update is lr · m̂ / (√v̂ + ε) either way: flushing v changes no parameter here.
            expectIdentical(c.parameter, plain.parameter, "parameters with and without flushing")
        }
    }

    // MARK: - The split controller, driven by a synthetic clock

    /// Runs `decisions` decisions of a controller whose program takes `interval(mode, decision)`
    /// nanoseconds after a decision for `mode` (1: split); returns the decisions made in each mode.
    static func drive(
        _ decisions: Int, _ interval: (Int, Int) -> UInt64, controller: inout ck_split_controller
    ) -> [Int] {
        var counts = [0, 0], now: UInt64 = 1
        for decision in 0..<decisions {
            let mode = Int(ck_split_controller_decide(&controller, now))
            counts[mode] += 1
            now += interval(mode, decision)
        }
        return counts
    }

    static let cycle = Int(CK_SPLIT_WINDOW) * Int(4 + CK_SPLIT_EXPLOIT)

    @Test("the controller keeps the faster mode, whichever it is")
    func controllerKeepsTheFasterMode() {
        for (faster, split, unsplit) in [(1, UInt64(3_300), UInt64(4_700)), (0, 6_500, 5_600)] {
            var controller = ck_split_controller()
            ck_split_controller_init(&controller)
            let counts = Self.drive(10 * Self.cycle, { mode, _ in mode == 1 ? split : unsplit }, controller: &controller)
            // Each cycle probes each mode for two windows and spends the rest in the faster one.
            let probe = 10 * 2 * Int(CK_SPLIT_WINDOW)
            #expect(counts[1 - faster] == probe, "faster mode \(faster): \(counts)")
            #expect(counts[faster] == 10 * Self.cycle - probe)
        }
    }

    @Test("a steady drift of the machine's speed does not decide for either mode")
    func controllerCancelsDrift() {
        // One mode is 2% faster, while every interval grows by 40% over each probe: the symmetric
        // order (split, unsplit, unsplit, split) must still see which, whichever it is.
        let probeLength = 4 * Double(CK_SPLIT_WINDOW)
        for faster in [0, 1] {
            var controller = ck_split_controller()
            ck_split_controller_init(&controller)
            let counts = Self.drive(Self.cycle, { mode, decision in
                let growth = 1 + 0.4 * Double(decision % Self.cycle) / probeLength
                return UInt64(10_000 * growth * (mode == faster ? 0.98 : 1))
            }, controller: &controller)
            #expect(counts[1 - faster] == 2 * Int(CK_SPLIT_WINDOW), "faster mode \(faster): \(counts)")
        }
    }

    @Test("a pause of the program counts as a bounded interval")
    func controllerBoundsPauses() {
        // One second of evaluation inside the first split window of every cycle must not outweigh
        // 512 decisions that each take 30% less time split.
        var controller = ck_split_controller()
        ck_split_controller_init(&controller)
        let counts = Self.drive(4 * Self.cycle, { mode, decision in
            if decision % Self.cycle == 100 { return 1_000_000_000 }
            return mode == 1 ? 7_000 : 10_000
        }, controller: &controller)
        #expect(counts[0] == 4 * 2 * Int(CK_SPLIT_WINDOW), "\(counts)")
    }
}
