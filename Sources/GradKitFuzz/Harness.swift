// GradKit — the fuzzing harness's entry point: libFuzzer's driver, or a replayer. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

// Built with -DFUZZING (Fuzz/run.sh), the harness hands its arguments to
// libFuzzer, linked without its own main: SwiftPM renames an executable's
// main, so libFuzzer's would never run. Built normally, it replays inputs.
#if FUZZING
/// libFuzzer's driver (`libclang_rt.fuzzer_no_main`): parses its flags, then fuzzes or runs the files given.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt
#endif

/// The target libFuzzer's callback runs, chosen once before the driver starts.
nonisolated(unsafe) private var selectedTarget = FuzzTarget.safetensors

/// The environment variable that names the target. The first argument sets
/// it; libFuzzer's child processes (`-fork`, `-merge`) get libFuzzer's own
/// flags only, and find the target here.
private let targetVariable = "GRADKIT_FUZZ_TARGET"

@main
struct Harness {
    static let usage = """
        usage: GradKitFuzz TARGET [FILE_OR_DIRECTORY ...] [libFuzzer flags]   (fuzzing build: Fuzz/run.sh)
               GradKitFuzz TARGET FILE_OR_DIRECTORY ...   (normal build: run every input once)
               GradKitFuzz seeds DIRECTORY                (write the generated seed inputs)
        targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))
        """

    static func main() {
        var argc = CommandLine.argc
        let argv = CommandLine.unsafeArgv
        if argc >= 2, let first = argv[1].map({ String(cString: $0) }), first == "seeds" || FuzzTarget(rawValue: first) != nil {
            // Shift the first argument out, so the remaining ones are libFuzzer's.
            for i in 1..<Int(argc) { argv[i] = argv[i + 1] }
            argc -= 1
            if first == "seeds" {
                guard argc == 2 else { fail(usage) }
                Seeds.write(to: String(cString: argv[1]!))
                return
            }
            setenv(targetVariable, first, 1)
        }
        guard let name = getenv(targetVariable).map({ String(cString: $0) }), let target = FuzzTarget(rawValue: name) else { fail(usage) }
        selectedTarget = target
        #if FUZZING
        var arguments = argv
        exit(runDriver(&argc, &arguments) { data, size in
            selectedTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
            return 0
        })
        #else
        let paths = (1..<Int(argc)).map { String(cString: argv[$0]!) }
        guard !paths.isEmpty else { fail(usage) }
        let inputs = paths.flatMap(inputFiles)
        for path in inputs { target.run(readInput(path)) }
        print("\(target.rawValue): replayed \(inputs.count) input\(inputs.count == 1 ? "" : "s")")
        #endif
    }
}

/// Prints `message` to standard error and exits with status 2.
func fail(_ message: String) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// The files at `path`: itself, or every file under it (sorted; hidden ones skipped).
func inputFiles(_ path: String) -> [String] {
    guard let stream = opendir(path) else { return [path] }
    defer { closedir(stream) }
    var names: [String] = []
    while let entry = readdir(stream) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted().flatMap { inputFiles(path + "/" + $0) }
}

/// The bytes of an input file; exits when it cannot be read.
func readInput(_ path: String) -> [UInt8] {
    switch FileIO.readAll(path) {
    case .success(let bytes): return bytes
    case .failure(let error): fail("\(path): \(error.message)")
    }
}
