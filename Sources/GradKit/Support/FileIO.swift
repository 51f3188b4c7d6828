// GradKit — whole-file reads and atomic writes. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

package enum FileIO {
    /// The whole file, or a description of why it could not be read.
    package static func readAll(_ path: String) -> Result<[UInt8], FileIOError> {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .failure(FileIOError(message: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(FileIOError(message: String(cString: strerror(errno)))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return .failure(FileIOError(message: "not a regular file")) }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(FileIOError(message: String(cString: strerror(errno))))
            }
            if n == 0 { break }
            done += n
        }
        return .success(Array(bytes.prefix(done)))
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same
    /// directory, fsync, rename over the target, fsync of the directory. A
    /// crash leaves either the old file or the new one, never a torn one.
    package static func writeAtomically(_ bytes: [UInt8], to path: String) -> Result<Void, FileIOError> {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var template = Array((path + ".tmp-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return .failure(FileIOError(message: "cannot create a temporary file: \(String(cString: strerror(errno)))")) }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        func fail(_ what: String) -> Result<Void, FileIOError> {
            let message = "\(what): \(String(cString: strerror(errno)))"
            close(fd)
            unlink(temporary)
            return .failure(FileIOError(message: message))
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                return fail("write failed")
            }
            written += n
        }
        guard fchmod(fd, 0o644) == 0 else { return fail("chmod failed") }
        guard fsync(fd) == 0 else { return fail("fsync failed") }
        guard close(fd) == 0 else {
            unlink(temporary)
            return .failure(FileIOError(message: "close failed: \(String(cString: strerror(errno)))"))
        }
        guard rename(temporary, path) == 0 else {
            let message = String(cString: strerror(errno))
            unlink(temporary)
            return .failure(FileIOError(message: "rename failed: \(message)"))
        }
        let directoryFD = open(directory, O_RDONLY)
        if directoryFD >= 0 {
            _ = fsync(directoryFD)
            close(directoryFD)
        }
        return .success(())
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

package struct FileIOError: Error {
    package let message: String
}
