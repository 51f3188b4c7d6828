// Helpers shared by the test suites.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// The sizes every kernel is exercised at: empty, tiny, around SIMD widths
/// (16 floats = one AVX-512 register), and odd.
let enumeratedSizes = [0, 1, 2, 3, 7, 15, 16, 17, 64, 257]

/// A reproducible tensor with elements uniform in `range`.
func randomTensor(_ shape: [Int], seed: UInt64, in range: ClosedRange<Float> = -1...1) -> Tensor {
    var generator = SeededGenerator(seed: seed)
    return Tensor(randomUniform: shape, lowerBound: range.lowerBound, upperBound: range.upperBound, using: &generator)
}

func randomScalars(_ count: Int, seed: UInt64, in range: ClosedRange<Float> = -1...1) -> [Float] {
    randomTensor([count], seed: seed, in: range).scalars
}

/// Distance in units in the last place of `expected` (as Float).
func ulpDistance(_ actual: Float, _ expected: Double) -> Double {
    if actual.isNaN || expected.isNaN { return actual.isNaN && expected.isNaN ? 0 : .infinity }
    if actual.isInfinite || expected.isInfinite { return Double(actual) == expected ? 0 : .infinity }
    let reference = Float(expected)
    let unit = Double(Swift.max(reference.magnitude, Float.leastNormalMagnitude).ulp)
    return Swift.abs(Double(actual) - expected) / unit
}

/// Checks two arrays element by element: lengths first (zipping arrays of
/// different lengths would silently compare a prefix).
func expectClose(
    _ actual: [Float], _ expected: [Float], relative: Float = 0, absolute: Float = 0,
    _ context: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "length \(actual.count) vs \(expected.count) \(context())", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    var worst = -1, worstError: Float = 0
    for i in actual.indices {
        let a = actual[i], e = expected[i]
        if a.isNaN && e.isNaN { continue }
        if a == e { continue }
        let error = Swift.abs(a - e)
        let allowed = absolute + relative * Swift.max(Swift.abs(a), Swift.abs(e))
        if !(error <= allowed), worst < 0 || error > worstError {
            worst = i
            worstError = error
        }
    }
    #expect(
        worst < 0,
        "element \(worst): \(worst >= 0 ? actual[worst] : 0) vs \(worst >= 0 ? expected[worst] : 0) \(context())",
        sourceLocation: sourceLocation)
}

/// Bitwise equality, treating every NaN as equal to every NaN.
func expectIdentical(
    _ actual: [Float], _ expected: [Float], _ context: @autoclosure () -> String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(actual.count == expected.count, "length \(actual.count) vs \(expected.count) \(context())", sourceLocation: sourceLocation)
    guard actual.count == expected.count else { return }
    let first = actual.indices.first { i in
        !(actual[i].bitPattern == expected[i].bitPattern || (actual[i].isNaN && expected[i].isNaN))
    }
    #expect(
        first == nil,
        "element \(first ?? -1): \(first.map { actual[$0] } ?? 0) vs \(first.map { expected[$0] } ?? 0) \(context())",
        sourceLocation: sourceLocation)
}

/// Runs `body` once per instruction-set level this CPU has (on this thread only).
func forEachInstructionSet(_ body: (Kernels.InstructionSet) -> Void) {
    let detected = Kernels.detectedInstructionSet
    for level in [Kernels.InstructionSet.portable, .avx2, .avx512] where level <= detected {
        Kernels.withInstructionSet(level) { body(level) }
    }
}

/// Runs `body` for the C kernel on every instruction set this CPU has, then once for the Swift
/// twin (which has one path whatever the instruction set); `body` gets a label naming the path.
func forEachKernelPath(_ body: (String) -> Void) {
    forEachInstructionSet { isa in Kernels.withBackend(.c) { body("c \(isa)") } }
    Kernels.withBackend(.swift) { body("swift") }
}

/// Runs a kernel call writing `count` floats into a fresh buffer, once per backend.
func output(count: Int, backend: KernelBackend, _ body: (FloatPointer) -> Void) -> [Float] {
    var result = [Float](repeating: .nan, count: count)
    Kernels.withBackend(backend) {
        result.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress { body(base) } else { var dummy: Float = 0; body(&dummy) }
        }
    }
    return result
}

/// The standard error of an exit test, as text.
func standardError(_ result: ExitTest.Result?) -> String {
    String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
}

/// Limits the size of every file this process writes to `bytes`, with SIGXFSZ ignored so a write
/// past it fails with EFBIG, as `gradkit` runs; for exit tests only (the limit stays with the process).
func limitFileSize(_ bytes: Int) {
    signal(SIGXFSZ, SIG_IGN)
    var limit = rlimit(rlim_cur: rlim_t(bytes), rlim_max: rlim_t(bytes))
    setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
}

/// A fresh directory under /tmp for files a test writes.
func temporaryDirectory() throws -> String {
    var template = Array("/tmp/gradkit-test-XXXXXX".utf8CString)
    guard let path = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
        throw DataError.invalidArgument("mkdtemp failed")
    }
    return String(cString: path)
}

/// The committed fixtures directory (Tests/Fixtures), found from this file's path.
func fixturePath(_ name: String, file: String = #filePath) -> String {
    var parts = file.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)  // GradKitTests/TestSupport.swift
    return parts.joined(separator: "/") + "/Fixtures/" + name
}

/// Kernels.threadCount is process-wide and suites run in parallel: tests that
/// set it hold this lock, so one test's counts are not changed under it.
nonisolated(unsafe) private var threadCountMutex = pthread_mutex_t()
private let threadCountMutexReady: Bool = { pthread_mutex_init(&threadCountMutex, nil); return true }()

func withExclusiveThreadCount<Result>(_ body: () throws -> Result) rethrows -> Result {
    precondition(threadCountMutexReady)
    pthread_mutex_lock(&threadCountMutex)
    let saved = Kernels.threadCount
    defer {
        Kernels.threadCount = saved
        pthread_mutex_unlock(&threadCountMutex)
    }
    return try body()
}
