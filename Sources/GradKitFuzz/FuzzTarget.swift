// GradKit — the fuzz targets: each parser and what GradKit does with what it parsed. SPDX-License-Identifier: MIT
import GradKit

/// One fuzz target: a parser of untrusted input and the code that consumes
/// its result. ``run(_:)`` is what libFuzzer calls, what the replay mode
/// calls, and what the test suite calls on every committed input.
///
/// A thrown error is the expected answer to malformed input; a trap, a
/// sanitizer report, a timeout or memory beyond the fuzzer's limit is a bug.
/// Checks the harness makes of its own (a round trip that changes the data,
/// a validated value that no longer validates) trap with `fatalError`, so
/// the fuzzer reports them as crashes.
enum FuzzTarget: String, CaseIterable, Sendable {
    /// `SafeTensors.decode`, then the checkpoint layer and a restore into a small trainer.
    case safetensors
    /// `IDX.parse`, then an images/labels pair through `Dataset.parseIDX`.
    case idx
    /// `Dataset.parseCSV` with options from the first bytes, then scaling, splits and batches.
    case csv
    /// `RunHistory(parsing:)` of a JSON-lines training log, then its report.
    case log
    /// `gradkit`'s command line (NUL-separated words) through its parsing and validation.
    case arguments

    /// Runs one input through the target.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .safetensors: SafeTensorsTarget.run(bytes)
        case .idx: IDXTarget.run(bytes)
        case .csv: CSVTarget.run(bytes)
        case .log: LogTarget.run(bytes)
        case .arguments: ArgumentsTarget.run(bytes)
        }
    }
}

/// Choices drawn from input bytes, as LLVM's `FuzzedDataProvider` draws them:
/// a byte picks one of a list, and an exhausted input picks the first.
struct ByteChoices {
    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) { self.bytes = bytes }

    /// The bytes not consumed yet.
    var remaining: ArraySlice<UInt8> { bytes }

    /// The next byte (0 once the input is exhausted).
    mutating func byte() -> UInt8 { bytes.popFirst() ?? 0 }

    /// One of `options`, picked by the next byte.
    mutating func pick<T>(_ options: [T]) -> T { options[Int(byte()) % options.count] }
}

/// Traps with `message` when a property the harness checks does not hold.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz property violated: \(message())") }
}

/// Whether two tensors have the same shape and the same bits (NaN payloads included).
func identical(_ a: Tensor, _ b: Tensor) -> Bool {
    a.shape == b.shape && a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern)
}
