// GradKit — file reads that cannot block or over-allocate, atomic writes, output locks. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing the files a user names (checkpoints, data sets,
/// reports). Every function refuses what is not a regular file instead of
/// blocking on it (a FIFO), reading it forever (`/dev/zero`) or replacing it
/// (`/dev/null`).
package enum FileIO {
    /// The whole file, or a description of why it could not be read.
    /// Refuses files larger than the memory the process may allocate
    /// (``MemoryBudget``) rather than failing to allocate them.
    package static func readAll(_ path: String) -> Result<[UInt8], FileIOError> {
        do throws(FileIOError) {
            let file = try ReadableFile(path: path)
            let budget = MemoryBudget.current
            guard file.size <= budget.bytes else {
                return .failure(FileIOError(message: "the file's \(file.size) bytes are \(budget.exceededDescription)"))
            }
            var failure: FileIOError?
            let bytes = [UInt8](unsafeUninitializedCapacity: file.size) { buffer, count in
                do throws(FileIOError) {
                    try file.read(into: UnsafeMutableRawBufferPointer(buffer), at: 0)
                    count = file.size
                } catch {
                    failure = error
                    count = 0
                }
            }
            if let failure { return .failure(failure) }
            return .success(bytes)
        } catch {
            return .failure(error)
        }
    }

    /// The machine's physical memory: no single read may need more.
    package static let physicalMemoryBytes: Int = {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), pageSize = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, pageSize > 0 else { return Int.max }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? Int.max : bytes
    }()

    /// Writes `bytes` to `path` atomically; see ``writeAtomically(to:contents:)``.
    package static func writeAtomically(_ bytes: [UInt8], to path: String) -> Result<Void, FileIOError> {
        do {
            try writeAtomically(to: path) { writer in try bytes.withUnsafeBytes { try writer.write($0) } }
            return .success(())
        } catch let error as FileIOError {
            return .failure(error)
        } catch {
            return .failure(FileIOError(message: "\(error)"))
        }
    }

    /// Writes a file atomically: `contents` streams the bytes into a hidden
    /// temporary file beside the target, which is fsynced and renamed over
    /// the target, and then the directory is fsynced. A crash leaves either
    /// the old file or the new one, never a torn one.
    ///
    /// - The target is resolved first (``resolveOutput(_:)``): a symbolic link
    ///   is written through to its file; anything but a regular file or a
    ///   missing one is refused.
    /// - A replaced file keeps its permission bits and, where the process may
    ///   set them, its owner and group; a new file gets `0666 & ~umask` (and
    ///   the directory's default ACL) as with `creat`.
    /// - The writer holds an exclusive `flock` on its temporary file from
    ///   creation to rename, so a later writer can prove a leftover temporary
    ///   abandoned (its lock is free) and removes it; it never touches a live
    ///   writer's.
    /// - Throws: ``FileIOError``, or whatever `contents` throws (the temporary
    ///   file is removed then, and the target is untouched).
    package static func writeAtomically(to path: String, contents: (inout FileWriter) throws -> Void) throws {
        let staged = try stage(path, contents: contents)
        try commit([staged])
    }

    /// Writes several files so that a failure replaces none of them: each
    /// is written and fsynced to its temporary first (as
    /// ``writeAtomically(to:contents:)`` does), and only when all are
    /// written are they renamed over their targets. A report's figures then
    /// never go without the report that shows them. (The renames themselves
    /// are atomic one by one; a crash between two leaves some files new.)
    /// - Throws: ``FileIOError`` whose `path` is the file that could not be
    ///   written; every temporary is removed then and every target untouched.
    package static func writeAtomically(_ files: [(path: String, bytes: [UInt8])]) throws(FileIOError) {
        var staged: [StagedFile] = []
        do {
            for file in files {
                staged.append(try stage(file.path) { writer in try file.bytes.withUnsafeBytes { try writer.write($0) } })
            }
        } catch {
            for file in staged { file.discard() }
            throw FileIOError(message: (error as? FileIOError)?.message ?? "\(error)", path: files[staged.count].path)
        }
        try commit(staged)
    }

    /// A file written to its locked temporary beside the target, not yet renamed over it.
    private struct StagedFile {
        let descriptor: Int32
        let temporary: String
        let target: Output

        func discard() {
            unlink(temporary)
            close(descriptor)
        }
    }

    /// Writes `contents` to a new locked temporary beside `path`'s target,
    /// with the replaced file's permissions, and fsyncs it.
    private static func stage(_ path: String, contents: (inout FileWriter) throws -> Void) throws -> StagedFile {
        let target = try resolveOutput(path)
        let prefix = hiddenStem(of: target.name, reserving: temporaryMarker.utf8.count + temporarySuffixLength) + temporaryMarker
        removeAbandonedTemporaries(in: target.directory, prefix: prefix)
        let (descriptor, temporary) = try createLockedTemporary(in: target.directory, prefix: prefix)
        let staged = StagedFile(descriptor: descriptor, temporary: temporary, target: target)
        func fail(_ what: String) -> FileIOError {
            let error = FileIOError(message: "\(what): \(String(cString: strerror(errno)))")
            staged.discard()
            return error
        }
        var writer = FileWriter(descriptor: descriptor)
        do {
            try contents(&writer)
        } catch {
            staged.discard()
            throw error
        }
        if let existing = target.existing {
            // chown first: it clears set-ID bits, and fchmod then sets the final mode.
            // (Refused unless root or the owner keeping it; the new file is then the writer's.)
            _ = fchown(descriptor, existing.st_uid, existing.st_gid)
            guard fchmod(descriptor, existing.st_mode & 0o777) == 0 else { throw fail("cannot copy the permissions of the file it replaces") }
        }
        guard fsync(descriptor) == 0 else { throw fail("fsync failed") }
        return staged
    }

    /// Renames each staged file over its target, then fsyncs each directory
    /// once. The temporaries stay locked until their renames are done.
    private static func commit(_ staged: [StagedFile]) throws(FileIOError) {
        var failure: FileIOError?
        var directories: [String] = []
        for file in staged {
            if failure == nil, rename(file.temporary, file.target.path) != 0 {
                failure = FileIOError(message: "rename failed: \(String(cString: strerror(errno)))", path: file.target.path)
            }
            if failure != nil { unlink(file.temporary) }
            if !directories.contains(file.target.directory) { directories.append(file.target.directory) }
        }
        for file in staged where close(file.descriptor) != 0 && failure == nil {
            failure = FileIOError(message: "close failed: \(String(cString: strerror(errno)))")
        }
        if let failure { throw failure }
        for path in directories {
            let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else {
                throw FileIOError(message: "the file was written, but its directory could not be opened to sync it: \(String(cString: strerror(errno)))")
            }
            // Some file systems cannot sync a directory and say EINVAL; there is nothing more to do on them.
            if fsync(directory) != 0, errno != EINVAL {
                let code = errno
                close(directory)
                throw FileIOError(message: "the file was written, but syncing its directory failed: \(String(cString: strerror(code)))")
            }
            close(directory)
        }
    }

    /// The file a write to `path` replaces or creates.
    package struct Output {
        /// The path to rename over: `path` itself, or the file its symbolic link names.
        package let path: String
        /// The directory holding it ("." for a bare name).
        package let directory: String
        /// Its name within ``directory``.
        package let name: String
        /// The file's status when it exists.
        package let existing: stat?
    }

    /// Where a write to `path` goes: a symbolic link is followed (with
    /// `realpath`) so that the file it names is replaced and the link stays a
    /// link; a dangling link is refused rather than guessed at.
    /// - Throws: ``FileIOError`` for an empty path or one ending in `/`, a
    ///   dangling link, and anything that exists but is not a regular file (a
    ///   directory, a device such as `/dev/null`, a FIFO, a socket).
    package static func resolveOutput(_ path: String) throws(FileIOError) -> Output {
        guard !path.isEmpty else { throw FileIOError(message: "the output path is empty") }
        guard !path.hasSuffix("/") else { throw FileIOError(message: "the output path ends in '/', which names a directory") }
        var info = stat()
        guard lstat(path, &info) == 0 else {
            guard errno == ENOENT else { throw FileIOError(message: String(cString: strerror(errno))) }
            let (directory, name) = split(path)
            return Output(path: path, directory: directory, name: name, existing: nil)
        }
        var resolved = path
        if info.st_mode & S_IFMT == S_IFLNK {
            guard let real = realpath(path, nil) else {
                let code = errno
                guard code == ENOENT else { throw FileIOError(message: "cannot resolve the symbolic link: \(String(cString: strerror(code)))") }
                throw FileIOError(message: "is a symbolic link to \(linkText(path).quotedForMessage(limit: 200)), which does not exist; refusing to guess where to write")
            }
            resolved = String(cString: real)
            free(real)
            guard stat(resolved, &info) == 0 else { throw FileIOError(message: String(cString: strerror(errno))) }
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw FileIOError(message: "is \(kindName(info.st_mode)), not a regular file; refusing to replace it")
        }
        let (directory, name) = split(resolved)
        return Output(path: resolved, directory: directory, name: name, existing: info)
    }

    /// A file's device and inode: two paths with equal identities are the
    /// same file (through symbolic links and hard links). Nil when `path`
    /// names nothing that exists.
    package static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Checks before any work starts that `path` can be written as an output:
    /// a non-empty path to a regular file or to nothing yet (see
    /// ``resolveOutput(_:)``), in an existing directory the process may
    /// create files in, and not the same file as any of `inputs` (writing it
    /// would destroy an input mid-run).
    /// - Throws: ``FileIOError`` saying which rule `path` breaks.
    package static func checkOutput(_ path: String, inputs: [String]) throws(FileIOError) {
        let output = try resolveOutput(path)
        var info = stat()
        guard stat(output.directory, &info) == 0 else {
            throw FileIOError(message: "its directory \(output.directory.quotedForMessage(limit: 200)) cannot be used: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw FileIOError(message: "\(output.directory.quotedForMessage(limit: 200)) is \(kindName(info.st_mode)), not a directory")
        }
        guard access(output.directory, W_OK | X_OK) == 0 else {
            throw FileIOError(message: "cannot create files in \(output.directory.quotedForMessage(limit: 200)): \(String(cString: strerror(errno)))")
        }
        try checkNotAnInput(output.path, inputs: inputs)
    }

    /// Refuses `path` when it is the same file (through links) as one of `inputs`.
    package static func checkNotAnInput(_ path: String, inputs: [String]) throws(FileIOError) {
        guard let identity = identity(of: path) else { return }
        for input in inputs where FileIO.identity(of: input) == identity {
            throw FileIOError(message: "is the same file as the input \(input.quotedForMessage(limit: 200)); writing it would destroy that input")
        }
    }

    /// "a directory", "a FIFO", ... for an error message.
    package static func kindName(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: "a regular file"
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a special file"
        }
    }

    // MARK: Hidden sibling files

    static let temporaryMarker = ".gradkit-tmp-"
    static let temporarySuffixLength = 12
    /// Linux's limit on one path component, in bytes.
    static let maximumNameBytes = 255

    /// `"." + name`, or for a name too long to take `reserving` more bytes
    /// within ``maximumNameBytes``, its start cut at a character boundary
    /// plus `~` and a hash of the whole name (so two long names sharing a
    /// start stay apart).
    static func hiddenStem(of name: String, reserving: Int) -> String {
        let room = maximumNameBytes - reserving - 1
        guard name.utf8.count > room else { return "." + name }
        var hash: UInt32 = 2_166_136_261  // FNV-1a
        for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let tag = "~" + String(hash, radix: 16).leftPadded(to: 8)
        var cut = ""
        for scalar in name.unicodeScalars {
            guard cut.utf8.count + String(scalar).utf8.count <= room - tag.utf8.count else { break }
            cut.unicodeScalars.append(scalar)
        }
        return "." + cut + tag
    }

    /// Creates `directory/prefix` plus a random suffix, exclusively, with mode
    /// 0666 filtered by the umask, and takes its `flock`.
    private static func createLockedTemporary(in directory: String, prefix: String) throws(FileIOError) -> (Int32, String) {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100 {
            let suffix = String(UInt64.random(in: 0..<(1 << 48), using: &generator), radix: 16).leftPadded(to: temporarySuffixLength)
            let path = directory + "/" + prefix + suffix
            let descriptor = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else {
                if errno == EEXIST { continue }
                throw FileIOError(message: "cannot create a temporary file in \(directory.quotedForMessage(limit: 200)): \(String(cString: strerror(errno)))")
            }
            // A cleaner that locked the file before us may have removed it
            // (it unlinks only while holding the lock, so once we hold the
            // lock and the file still has a name, no cleaner will touch it).
            var info = stat()
            guard flockRetrying(descriptor, LOCK_EX) == 0, fstat(descriptor, &info) == 0, info.st_nlink > 0 else {
                close(descriptor)
                continue
            }
            return (descriptor, path)
        }
        throw FileIOError(message: "cannot create a temporary file in \(directory.quotedForMessage(limit: 200)): 100 names were taken")
    }

    /// Removes the temporary files of writers that died (killed, crashed, out
    /// of power): those whose `flock` can be taken. Best effort: what cannot
    /// be examined is left alone.
    static func removeAbandonedTemporaries(in directory: String, prefix: String) {
        for name in entries(of: directory) where name.utf8.count == prefix.utf8.count + temporarySuffixLength && name.utf8.starts(with: prefix.utf8) {
            let path = directory + "/" + name
            // Either access mode takes a flock; a dead writer may have given its file the target's mode.
            var descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            if descriptor < 0, errno == EACCES { descriptor = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) }
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var opened = stat(), named = stat()
            guard fstat(descriptor, &opened) == 0, opened.st_mode & S_IFMT == S_IFREG,
                flockRetrying(descriptor, LOCK_EX | LOCK_NB) == 0,
                // The name must still be the file we locked: a writer that
                // finished renamed it over its target in the meantime.
                lstat(path, &named) == 0, named.st_dev == opened.st_dev, named.st_ino == opened.st_ino
            else { continue }
            unlink(path)
        }
    }

    /// The names in a directory, without "." and "..".
    package static func entries(of directory: String) -> [String] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// `flock`, retried when a signal interrupts it.
    static func flockRetrying(_ descriptor: Int32, _ operation: Int32) -> Int32 {
        while true {
            let result = flock(descriptor, operation)
            if result == 0 || errno != EINTR { return result }
        }
    }

    /// The directory and name of a path ("." for a bare name, "/" at the root).
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        return (directory, String(path[path.index(after: slash)...]))
    }

    /// What a symbolic link contains, for a message.
    private static func linkText(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, 4096)
        guard count >= 0 else { return "?" }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// A regular file opened for reading at explicit offsets. Opening never
/// blocks and refuses anything that is not a regular file by its kind; reads
/// never return less than asked for without saying why.
package final class ReadableFile {
    /// The file's size when it was opened.
    package let size: Int
    private let descriptor: Int32

    /// Opens `path` for reading.
    /// - Throws: ``FileIOError`` when it does not exist, cannot be opened, or
    ///   is not a regular file ("is a FIFO", "is a directory", ...).
    package init(path: String) throws(FileIOError) {
        // The kind is checked before opening: opening a device can have
        // effects (a tape rewinds), and a FIFO would block without O_NONBLOCK.
        var info = stat()
        guard stat(path, &info) == 0 else { throw FileIOError(message: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw FileIOError(message: "is \(FileIO.kindName(info.st_mode)), not a regular file") }
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileIOError(message: String(cString: strerror(errno))) }
        // Checked again on what was opened: the path may have been replaced in between.
        guard fstat(descriptor, &info) == 0 else {
            let code = errno
            close(descriptor)
            throw FileIOError(message: String(cString: strerror(code)))
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            close(descriptor)
            throw FileIOError(message: "is \(FileIO.kindName(info.st_mode)), not a regular file")
        }
        self.descriptor = descriptor
        self.size = Int(info.st_size)
    }

    deinit { close(descriptor) }

    /// Fills `buffer` with the bytes at `offset`.
    /// - Throws: ``FileIOError`` for a read error or when the file ends early
    ///   (it shrank after it was opened).
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(FileIOError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let n = pread(descriptor, base + done, buffer.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError(message: "read failed at byte \(offset + done): \(String(cString: strerror(errno)))")
            }
            guard n > 0 else {
                throw FileIOError(message: "the file ends at byte \(offset + done), before the \(size) bytes it had when opened: it changed while being read")
            }
            done += n
        }
    }
}

/// Where ``FileIO/writeAtomically(to:contents:)`` sends a file's bytes.
package struct FileWriter {
    fileprivate let descriptor: Int32
    /// Bytes written so far.
    package private(set) var count = 0

    fileprivate init(descriptor: Int32) { self.descriptor = descriptor }

    /// Appends `bytes`, retrying short writes and interruptions.
    /// - Throws: ``FileIOError`` (a full disk, a quota, an I/O error).
    package mutating func write(_ bytes: UnsafeRawBufferPointer) throws(FileIOError) {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(descriptor, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError(message: "write failed after \(count + done) bytes: \(String(cString: strerror(errno)))")
            }
            done += n
        }
        count += done
    }
}

extension FileIO {
    /// Creates `path` and its missing parents (`mkdir -p`); an existing directory is fine.
    package static func createDirectories(_ path: String) -> Result<Void, FileIOError> {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/") {
            prefix += component + "/"
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                return .failure(FileIOError(message: "cannot create \(prefix): \(String(cString: strerror(errno)))"))
            }
        }
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            return .failure(FileIOError(message: "not a directory"))
        }
        return .success(())
    }
}

/// An advisory lock saying "this process is writing PATH", held for a run's
/// whole life, so that a second run writing the same output stops with an
/// error instead of silently overwriting the first one's files.
///
/// The lock is an exclusive `flock` on a hidden sidecar file beside the
/// output, `.NAME.lock` (the output's symbolic link resolved first, so a link
/// and its file share one lock). `flock` locks belong to an open file
/// description, so two `OutputLock`s in one process exclude each other too
/// (POSIX `fcntl` locks would not). A killed holder's lock vanishes with it;
/// the file it leaves is reused.
package final class OutputLock {
    /// The output path as given.
    package let path: String
    /// The sidecar file holding the lock.
    package let lockPath: String
    private var descriptor: Int32

    /// Takes the lock for `path`, without waiting.
    /// - Throws: ``FileIOError`` naming the path when another process (or
    ///   another `OutputLock` here) holds it, or when the output cannot be
    ///   written at all (see ``FileIO/resolveOutput(_:)``).
    package init(path: String) throws(FileIOError) {
        let output = try FileIO.resolveOutput(path)
        self.path = path
        lockPath = output.directory + "/" + FileIO.hiddenStem(of: output.name, reserving: 5) + ".lock"
        for _ in 0..<100 {
            let descriptor = open(lockPath, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0o666)
            guard descriptor >= 0 else {
                throw FileIOError(message: "cannot create the lock file \(lockPath.quotedForMessage(limit: 200)): \(String(cString: strerror(errno)))")
            }
            guard FileIO.flockRetrying(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                let code = errno
                let holder = OutputLock.holder(descriptor)
                close(descriptor)
                guard code == EWOULDBLOCK else {
                    throw FileIOError(message: "cannot lock \(lockPath.quotedForMessage(limit: 200)): \(String(cString: strerror(code)))")
                }
                throw FileIOError(message: "another process\(holder.map { " (pid \($0))" } ?? "") is writing \(path.quotedForMessage(limit: 200)) (lock file \(lockPath.quotedForMessage(limit: 200)))")
            }
            // A holder releasing its lock unlinks the file; if that happened
            // between our open and our lock, we hold a lock nobody else sees.
            var locked = stat(), named = stat()
            guard fstat(descriptor, &locked) == 0, lstat(lockPath, &named) == 0,
                locked.st_dev == named.st_dev, locked.st_ino == named.st_ino
            else {
                close(descriptor)
                continue
            }
            let pid = Array("\(getpid())\n".utf8)
            _ = ftruncate(descriptor, 0)
            _ = pid.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
            self.descriptor = descriptor
            return
        }
        throw FileIOError(message: "cannot lock \(lockPath.quotedForMessage(limit: 200)): it kept being replaced")
    }

    /// Releases the lock and removes the sidecar file; later calls do nothing.
    package func release() {
        guard descriptor >= 0 else { return }
        unlink(lockPath)  // while still locked, so no one can lock the name we remove
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }

    /// The process id a holder wrote into the lock file, if readable.
    private static func holder(_ descriptor: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 24)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Int32(String(decoding: buffer[..<count], as: UTF8.self).trimmingTrailingNewline)
    }
}

/// Two paths name the same file when their identities are equal.
package struct FileIdentity: Equatable, Hashable, Sendable {
    package let device: UInt64
    package let inode: UInt64
}

/// Why a file could not be read or written.
package struct FileIOError: Error, Equatable {
    package let message: String
    /// The file at fault, when one of several is (``FileIO/writeAtomically(_:)``).
    package var path: String? = nil
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: Swift.max(0, width - count)) + self }
    fileprivate var trimmingTrailingNewline: String { hasSuffix("\n") ? String(dropLast()) : self }
}
