// gradkit — the files a command reads and writes, checked before any work. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// The inputs and outputs of one command, checked before the first epoch so
/// that no output destroys an input, another output or a device, and a bad
/// path fails at once rather than after an hour of training.
///
/// A directory output (`--report`, `--tensorboard`, `lab --output`) names the
/// entries it writes; an entry ending in `/` is a subdirectory it fills with
/// files whose names are not known in advance (a report's `figures/`). No
/// input and no other output may be the directory itself or lie in what it
/// writes; other files in the directory are left alone and may be used.
struct RunFiles {
    /// An output: a file, or a directory with the files written in it.
    struct Output {
        let option: String
        let path: String
        /// Names written inside a directory output (one ending in `/` is a
        /// subdirectory it fills with files of its choosing); nil for a file output.
        let writes: [String]?
    }

    private(set) var inputs: [(option: String, path: String)] = []
    private(set) var outputs: [Output] = []
    /// Output and input options that may name the same file (`--checkpoint` and `--resume`).
    private var sameFileAllowed: [(output: String, input: String)] = []

    mutating func input(_ option: String, _ path: String?) {
        if let path { inputs.append((option, path)) }
    }

    mutating func file(_ option: String, _ path: String?) {
        if let path { outputs.append(Output(option: option, path: path, writes: nil)) }
    }

    mutating func directory(_ option: String, _ path: String?, writes: [String]) {
        if let path { outputs.append(Output(option: option, path: path, writes: writes)) }
    }

    /// Lets `output` be the same file as `input`.
    mutating func allowSameFile(output: String, input: String) { sameFileAllowed.append((output, input)) }

    /// - Throws: ``CommandError`` naming the option and path of the first output that breaks a rule.
    func check() throws(CommandError) {
        try checkDirectoriesOwned()
        var written: [(option: String, path: String, key: String)] = []
        for output in outputs {
            let inputs = inputs.filter { input in !sameFileAllowed.contains { $0 == (output.option, input.option) } }.map(\.path)
            if let names = output.writes {
                try checkDirectory(output)
                let root = output.path.hasSuffix("/") ? output.path : output.path + "/"
                for name in names {
                    if name.hasSuffix("/") {
                        // Its files are not known in advance: none there now may be an input or
                        // another output (through links).
                        for entry in FileIO.entries(of: root + name) {
                            let path = root + name + entry
                            try check(output.option, path) { () throws(FileIOError) in try FileIO.checkNotAnInput(path, inputs: inputs) }
                            written.append((output.option, path, fileKey(path)))
                        }
                    } else {
                        let path = root + name
                        if FileIO.identity(of: output.path) != nil { try checkFile(output.option, path, inputs: inputs) }
                        written.append((output.option, path, fileKey(path)))
                    }
                }
            } else {
                try checkFile(output.option, output.path, inputs: inputs)
                written.append((output.option, output.path, fileKey(output.path)))
            }
        }
        for (i, a) in written.enumerated() {
            if let b = written[..<i].first(where: { $0.key == a.key }) {
                throw CommandError("\(b.option) and \(a.option) both write \(a.path.shownInMessage)")
            }
        }
    }

    /// Refuses an input or another output that is a directory output itself
    /// or one of the entries it writes (anything inside a `name/` entry).
    private func checkDirectoriesOwned() throws(CommandError) {
        let others = inputs.map { (option: $0.option, path: $0.path, kind: "input") }
            + outputs.map { (option: $0.option, path: $0.path, kind: "output") }
        for directory in outputs {
            // A directory output that exists and is not a directory is reported by checkDirectory.
            var info = stat()
            guard let names = directory.writes, stat(directory.path, &info) != 0 || info.st_mode & S_IFMT == S_IFDIR else { continue }
            let root = canonicalPath(directory.path)
            let owned = names.map { (path: canonicalPath(root + "/" + $0), subtree: $0.hasSuffix("/")) }
            for other in others where !(other.option == directory.option && other.path == directory.path) {
                let path = canonicalPath(other.path)
                let written = path == root || owned.contains { path == $0.path || ($0.subtree && path.hasPrefix($0.path + "/")) }
                guard written else { continue }
                throw CommandError(
                    "\(directory.option) \(directory.path.shownInMessage) and \(other.option) \(other.path.shownInMessage): "
                        + "the \(other.kind) \(path == root ? "is the directory" : "lies in what") \(directory.option) writes; "
                        + "give them different places")
            }
        }
    }

    private func checkFile(_ option: String, _ path: String, inputs: [String]) throws(CommandError) {
        try check(option, path) { () throws(FileIOError) in try FileIO.checkOutput(path, inputs: inputs) }
    }

    /// Runs a check of `path`, its error named by the option and path.
    private func check(_ option: String, _ path: String, _ body: () throws(FileIOError) -> Void) throws(CommandError) {
        do {
            try body()
        } catch {
            throw CommandError("\(option) \(path.shownInMessage): \(error.message)")
        }
    }

    /// A directory output must be a directory the process can write in, or
    /// not exist yet below one (it is created with its parents).
    private func checkDirectory(_ output: Output) throws(CommandError) {
        var path = output.path
        while true {
            var info = stat()
            if stat(path, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else {
                    throw CommandError("\(output.option) \(output.path.shownInMessage): \(path.shownInMessage) exists and is not a directory")
                }
                guard access(path, W_OK | X_OK) == 0 else {
                    throw CommandError("\(output.option) \(output.path.shownInMessage): cannot write in \(path.shownInMessage): \(String(cString: strerror(errno)))")
                }
                return
            }
            let parent = parentDirectory(path)
            guard errno == ENOENT, parent != path else {
                throw CommandError("\(output.option) \(output.path.shownInMessage): \(path.shownInMessage): \(String(cString: strerror(errno)))")
            }
            path = parent
        }
    }
}

/// The directory holding `path`: "." for a bare name, "/" at the root.
func parentDirectory(_ path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}

/// `path` made absolute with every symbolic link and `.`/`..` resolved, as
/// far as it exists; the components that do not exist yet are appended as
/// given (with `.` and `..` applied), so two spellings of one place agree.
func canonicalPath(_ path: String) -> String {
    var existing = path.isEmpty ? "." : path
    var missing: [String] = []
    while access(existing, F_OK) != 0 {
        let parent = parentDirectory(existing)
        missing.insert(String(existing.split(separator: "/").last ?? ""), at: 0)
        if parent == existing { break }
        existing = parent
    }
    var components = absolutePath(existing).split(separator: "/").map(String.init)
    for component in missing {
        switch component {
        case "", ".": continue
        case "..": if !components.isEmpty { components.removeLast() }
        default: components.append(component)
        }
    }
    return "/" + components.joined(separator: "/")
}

/// What identifies the file `path` writes: its device and inode when it
/// exists, else its absolute directory and name (two spellings of one new file agree).
private func fileKey(_ path: String) -> String {
    if let identity = FileIO.identity(of: path) { return "\(identity.device):\(identity.inode)" }
    let name = path.split(separator: "/").last.map(String.init) ?? path
    return absolutePath(parentDirectory(path)) + "/" + name
}
