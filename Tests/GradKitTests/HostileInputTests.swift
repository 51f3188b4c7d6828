// GradKit — tests of what a hostile user can feed gradkit: diverging runs, outputs over inputs, huge or lying files, memory limits, long arguments. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
@testable import gradkit
@testable import GradKit
import Testing

/// Runs `gradkit` in this process: the exit status and the error line.
private func run(_ arguments: String...) -> (status: Int32, error: String) {
    let (status, error) = execute(arguments)
    return (status, error ?? "")
}

/// A valid CSV of `rows` rows: two features and a binary label.
private func csvText(rows: Int) -> String {
    (0..<rows).map { "\($0 % 7),\(Double($0) * 0.5),\($0 % 2)\n" }.joined()
}

/// Lowers this process's soft address-space limit to what it maps now plus
/// `headroom` bytes; for exit tests only (the limit stays with the process).
private func limitAddressSpace(headroom: Int) {
    let statm = (try? FileIO.readAll("/proc/self/statm").get()).map { String(decoding: $0, as: UTF8.self) } ?? "0"
    let mapped = (Int(statm.split(separator: " ").first ?? "0") ?? 0) * sysconf(Int32(_SC_PAGESIZE))
    var limit = rlimit()
    getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
    limit.rlim_cur = rlim_t(mapped + headroom)
    setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
}

@Suite("Hostile input: extreme numbers and diverging runs")
struct HostileNumberTests {
    @Test("infinite, NaN and huge values print instead of trapping in Int conversions")
    func saturatingConversions() {
        #expect(Int(saturating: .infinity) == .max && Int(saturating: -.infinity) == .min && Int(saturating: .nan) == 0)
        #expect(Int(saturating: 1e300) == .max && Int(saturating: -3.7) == -3 && Int(saturating: 0x1p62) == 1 << 62)
        #expect(powerOfTen(.infinity) == "inf" && powerOfTen(1e5) == "10^5" && powerOfTen(1e300) == "10^300")
        #expect(percent(1e30).hasSuffix("%") && percent(0.5) == "50.00%")
        #expect(SVGCanvas.number(1e300) == "\(1e300)" && SVGCanvas.number(.infinity) == "inf" && SVGCanvas.number(2.5) == "2.5")
    }

    @Test("SGD at --lr 1e6 ends with one line and a status, and its report's verdicts are built")
    func divergingRunReport() throws {
        let directory = try temporaryDirectory()
        let result = run("train", "--epochs", "1", "--lr", "1e6", "--optimizer", "sgd", "--quiet", "--json", "--report", directory + "/r")
        #expect(result.status == 0 || result.status == 1, "\(result)")
        #expect(FileIO.identity(of: directory + "/r/report.md") != nil)
    }

    @Test("a diverged run never replaces a checkpoint with one a resume would refuse")
    func divergedCheckpoint() throws {
        let path = try temporaryDirectory() + "/c.safetensors"
        #expect(run("train", "--dataset", "xor", "--epochs", "1", "--quiet", "--checkpoint", path).status == 0)
        let good = try FileIO.readAll(path).get()
        let diverged = run("train", "--dataset", "xor", "--epochs", "3", "--quiet", "--lr", "3e38", "--checkpoint", path)
        #expect(diverged.status == 1 && diverged.error.contains("diverged"), "\(diverged)")
        #expect(try FileIO.readAll(path).get() == good, "the good checkpoint was replaced")
        // Never stopping on non-finite gradients, the run ends normally, and still writes nothing resume refuses.
        let endless = run("train", "--dataset", "xor", "--epochs", "2", "--quiet", "--lr", "3e38", "--max-skipped-steps", "0", "--checkpoint", path)
        #expect(endless.status == 0, "\(endless)")
        #expect(try FileIO.readAll(path).get() == good, "the good checkpoint was replaced")
    }
}

@Suite("Hostile input: outputs")
struct HostileOutputTests {
    @Test("an input inside what --report writes is refused before training, and left as it was")
    func inputInsideReport() throws {
        let directory = try temporaryDirectory()
        try FileIO.createDirectories(directory + "/r/figures").get()
        let input = directory + "/r/figures/loss.svg"
        try FileIO.writeAtomically(Array(csvText(rows: 40).utf8), to: input).get()
        let before = try FileIO.readAll(input).get()
        let result = run("train", "--csv", input, "--report", directory + "/r", "--epochs", "1", "--quiet")
        #expect(result.status == 1 && result.error.contains("--report") && result.error.contains("--csv"), "\(result)")
        #expect(try FileIO.readAll(input).get() == before)
        #expect(FileIO.identity(of: directory + "/r/report.md") == nil)
        // Files of the directory the report does not write stay usable.
        let beside = directory + "/r/data.csv"
        try FileIO.writeAtomically(Array(csvText(rows: 40).utf8), to: beside).get()
        let ok = run("train", "--csv", beside, "--report", directory + "/r", "--log", directory + "/r/run.jsonl", "--epochs", "1", "--quiet")
        #expect(ok.status == 0, "\(ok)")
    }

    @Test("a figure already in the report's directory that links to an input (symbolic or hard link) is refused, the input left as it was")
    func figureLinkedToInput() throws {
        let directory = try temporaryDirectory(), log = directory + "/run.jsonl", copy = directory + "/copy.jsonl"
        #expect(run("train", "--dataset", "xor", "--log", log, "--epochs", "1", "--quiet").status == 0)
        try FileIO.writeAtomically(try FileIO.readAll(log).get(), to: copy).get()
        let before = try FileIO.readAll(log).get()
        try FileIO.createDirectories(directory + "/r/figures").get()
        #expect(symlink("../../run.jsonl", directory + "/r/figures/loss.svg") == 0 && link(copy, directory + "/r/figures/depth-profile.svg") == 0)
        let report = run("report", log, "--output", directory + "/r")
        #expect(report.status == 1 && report.error.contains("loss.svg: is the same file as the input"), "\(report)")
        // Another output counts too: the figure would be written over the run's own log.
        let train = run("train", "--dataset", "xor", "--log", copy, "--report", directory + "/r", "--epochs", "1", "--quiet")
        #expect(train.status == 1 && train.error.contains("--log and --report both write"), "\(train)")
        #expect(try FileIO.readAll(log).get() == before && FileIO.identity(of: directory + "/r/report.md") == nil)
    }

    @Test("outputs that are one path, or one inside what another writes, are refused up front naming both options", arguments: [
        ("--checkpoint", "X", "--report", "X"),
        ("--log", "X", "--tensorboard", "X"),
        ("--tensorboard", "X", "--checkpoint", "X"),
        ("--log", "X/figures/run.jsonl", "--report", "X"),
        ("--tensorboard", "X/figures", "--report", "X"),
    ])
    func collidingOutputs(first: String, firstPath: String, second: String, secondPath: String) throws {
        let directory = try temporaryDirectory()
        try FileIO.createDirectories(directory + "/X/figures").get()
        let result = run(
            "train", "--dataset", "xor", first, directory + "/" + firstPath, second, directory + "/" + secondPath, "--epochs", "1", "--quiet")
        #expect(result.status == 1 && result.error.contains(first) && result.error.contains(second), "\(result)")
        #expect(FileIO.entries(of: directory + "/X") == ["figures"], "something was written")
    }

    @Test("lr-find --output respects the lock a running train holds")
    func lrFindLock() throws {
        let directory = try temporaryDirectory(), path = directory + "/held.safetensors"
        let lock = try OutputLock(path: path)
        let result = run("lr-find", "--dataset", "xor", "--steps", "5", "--quiet", "--output", path)
        #expect(result.status == 1 && result.error.contains("another process"), "\(result)")
        lock.release()
        #expect(run("lr-find", "--dataset", "xor", "--steps", "5", "--quiet", "--output", path).status == 0)
    }

    @Test("two runs never append to one --log: the second is refused and the log left as it was")
    func logLock() throws {
        let path = try temporaryDirectory() + "/log.jsonl"
        #expect(run("train", "--dataset", "xor", "--epochs", "1", "--quiet", "--log", path).status == 0)
        let before = try FileIO.readAll(path).get()
        let lock = try OutputLock(path: path)
        defer { lock.release() }
        let result = run("train", "--dataset", "xor", "--epochs", "1", "--quiet", "--log", path)
        #expect(result.status == 1 && result.error.contains("--log") && result.error.contains("another process"), "\(result)")
        #expect(try FileIO.readAll(path).get() == before)
    }
}

@Suite("Hostile input: memory")
struct HostileMemoryTests {
    @Test("a valid tensor whose Float copy exceeds RLIMIT_AS is refused naming the limit, not an allocation failure")
    func tensorBeyondAddressSpaceLimit() async {
        await #expect(processExitsWith: .success) {
            let directory = try temporaryDirectory()
            let path = directory + "/f64.safetensors"
            let count = 1 << 29  // 4 GiB of F64 on disk (sparse), 2 GiB as Float
            let header = Array(#"{"big":{"dtype":"F64","shape":[\#(count)],"data_offsets":[0,\#(count * 8)]}}"#.utf8)
            try sparseFile(path, header: lengthField(UInt64(header.count)) + header, size: 8 + header.count + count * 8)
            defer { unlink(path) }
            limitAddressSpace(headroom: 1 << 30)
            guard case .unreadable(_, let reason)? = readError(path), reason.contains("RLIMIT_AS") else { exit(3) }
        }
    }

    @Test("a model whose estimated memory exceeds RLIMIT_AS is refused before anything is allocated")
    func modelBeyondAddressSpaceLimit() async throws {
        let small = MemoryBudget(bytes: 1 << 30, limit: "a test's limit")
        #expect(throws: UsageError.self) { try ModelOptions.checkSizes([64, 1_000_000, 10], batchNorm: false, batchSize: 32, budget: small) }
        #expect(throws: Never.self) { try ModelOptions.checkSizes([64, 1_000, 10], batchNorm: false, batchSize: 32, budget: small) }
        await #expect(processExitsWith: .success) {
            limitAddressSpace(headroom: 1 << 30)
            let result = execute(["train", "--layers", "64,1000000,10", "--epochs", "1", "--quiet"])
            exit(result.status == 2 && result.error?.contains("RLIMIT_AS") == true ? 0 : 3)
        }
    }

    @Test("a valid CSV followed by 2 GiB of NUL bytes fails at the first NUL without reading the rest")
    func csvFollowedByZeros() throws {
        let directory = try temporaryDirectory(), path = directory + "/big.csv"
        let text = Array(csvText(rows: 90).utf8)
        try sparseFile(path, header: text, size: 2 << 30)
        defer { unlink(path) }
        var thrown: (any Error)?
        let read = bytesRead { do { _ = try Dataset.csv(path) } catch { thrown = error } }
        #expect(read < refusalReadBound, "read \(read) bytes")
        guard case .badField(_, let row, _, let reason)? = thrown as? DataError else { Issue.record("\(String(describing: thrown))"); return }
        #expect(row == 91 && reason.contains("NUL byte (file offset \(text.count))"), "\(reason)")
    }

    @Test("an IDX header over 2 GiB of other bytes is refused from its size alone")
    func idxLongerThanItsHeader() throws {
        let directory = try temporaryDirectory(), path = directory + "/images.idx"
        try sparseFile(path, header: [0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4], size: 2 << 30)
        defer { unlink(path) }
        var thrown: (any Error)?
        let read = bytesRead { do { _ = try IDX.read(path) } catch { thrown = error } }
        #expect(read < refusalReadBound, "read \(read) bytes")
        guard case .malformed(_, _, let reason)? = thrown as? DataError else { Issue.record("\(String(describing: thrown))"); return }
        #expect(reason.contains("need 4 data bytes"), "\(reason)")
    }
}

@Suite("Hostile input: the command line")
struct HostileCommandLineTests {
    /// Command lines with one enormous argument, by what they stress.
    private static let longCommandLines: [String: [String]] = [
        "a 100 KB --activation": ["train", "--activation", String(repeating: "x", count: 100_000)],
        "10,002 --layers entries": ["train", "--layers", "64," + Array(repeating: "1", count: 10_001).joined(separator: ",")],
        "a 500-character --checkpoint directory": [
            "train", "--checkpoint", String(repeating: "b", count: 250) + "/" + String(repeating: "c", count: 250) + "/k.st", "--epochs", "1",
        ],
        "a 4000-character --csv": ["train", "--csv", String(repeating: "d", count: 4000), "--epochs", "1"],
        "a 5000-character option name": ["train", "--" + String(repeating: "o", count: 5000)],
        "5000 milestones": ["train", "--schedule", "multistep:" + Array(repeating: "1", count: 5000).joined(separator: "/")],
    ]

    @Test("errors quote at most about 200 characters of a path or argument", arguments: longCommandLines.keys.sorted())
    func longArguments(name: String) {
        let (status, error) = execute(HostileCommandLineTests.longCommandLines[name]!)
        #expect(status != 0 && (error ?? "").count < 700, "\(status): \((error ?? "").count) characters")
    }

    @Test("a number whose Float is within an option's range and the number not, or the other way round, or hexadecimal, is a usage error", arguments: [
        (["train", "--agc", "1e-300"], "as a Float"), (["lr-find", "--start", "1e-46"], "as a Float"),
        (["train", "--lr", "-1e-300"], "--lr must be in [0, ∞)"), (["train", "--optimizer", "sgd", "--momentum", "-1e-60"], "--momentum must be in"),
        (["train", "--lr", "1e-300"], "which a Float holds as 0"), (["train", "--optimizer", "sgd", "--momentum", "1e-60"], "which a Float holds as 0"),
        (["train", "--lr", "0x10"], "--lr must be a number"), (["train", "--schedule", "step:2:0x1p-3"], "must be a number"),
    ])
    func numbersAsFloats(arguments: [String], message: String) {
        let (status, error) = execute(arguments + ["--dataset", "xor", "--quiet"])
        #expect(status == 2 && (error ?? "").contains(message), "\(status): \(error ?? "")")
    }

    @Test("an argument that is not UTF-8 is refused: decoded with U+FFFD, a path would name another file")
    func invalidUTF8() {
        let words: [[UInt8]] = [Array("gradkit".utf8), Array("train".utf8), Array("--checkpoint".utf8), [0x78, 0xFF, 0x2E, 0x73, 0x74]]
        var argv: [UnsafeMutablePointer<CChar>?] = words.map { bytes in strdup(bytes.map { CChar(bitPattern: $0) } + [0]) } + [nil]
        defer { for word in argv { free(word) } }
        #expect(runTool(argc: Int32(words.count), argv: &argv) == 2)
    }

    @Test("a separator the CSV reader refuses is a usage error (exit 2)", arguments: ["\n", "1", "\"", "-", ".", "+", "a", "😀", ""])
    func badSeparators(separator: String) throws {
        let directory = try temporaryDirectory()
        let path = directory + "/d.csv"
        try FileIO.writeAtomically(Array(csvText(rows: 10).utf8), to: path).get()
        let result = run("train", "--csv", path, "--separator", separator, "--epochs", "1", "--quiet")
        #expect(result.status == 2 && result.error.contains("--separator"), "\(result)")
    }

    @Test("--idx refuses one file as images and labels, and a one-dimensional images file")
    func idxFiles() throws {
        let directory = try temporaryDirectory()
        let labels: [UInt8] = [0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1]
        try FileIO.writeAtomically(labels, to: directory + "/l.idx").get()
        let twice = run("train", "--idx", "\(directory)/l.idx,\(directory)/./l.idx", "--epochs", "1", "--quiet")
        #expect(twice.status == 2 && twice.error.contains("both IMAGES and LABELS"), "\(twice)")
        try FileIO.writeAtomically(labels, to: directory + "/copy.idx").get()
        let oneDimensional = run("train", "--idx", "\(directory)/copy.idx,\(directory)/l.idx", "--epochs", "1", "--quiet")
        #expect(oneDimensional.status == 1 && oneDimensional.error.contains("label file"), "\(oneDimensional)")
    }

    @Test("multistep milestones must strictly increase", arguments: [("5/3", false), ("5/5", false), ("3/5", true), ("0/1/2", true)])
    func milestones(text: String, accepted: Bool) {
        var message = ""
        do {
            _ = try TrainConfiguration(ParsedArguments(["--schedule", "multistep:" + text], for: .train))
        } catch {
            message = "\(error)"
        }
        #expect(message.isEmpty == accepted, "\(message)")
        if !accepted { #expect(message.contains("strictly increase")) }
    }
}

@Suite("Hostile input: resuming")
struct HostileResumeTests {
    private static let common = ["train", "--dataset", "xor", "--quiet"]

    /// A checkpoint after 1 epoch, changed by `edit`, then resumed to 2 epochs.
    private func resumeEdited(_ edit: (inout Checkpoint) -> Void) throws -> (status: Int32, error: String) {
        let directory = try temporaryDirectory(), path = directory + "/k.st"
        #expect(execute(HostileResumeTests.common + ["--epochs", "1", "--checkpoint", path]).status == 0)
        var checkpoint = try Checkpoint.read(from: path)
        edit(&checkpoint)
        try checkpoint.write(to: path)
        let (status, error) = execute(HostileResumeTests.common + ["--epochs", "2", "--resume", path])
        return (status, error ?? "")
    }

    @Test("optimizer.parameters naming one parameter twice, or a tensor the model lacks, is malformed metadata")
    func optimizerNames() throws {
        let duplicate = try resumeEdited { $0.optimizer!.parameters[1].name = $0.optimizer!.parameters[0].name }
        #expect(duplicate.status == 1 && duplicate.error.contains("optimizer.parameters") && duplicate.error.contains("twice"), "\(duplicate)")
        let unknown = try resumeEdited { $0.optimizer!.parameters[0].name = "9.weight" }
        #expect(unknown.status == 1 && unknown.error.contains("'9.weight'"), "\(unknown)")
    }

    @Test("a negative exp_avg_sq is refused naming the tensor, not reported as divergence")
    func negativeSquares() throws {
        let negative = try resumeEdited { checkpoint in
            let tensor = checkpoint.optimizer!.parameters[0].buffers["exp_avg_sq"]!
            var values = tensor.scalars
            values[0] = -1
            checkpoint.optimizer!.parameters[0].buffers["exp_avg_sq"] = Tensor(shape: tensor.shape, scalars: values)
        }
        #expect(negative.status == 1 && negative.error.contains("exp_avg_sq") && !negative.error.contains("diverged"), "\(negative)")
    }

    @Test("resuming after the data file changed is refused naming the data, unless --accept-changed-options")
    func editedData() throws {
        let directory = try temporaryDirectory(), data = directory + "/d.csv", path = directory + "/k.st"
        try FileIO.writeAtomically(Array(csvText(rows: 40).utf8), to: data).get()
        #expect(execute(["train", "--csv", data, "--epochs", "1", "--quiet", "--checkpoint", path]).status == 0)
        #expect(execute(["train", "--csv", data, "--epochs", "2", "--quiet", "--resume", path]).status == 0)
        try FileIO.writeAtomically(Array(csvText(rows: 40).replacing("3,1.5,1", with: "3,1.75,1").utf8), to: data).get()
        let (status, error) = execute(["train", "--csv", data, "--epochs", "3", "--quiet", "--resume", path])
        #expect(status == 1 && (error ?? "").contains("data-fingerprint"), "\(String(describing: error))")
        #expect(execute(["train", "--csv", data, "--epochs", "3", "--quiet", "--resume", path, "--accept-changed-options"]).status == 0)
    }
}
