// GradKit — the kernel boundary: which implementation runs, on how many threads. SPDX-License-Identifier: MIT
import CKernels
import Synchronization

/// The implementation behind every hot loop.
///
/// Every C kernel in `CKernels` has a pure-Swift twin with the same contract.
/// The C kernels are the fast path; the Swift twins are the readable reference
/// the tests compare against and the benchmarks measure.
public enum KernelBackend: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The C kernels: SIMD code paths chosen at run time, multi-threaded.
    case c
    /// The pure-Swift twins: single-threaded, written for clarity first.
    case swift

    /// The raw value: `"c"` or `"swift"`.
    public var description: String { rawValue }
}

/// How matrix products compute, as PyTorch's `torch.set_float32_matmul_precision`.
///
/// Tensors stay `Float` either way: the precision decides only what happens
/// inside a GEMM (every linear layer, recurrent layer and `matmul`, forward and
/// backward). Optimizer state, reductions, elementwise operations and losses
/// stay FP32.
public enum MatmulPrecision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// FP32 operands and FP32 sums (the default).
    case float32
    /// Both operands rounded to bfloat16 (8 significant bits, to nearest even),
    /// the products summed in FP32 in the order of AVX512_BF16's `vdpbf16ps`:
    /// k in pairs, the second of each pair first. Each GEMM gives the same
    /// bits on every code path, thread count and backend (a whole model's
    /// other operations may still differ between backends, as in FP32); the
    /// exact contract, denormals included, is in `ck_gemm.h` and docs/decisions.md.
    case bfloat16

    /// The raw value: `"float32"` or `"bfloat16"`.
    public var description: String { rawValue }

    /// The precision a name denotes: `float32` or `fp32`, `bfloat16` or `bf16`
    /// (as `--matmul-precision` takes them); nil for any other text.
    public init?(name: String) {
        switch name {
        case "float32", "fp32": self = .float32
        case "bfloat16", "bf16": self = .bfloat16
        default: return nil
        }
    }
}

/// Global switches for the kernels: backend, threads, instruction set, matmul precision.
public enum Kernels {
    private static let globalBackend = Atomic<UInt8>(0)
    private static let globalMatmulPrecision = Atomic<UInt8>(0)

    /// The backend used by threads that have not chosen one with
    /// ``withBackend(_:_:)``. Default: ``KernelBackend/c``.
    public static var backend: KernelBackend {
        get { globalBackend.load(ordering: .relaxed) == 0 ? .c : .swift }
        set { globalBackend.store(newValue == .c ? 0 : 1, ordering: .relaxed) }
    }

    /// Runs `body` with `backend` on this thread only, whatever the global
    /// setting; other threads are unaffected. Nests.
    public static func withBackend<Result>(
        _ backend: KernelBackend, _ body: () throws -> Result
    ) rethrows -> Result {
        try KernelContext.local.current.overriding(\.backendOverride, with: backend, body)
    }

    /// The backend kernels called on this thread use now.
    public static var activeBackend: KernelBackend {
        KernelContext.local.existing?.backendOverride ?? backend
    }

    /// How GEMMs compute on threads that have not chosen otherwise with
    /// ``withMatmulPrecision(_:_:)``, for both backends. Default:
    /// ``MatmulPrecision/float32``.
    public static var matmulPrecision: MatmulPrecision {
        get { globalMatmulPrecision.load(ordering: .relaxed) == 0 ? .float32 : .bfloat16 }
        set { globalMatmulPrecision.store(newValue == .float32 ? 0 : 1, ordering: .relaxed) }
    }

    /// Runs `body` with GEMMs called on this thread computing in `precision`,
    /// whatever the global setting; other threads are unaffected. Nests.
    public static func withMatmulPrecision<Result>(
        _ precision: MatmulPrecision, _ body: () throws -> Result
    ) rethrows -> Result {
        try KernelContext.local.current.overriding(\.matmulPrecisionOverride, with: precision, body)
    }

    /// The precision GEMMs called on this thread use now.
    public static var activeMatmulPrecision: MatmulPrecision {
        KernelContext.local.existing?.matmulPrecisionOverride ?? matmulPrecision
    }

    /// Whether this CPU (and its OS) supports AVX512_BF16, whose `vdpbf16ps`
    /// computes ``MatmulPrecision/bfloat16``'s order in hardware (see
    /// ``BFloat16DotProduct``).
    public static var cpuHasAVX512BF16: Bool { ck_cpu_has_avx512_bf16() }

    /// How the C kernels' AVX-512 path computes ``MatmulPrecision/bfloat16``
    /// products. Every kind gives the same bits (the contract in
    /// ``MatmulPrecision/bfloat16``); only the speed differs.
    public enum BFloat16DotProduct: Int, Sendable, CustomStringConvertible {
        /// Operands packed as rounded FP32, two fused multiply-adds per pair of
        /// k: any AVX-512 CPU, and the kind the other paths compute.
        case fusedMultiplyAdd = 0
        /// Operands packed as bfloat16 pairs, one `vdpbf16ps` per pair: twice
        /// the multiply-adds per instruction and half the packed bytes. Available
        /// where the CPU has AVX512_BF16 and its `vdpbf16ps` agreed bit for bit
        /// with the contract on a check run at first use
        /// (``Kernels/vdpbf16psChecked``); the default only where it also pays
        /// (``Kernels/vdpbf16psRate``).
        case vdpbf16ps = 1
        /// The ``vdpbf16ps`` kernel and packing with each `vdpbf16ps` computed by
        /// its documented two fused multiply-adds: tests the hardware path's
        /// packing and tiles on AVX-512 CPUs without the instruction (slower
        /// than ``fusedMultiplyAdd``).
        case emulatedVDPBF16PS = 2

        /// `"FMA pairs"`, `"vdpbf16ps"` or `"vdpbf16ps (emulated)"`.
        public var description: String {
            switch self {
            case .fusedMultiplyAdd: "FMA pairs"
            case .vdpbf16ps: "vdpbf16ps"
            case .emulatedVDPBF16PS: "vdpbf16ps (emulated)"
            }
        }
    }

    /// Whether this CPU has AVX512_BF16 and its `vdpbf16ps` agreed bit for bit
    /// with the contract on a check run at first use: 256 lanes of random
    /// pairs, where the other order, a fused three-term sum or adding the
    /// pair's exact sum would each show.
    public static var vdpbf16psChecked: Bool { ck_bf16_dot_vdpbf16ps_checked() }

    /// `vdpbf16ps`'s multiply-add rate relative to the FMA's on this core,
    /// measured once at first use (twice the time of a run of FMAs over the
    /// time of as many `vdpbf16ps`, each of whose lanes does two multiply-adds);
    /// 0 where ``vdpbf16psChecked`` is false. About 2 where the two issue at
    /// the same rate (AMD Zen 4); about 0.5 on Intel Sapphire and Emerald
    /// Rapids, whose `vdpbf16ps` issues at a quarter of the FMA's rate.
    public static var vdpbf16psRate: Double { ck_bf16_dot_vdpbf16ps_rate() }

    /// The least ``vdpbf16psRate`` at which ``BFloat16DotProduct/vdpbf16ps`` is
    /// the default: its kernel also spends a pass making the rounded panels
    /// into pairs, so an equal rate does not pay.
    public static let vdpbf16psMinimumRate: Double = Double(CK_BF16_DOT_VDPBF16PS_MIN_RATE)

    /// The kind this machine uses by default: ``BFloat16DotProduct/vdpbf16ps``
    /// where ``vdpbf16psChecked`` and ``vdpbf16psRate`` is at least
    /// ``vdpbf16psMinimumRate``, else ``BFloat16DotProduct/fusedMultiplyAdd``
    /// (the same bits either way).
    public static var detectedBFloat16DotProduct: BFloat16DotProduct {
        BFloat16DotProduct(rawValue: Int(ck_bf16_dot_detected().rawValue)) ?? .fusedMultiplyAdd
    }

    /// The kind bfloat16 GEMMs called on this thread use now.
    public static var bfloat16DotProduct: BFloat16DotProduct {
        BFloat16DotProduct(rawValue: Int(ck_bf16_dot_active().rawValue)) ?? .fusedMultiplyAdd
    }

    /// Runs `body` with bfloat16 GEMMs on this thread computing their pairs as
    /// `kind`, for tests and benchmarks; ``BFloat16DotProduct/vdpbf16ps`` is
    /// granted only where ``vdpbf16psChecked`` and ``BFloat16DotProduct/emulatedVDPBF16PS``
    /// only on AVX-512 CPUs (otherwise ``BFloat16DotProduct/fusedMultiplyAdd``).
    /// Returns `body`'s result; other threads are unaffected. Nests.
    public static func withBFloat16DotProduct<Result>(
        _ kind: BFloat16DotProduct, _ body: () throws -> Result
    ) rethrows -> Result {
        let previous = ck_bf16_dot_active()
        let wasOverridden = previous != ck_bf16_dot_detected()
        _ = ck_bf16_dot_select(ck_bf16_dot(rawValue: UInt32(kind.rawValue)))
        defer {
            if wasOverridden { _ = ck_bf16_dot_select(previous) } else { ck_bf16_dot_clear() }
        }
        return try body()
    }

    /// Whether this CPU (and its OS) supports AMX-BF16 tiles. No kernel uses AMX.
    public static var cpuHasAMXBF16: Bool { ck_cpu_has_amx_bf16() }

    /// Threads the C kernels use (the calling thread included). Defaults to the
    /// CPUs this process may run on; setting 0 restores that default. The Swift
    /// twins are single-threaded.
    public static var threadCount: Int {
        get { Int(ck_threads_get()) }
        set {
            precondition(newValue >= 0, "Kernels.threadCount: must be >= 0, got \(newValue)")
            ck_threads_set(newValue)
        }
    }

    /// Whether the C kernels may split products of a few microseconds over
    /// threads (SGEMM below 2 MFLOP, a linear layer's two backward products run
    /// one per thread). On by default, and then whether they are split is
    /// measured as the program runs: every so often a few milliseconds of
    /// decisions are taken each way and the faster way is kept (split, a bare
    /// 64×64×64 product took 3.3 µs instead of 4.7 µs on 2 threads; yet a
    /// 20-layer MLP of width 64, whose code between the products then reads
    /// what the other core wrote, took 0.65 ms split and 0.56 ms unsplit on
    /// the same VM). Off keeps them on one thread. Never changes results. The
    /// NativeOpenMP build never splits them.
    public static var splitsSmallProducts: Bool {
        get { ck_threads_fine_grained() != 0 }
        set { ck_threads_set_fine_grained(newValue ? 1 : 0) }
    }

    /// Whether this CPU can flush subnormal numbers to zero (x86-64 and
    /// AArch64 can), so that ``flushesSubnormals`` can be set.
    public static var canFlushSubnormals: Bool { ck_fp_can_flush_subnormals() != 0 }

    /// Whether floating-point arithmetic on this thread flushes subnormal
    /// numbers (magnitudes below `Float.leastNormalMagnitude`, about 1.2e-38)
    /// to zero: a subnormal result becomes a zero of its sign and a subnormal
    /// operand is read as zero (x86-64: MXCSR's FTZ and DAZ; AArch64: FPCR's
    /// FZ). Off by default, as in PyTorch (`torch.set_flush_denormal`); Keras on
    /// TensorFlow flushes by default.
    ///
    /// Why: hardware takes a slow path for subnormal arithmetic (on Intel cores
    /// about a hundred cycles per instruction). Adam's moments of a gradient
    /// that has died out decay through the subnormal range for hundreds of
    /// steps, and so do the backward signals of a deep network whose gradients
    /// vanish: a 20-layer MLP's training step slowed from 0.55 to 1.0–1.2 ms
    /// after a thousand steps, and flushing kept it at 0.55 ms. Flushing changes
    /// only results that values below 1.2e-38 enter: optimizer state (Adam's
    /// second moments up to about 1e-30 differed in a 900-step run) but, in the
    /// runs measured, no weight, since an update that small is below the
    /// spacing of the numbers it is added to.
    ///
    /// It is the calling thread's mode, not the process's: the C kernels the
    /// thread calls follow it (the pool's workers take it on for their parts of
    /// its jobs), and so does Swift arithmetic on that thread, so the two
    /// backends still agree bit for bit. Two consequences:
    /// - In `async` code do not assign it: a task may resume on another thread,
    ///   and the mode stays with the thread, where other tasks then run with it.
    ///   Wrap the synchronous work in ``withSubnormalsFlushed(_:_:)`` instead
    ///   (its closure cannot suspend).
    /// - A thread started while a thread flushes starts flushing too (Linux
    ///   copies the floating-point mode into new threads), and keeps it. That
    ///   includes the threads Dispatch and Swift concurrency start on demand,
    ///   so do not start concurrent work inside ``withSubnormalsFlushed(_:_:)``.
    ///
    /// Setting it where ``canFlushSubnormals`` is false does nothing.
    public static var flushesSubnormals: Bool {
        get { ck_fp_flushes_subnormals() != 0 }
        set { _ = ck_fp_set_flush_subnormals(newValue ? 1 : 0) }
    }

    /// Runs `body` with ``flushesSubnormals`` set to `flush` on this thread,
    /// then puts the previous mode back. Nests.
    public static func withSubnormalsFlushed<Result>(_ flush: Bool = true, _ body: () throws -> Result) rethrows -> Result {
        let previous = flushesSubnormals
        flushesSubnormals = flush
        defer { flushesSubnormals = previous }
        return try body()
    }

    /// Whether the C backend's Adam, AdamW and SGD-with-momentum steps compute
    /// the elements where a subnormal number may arise (the state of units that
    /// stopped receiving gradient decays through the range below 1.2e-38) in
    /// double precision,
    /// where no Float subnormal is an operand: each Float operation is
    /// reproduced bit for bit, so results never differ. It pays on CPUs that
    /// compute subnormal operands slowly (Intel cores take a microcode assist of
    /// about 100 ns per vector instruction), so by default (`nil`) the first such
    /// step measures that once and decides; `true` or `false` fixes the choice
    /// for the process. AVX-512 machines only; elsewhere, and while
    /// ``flushesSubnormals``, the plain loop runs.
    @_spi(Benchmarks) public static func setOptimizerSubnormalsInDouble(_ inDouble: Bool?) {
        ck_optim_set_subnormal_path(inDouble.map { $0 ? 1 : 0 } ?? -1)
    }

    /// Whether the optimizers' C kernels compute elements near subnormals in double
    /// (``setOptimizerSubnormalsInDouble(_:)``), measuring first if undecided.
    @_spi(Benchmarks) public static var optimizerSubnormalsInDouble: Bool { ck_optim_subnormal_path() != 0 }

    /// Out-of-place elementwise kernels (maps, their pullbacks, broadcasting
    /// binary ops, fill) whose operands total more than this many bytes write
    /// their output with non-temporal stores. At that size the output leaves the
    /// cache before anyone reads it, and a normal store would first read each of
    /// its cache lines from memory only to overwrite it (a 10^7-element ReLU
    /// moves 120 MB instead of 80). Defaults to
    /// ``defaultStreamingStoreThreshold``; 0 streams every such call, `Int.max`
    /// none. Never changes results.
    public static var streamingStoreThreshold: Int {
        get {
            let bytes = ck_streaming_threshold() // size_t; above Int.max only if set so from C
            return bytes < 0 ? .max : bytes
        }
        set {
            precondition(newValue >= 0, "Kernels.streamingStoreThreshold: must be >= 0, got \(newValue)")
            ck_set_streaming_threshold(newValue)
        }
    }

    /// The largest cache one core sees (its last-level cache, from Linux's
    /// sysfs), or 32 MiB where none is reported.
    public static var defaultStreamingStoreThreshold: Int { ck_streaming_threshold_default() }

    /// The instruction-set levels the C kernels have code paths for.
    public enum InstructionSet: Int, Sendable, Comparable, CustomStringConvertible {
        /// Code for the baseline instruction set (on x86-64, SSE2).
        case portable = 0
        /// AVX2 with fused multiply-add.
        case avx2 = 1
        /// AVX-512 F, BW, DQ and VL, with FMA.
        case avx512 = 2

        /// Orders the levels by capability: `portable < avx2 < avx512`.
        public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

        /// `"portable"`, `"AVX2+FMA"` or `"AVX-512"`.
        public var description: String {
            switch self {
            case .portable: "portable"
            case .avx2: "AVX2+FMA"
            case .avx512: "AVX-512"
            }
        }
    }

    /// The best level this CPU supports.
    public static var detectedInstructionSet: InstructionSet {
        InstructionSet(rawValue: Int(ck_isa_detected().rawValue)) ?? .portable
    }

    /// The level the C kernels called on this thread use: the detected one
    /// unless lowered by ``withInstructionSet(_:_:)``.
    public static var instructionSet: InstructionSet {
        InstructionSet(rawValue: Int(ck_isa_active().rawValue)) ?? .portable
    }

    /// Runs `body` with the C kernels on this thread using `level` (clamped to
    /// what the CPU supports), for tests and benchmarks of each code path. Other
    /// threads are unaffected. Nests.
    public static func withInstructionSet<Result>(
        _ level: InstructionSet, _ body: () throws -> Result
    ) rethrows -> Result {
        let previous = ck_isa_active()
        let wasOverridden = previous != ck_isa_detected()
        _ = ck_isa_select(ck_isa(rawValue: UInt32(level.rawValue)))
        defer {
            if wasOverridden { _ = ck_isa_select(previous) } else { ck_isa_clear() }
        }
        return try body()
    }

    /// True in the `NativeOpenMP` build (`-march=native -fopenmp`).
    public static var isNativeOpenMPBuild: Bool { ck_build_openmp() && ck_build_native() }

    /// The CPU's name as it reports it, for benchmark headers.
    public static var cpuName: String {
        var buffer = [CChar](repeating: 0, count: 64)
        ck_cpu_brand(&buffer, buffer.count)
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// One line naming what the kernels run on, e.g. for a benchmark header.
    public static var summary: String {
        "CPU \(cpuName); \(threadCount) thread\(threadCount == 1 ? "" : "s"); \(instructionSet) (detected \(detectedInstructionSet)); "
            + "build \(isNativeOpenMPBuild ? "NativeOpenMP" : "default"); backend \(activeBackend)"
            + (splitsSmallProducts ? "" : "; small products unsplit")
            + (activeMatmulPrecision == .float32 ? "" : "; matmul \(activeMatmulPrecision) (\(bfloat16DotProduct))")
            + (flushesSubnormals ? "; subnormals flushed" : "")
    }
}

/// Per-thread kernel state: the backend and precision overrides and the GEMM workspace.
final class KernelContext {
    static let local = ThreadLocal { KernelContext() }

    var backendOverride: KernelBackend?
    var matmulPrecisionOverride: MatmulPrecision?
    private(set) var workspace: UnsafeMutableRawPointer?
    private(set) var workspaceSize = 0

    /// A 64-byte aligned scratch buffer of at least `bytes` bytes, valid until
    /// the next call on this thread. Grows, never shrinks.
    func workspace(bytes: Int) -> UnsafeMutableRawPointer? {
        if bytes == 0 { return workspace }
        if bytes > workspaceSize {
            workspace?.deallocate()
            let size = max(bytes, workspaceSize * 3 / 2)
            workspace = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
            workspaceSize = size
        }
        return workspace
    }

    deinit { workspace?.deallocate() }

    /// Runs `body` with this thread's `setting` set to `value`, then restores it (scopes nest).
    func overriding<Value, Result>(
        _ setting: ReferenceWritableKeyPath<KernelContext, Value?>, with value: Value, _ body: () throws -> Result
    ) rethrows -> Result {
        let saved = self[keyPath: setting]
        self[keyPath: setting] = value
        defer { self[keyPath: setting] = saved }
        return try body()
    }

    @inline(__always)
    static var backend: KernelBackend { local.existing?.backendOverride ?? Kernels.backend }

    /// The precision GEMMs on this thread use: the override, else the global setting.
    var matmulPrecision: MatmulPrecision { matmulPrecisionOverride ?? Kernels.matmulPrecision }
}
