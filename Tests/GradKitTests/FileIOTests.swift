// Atomic writes, leftover temporaries, output locks and output checks.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// Writes `bytes` to a new file with plain POSIX calls (independent of FileIO).
func writePlainFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard descriptor >= 0 else { throw FileIOError(message: "open \(path): \(errno)") }
    defer { close(descriptor) }
    let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw FileIOError(message: "short write to \(path)") }
}

/// A file's bytes read with plain POSIX calls.
func readPlainFile(_ path: String) -> [UInt8]? {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
        guard n > 0 else { return n == 0 ? bytes : nil }
        bytes += chunk[..<n]
    }
}

/// `lstat`'s view of a path, or nil.
func fileStatus(_ path: String) -> stat? {
    var info = stat()
    return lstat(path, &info) == 0 ? info : nil
}

/// The error message of a throwing FileIO call, or nil when it succeeded.
func fileIOError(_ body: () throws -> Void) -> String? {
    do {
        try body()
        return nil
    } catch let error as FileIOError {
        return error.message
    } catch {
        return "\(error)"
    }
}

@Suite("file writes, locks and output checks")
struct FileIOTests {
    @Test("a writer killed by SIGKILL mid-write leaves a temporary that the next writer removes")
    func killedWriterTemporaryIsRemoved() async throws {
        let directory = try temporaryDirectory()
        let target = directory + "/model.safetensors"
        try writePlainFile(target, Array("old".utf8))
        var previous: [String] = []
        for _ in 0..<2 {
            await #expect(processExitsWith: .signal(SIGKILL)) { [target = target as String] in
                try FileIO.writeAtomically(to: target) { writer in
                    let chunk = [UInt8](repeating: 7, count: 1 << 20)
                    try chunk.withUnsafeBytes { try writer.write($0) }
                    kill(getpid(), SIGKILL)
                }
            }
            // One leftover each time: the second killed writer had already removed the first one's.
            let leftovers = directoryEntries(directory).filter { $0 != "model.safetensors" }
            #expect(leftovers.count == 1 && leftovers != previous && leftovers.allSatisfy { $0.hasPrefix(".model.safetensors.gradkit-tmp-") }, "\(leftovers)")
            #expect(leftovers.allSatisfy { fileStatus(directory + "/" + $0)?.st_size == 1 << 20 })
            previous = leftovers
        }
        #expect(readPlainFile(target) == Array("old".utf8))
        try FileIO.writeAtomically(Array("new".utf8), to: target).get()
        #expect(directoryEntries(directory) == ["model.safetensors"])
        #expect(readPlainFile(target) == Array("new".utf8))
    }

    @Test("a writer the kernel kills mid-write (file size limit) leaves a temporary that the next writer removes")
    func fileSizeLimitKilledWriter() async throws {
        // Uses only writeAtomically(_:to:), so the same test runs against any version of it.
        let directory = try temporaryDirectory()
        let target = directory + "/data.bin"
        await #expect(processExitsWith: .signal(SIGXFSZ)) { [target = target as String] in
            // The signal's default action kills; it may arrive blocked or ignored from the parent.
            signal(SIGXFSZ, SIG_DFL)
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGXFSZ)
            pthread_sigmask(SIG_UNBLOCK, &signals, nil)
            var limit = rlimit(rlim_cur: 1 << 20, rlim_max: 1 << 20)
            setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit)
            _ = FileIO.writeAtomically([UInt8](repeating: 1, count: 8 << 20), to: target)
        }
        #expect(directoryEntries(directory).count == 1, "\(directoryEntries(directory))")  // the dead writer's temporary
        try FileIO.writeAtomically(Array("done".utf8), to: target).get()
        #expect(directoryEntries(directory) == ["data.bin"])
    }

    @Test("a live writer's temporary is not removed by another writer of the same target")
    func liveWriterTemporaryIsKept() throws {
        let directory = try temporaryDirectory()
        let target = directory + "/c.safetensors"
        try FileIO.writeAtomically(to: target) { writer in
            try Array("first half ".utf8).withUnsafeBytes { try writer.write($0) }
            let mine = directoryEntries(directory).filter { $0.hasPrefix(".c.safetensors.gradkit-tmp-") }
            #expect(mine.count == 1)
            // Another writer of the same file runs to completion meanwhile; it must leave our temporary alone.
            try FileIO.writeAtomically(Array("other".utf8), to: target).get()
            #expect(directoryEntries(directory).filter { $0.hasPrefix(".c.safetensors.gradkit-tmp-") } == mine)
            try Array("second half".utf8).withUnsafeBytes { try writer.write($0) }
        }
        #expect(readPlainFile(target) == Array("first half second half".utf8))
        #expect(directoryEntries(directory) == ["c.safetensors"])
    }

    @Test("temporary names stay within 255 bytes, hidden and recognisable, for long target names")
    func longNames() throws {
        let directory = try temporaryDirectory()
        for name in [String(repeating: "a", count: 255), String(repeating: "é", count: 127), String(repeating: "b", count: 230) + "😀"] {
            #expect(name.utf8.count <= 255)
            let target = directory + "/" + name
            var seen: [String] = []
            try FileIO.writeAtomically(to: target) { writer in
                seen = directoryEntries(directory).filter { $0 != name }
                try Array(name.utf8).withUnsafeBytes { try writer.write($0) }
            }
            #expect(seen.count == 1)
            for temporary in seen {
                #expect(temporary.utf8.count <= 255 && temporary.hasPrefix(".") && temporary.contains(".gradkit-tmp-"), "\(temporary)")
            }
            #expect(readPlainFile(target) == Array(name.utf8))
            unlink(target)
        }
        // Two long names with the same first 229 bytes get different temporary prefixes.
        let a = String(repeating: "x", count: 240) + "a", b = String(repeating: "x", count: 240) + "b"
        #expect(FileIO.hiddenStem(of: a, reserving: 25) != FileIO.hiddenStem(of: b, reserving: 25))
    }

    @Test("replacing a file keeps its permission bits; a new file gets 0666 less the umask")
    func permissions() throws {
        let directory = try temporaryDirectory()
        for mode: mode_t in [0o600, 0o640, 0o755, 0o444] {
            let target = directory + "/m\(String(mode, radix: 8))"
            try writePlainFile(target, [1])
            chmod(target, mode)
            try FileIO.writeAtomically([2, 3], to: target).get()
            #expect(fileStatus(target)!.st_mode & 0o7777 == mode, "mode \(String(fileStatus(target)!.st_mode & 0o7777, radix: 8)), expected \(String(mode, radix: 8))")
            #expect(readPlainFile(target) == [2, 3])
        }
        // The reference for a new file: what creat gives under this process's umask.
        let reference = directory + "/reference"
        close(open(reference, O_WRONLY | O_CREAT | O_EXCL, 0o666))
        try FileIO.writeAtomically([1], to: directory + "/new").get()
        #expect(fileStatus(directory + "/new")!.st_mode & 0o7777 == fileStatus(reference)!.st_mode & 0o7777)
    }

    @Test("a symbolic link is written through to its file and stays a link; a dangling one is refused")
    func symbolicLinks() throws {
        let directory = try temporaryDirectory()
        try writePlainFile(directory + "/real.safetensors", [1], mode: 0o640)
        chmod(directory + "/real.safetensors", 0o640)
        symlink("real.safetensors", directory + "/link.safetensors")
        try FileIO.writeAtomically([9, 9], to: directory + "/link.safetensors").get()
        #expect(fileStatus(directory + "/link.safetensors")!.st_mode & S_IFMT == S_IFLNK)
        #expect(readPlainFile(directory + "/real.safetensors") == [9, 9])
        #expect(fileStatus(directory + "/real.safetensors")!.st_mode & 0o7777 == 0o640)
        #expect(directoryEntries(directory) == ["link.safetensors", "real.safetensors"])

        symlink("missing/nowhere.safetensors", directory + "/dangling")
        let message = fileIOError { try FileIO.writeAtomically([1], to: directory + "/dangling").get() }
        #expect(message?.contains("symbolic link") == true && message?.contains("does not exist") == true, "\(message ?? "no error")")
        #expect(fileStatus(directory + "/dangling")!.st_mode & S_IFMT == S_IFLNK)
        #expect(fileStatus(directory + "/missing") == nil)
    }

    @Test("a device, a FIFO or a directory is refused as a write target and left untouched")
    func nonRegularTargets() throws {
        let directory = try temporaryDirectory()
        mkfifo(directory + "/fifo", 0o600)
        mkdir(directory + "/dir", 0o755)
        var targets = [(directory + "/fifo", "FIFO"), (directory + "/dir", "directory")]
        // A private copy of /dev/null (root only): the real one must never be at risk in a test.
        if mknod(directory + "/null", S_IFCHR | 0o666, (1 << 8) | 3) == 0 { targets.append((directory + "/null", "character device")) }
        for (path, kind) in targets {
            let before = fileStatus(path)!
            let message = fileIOError { try FileIO.writeAtomically([1, 2, 3], to: path).get() }
            #expect(message?.contains("is a \(kind)") == true, "\(path): \(message ?? "no error")")
            let after = fileStatus(path)!
            #expect(after.st_mode == before.st_mode && after.st_ino == before.st_ino && after.st_rdev == before.st_rdev, "\(path) changed")
        }
        #expect(Set(directoryEntries(directory)) == Set(targets.map { String($0.0.split(separator: "/").last!) }))
        #expect(fileIOError { try FileIO.writeAtomically([1], to: "").get() }?.contains("empty") == true)
        #expect(fileIOError { try FileIO.writeAtomically([1], to: directory + "/missing/x").get() } != nil)
    }

    @Test("two lock holders of one output: the second is refused, naming the path, until the first releases")
    func outputLockInOneProcess() throws {
        let directory = try temporaryDirectory()
        let target = directory + "/run.safetensors"
        let first = try OutputLock(path: target)
        #expect(fileStatus(first.lockPath) != nil && first.lockPath.hasSuffix("/.run.safetensors.lock"))
        // flock locks belong to open file descriptions: a second open in the same process conflicts too.
        let message = fileIOError { _ = try OutputLock(path: target) }
        #expect(message?.contains("another process") == true && message?.contains("run.safetensors") == true, "\(message ?? "no error")")
        #expect(message?.contains("pid \(getpid())") == true, "\(message ?? "")")
        // Through a symbolic link it is the same output, hence the same lock.
        try writePlainFile(target, [1])
        symlink("run.safetensors", directory + "/alias")
        #expect(fileIOError { _ = try OutputLock(path: directory + "/alias") } != nil)
        first.release()
        #expect(fileStatus(first.lockPath) == nil)
        let second = try OutputLock(path: target)
        second.release()
        first.release()  // a second release does nothing
        #expect(directoryEntries(directory) == ["alias", "run.safetensors"])
    }

    @Test("an output lock excludes another process, and a killed holder's lock is free again")
    func outputLockAcrossProcesses() async throws {
        let directory = try temporaryDirectory()
        let target = directory + "/shared.safetensors"
        let lock = try OutputLock(path: target)
        await #expect(processExitsWith: .exitCode(3)) { [target = target as String] in
            do {
                _ = try OutputLock(path: target)
                exit(0)
            } catch let error as FileIOError {
                exit(error.message.contains("another process") ? 3 : 4)
            }
        }
        lock.release()
        await #expect(processExitsWith: .signal(SIGKILL)) { [target = target as String] in
            let held = try OutputLock(path: target)
            withExtendedLifetime(held) { _ = kill(getpid(), SIGKILL) }
        }
        #expect(directoryEntries(directory) == [".shared.safetensors.lock"])  // left by the killed holder
        let again = try OutputLock(path: target)
        again.release()
        #expect(directoryEntries(directory).isEmpty)
    }

    @Test("checkOutput refuses empty paths, non-files, unusable directories and outputs that are inputs")
    func checkOutput() throws {
        let directory = try temporaryDirectory()
        let input = directory + "/input.csv"
        try writePlainFile(input, Array("1,2\n".utf8))
        mkfifo(directory + "/fifo", 0o600)
        link(input, directory + "/hardlink.csv")
        symlink("input.csv", directory + "/symlink.csv")
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let socketPath = directory + "/socket"
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in socketPath.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let socketDescriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketDescriptor) }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketDescriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }

        let refused: [(String, String)] = [
            ("", "empty"), (directory, "directory"), (directory + "/", "directory"), (directory + "/fifo", "FIFO"),
            ("/dev/null", "character device"), (socketPath, "socket"), (directory + "/missing/out.safetensors", "No such file"),
            (input, "same file as the input"), (directory + "/hardlink.csv", "same file as the input"),
            (directory + "/symlink.csv", "same file as the input"),
        ]
        for (path, reason) in refused {
            let message = fileIOError { try FileIO.checkOutput(path, inputs: [directory + "/other.csv", input]) }
            #expect(message?.contains(reason) == true, "'\(path)': \(message ?? "no error"), expected '\(reason)'")
        }
        try FileIO.checkOutput(directory + "/out.safetensors", inputs: [input])
        try FileIO.checkOutput(directory + "/other.csv", inputs: [input, directory + "/missing.csv"])

        // A directory the process may not create files in: by permissions, or (as root) a read-only mount.
        var unwritable: String?
        if geteuid() != 0 {
            mkdir(directory + "/readonly", 0o500)
            unwritable = directory + "/readonly"
        } else {
            var info = statvfs()
            unwritable = ["/sys", "/proc/sys"].first { statvfs($0, &info) == 0 && info.f_flag & UInt(ST_RDONLY) != 0 }
        }
        if let unwritable {
            let message = fileIOError { try FileIO.checkOutput(unwritable + "/out.safetensors", inputs: []) }
            #expect(message?.contains("cannot create files") == true, "\(message ?? "no error")")
        }

        #expect(FileIO.identity(of: input) != nil)
        #expect(FileIO.identity(of: input) == FileIO.identity(of: directory + "/hardlink.csv"))
        #expect(FileIO.identity(of: input) == FileIO.identity(of: directory + "/symlink.csv"))
        #expect(FileIO.identity(of: input) != FileIO.identity(of: directory + "/fifo"))
        #expect(FileIO.identity(of: directory + "/missing") == nil)
    }
}
