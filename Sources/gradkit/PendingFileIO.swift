// gradkit — minimal stand-ins for FileIO.checkOutput, FileIO.identity(of:), OutputLock and Checkpoint.validate(file:), whose library versions replace this file. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// Why a file cannot be used.
struct FileIOError: Error {
    let message: String
}

/// A file's device and inode.
struct FileIdentity: Equatable, Hashable {
    let device: UInt64
    let inode: UInt64
}

extension FileIO {
    /// A file's device and inode (through links); nil when nothing exists at `path`.
    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return FileIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Throws unless `path` is a non-empty path to a regular file or to
    /// nothing yet, in a directory the process may create files in, and not
    /// the same file as any of `inputs`.
    static func checkOutput(_ path: String, inputs: [String]) throws(FileIOError) {
        guard !path.isEmpty else { throw FileIOError(message: "the path is empty") }
        var info = stat()
        if stat(path, &info) == 0, info.st_mode & S_IFMT != S_IFREG {
            let kind = info.st_mode & S_IFMT == S_IFDIR ? "a directory" : info.st_mode & S_IFMT == S_IFCHR ? "a character device" : "a special file"
            throw FileIOError(message: "is \(kind), not a regular file; refusing to replace it")
        }
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let parent = directory.isEmpty ? "/" : directory
        guard stat(parent, &info) == 0 else {
            throw FileIOError(message: "its directory \(parent) cannot be used: \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw FileIOError(message: "\(parent) is not a directory") }
        guard access(parent, W_OK | X_OK) == 0 else {
            throw FileIOError(message: "cannot create files in \(parent): \(String(cString: strerror(errno)))")
        }
        guard let identity = identity(of: path) else { return }
        for input in inputs where FileIO.identity(of: input) == identity {
            throw FileIOError(message: "is the same file as the input \(input); writing it would destroy that input")
        }
    }
}

/// An exclusive advisory lock on an output path, held through a sidecar
/// file `.NAME.lock` beside it, released by ``release()`` or at exit.
final class OutputLock {
    let path: String
    private var descriptor: Int32

    init(path: String) throws(FileIOError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let lockPath = (directory.isEmpty ? "" : directory + "/") + "." + name + ".lock"
        descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o666)
        guard descriptor >= 0 else {
            throw FileIOError(message: "cannot create the lock file \(lockPath): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw FileIOError(message: "another process is writing \(path) (lock file \(lockPath))")
        }
    }

    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}

extension Checkpoint {
    /// Throws unless every model tensor, best-model tensor and optimizer buffer is finite.
    func validate(file: String = "checkpoint") throws {
        func requireFinite(_ tensor: Tensor, _ name: String) throws {
            if let bad = tensor.scalars.firstIndex(where: { !$0.isFinite }) {
                throw CheckpointError.badMetadata(file: file, key: name, reason: "element \(bad) is \(tensor.scalars[bad])")
            }
        }
        for (name, tensor) in model { try requireFinite(tensor, name) }
        for (name, tensor) in bestModel ?? [:] { try requireFinite(tensor, "best/" + name) }
        for parameter in optimizer?.parameters ?? [] {
            for (name, tensor) in parameter.buffers { try requireFinite(tensor, "optimizer/\(parameter.name)/\(name)") }
        }
    }
}
