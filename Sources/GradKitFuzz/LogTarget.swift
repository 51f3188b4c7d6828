// GradKit — fuzz target: JSON-lines training logs and the reports made from them. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit
import Synchronization

/// Reads the input as a training log (`gradkit report` reads a user's),
/// twice: with series short enough to be decimated at once and with the
/// default length. Each history's report is rendered; every 64th is also
/// written to a temporary directory, which is removed again.
enum LogTarget {
    /// Histories read so far, which picks the ones whose report is written.
    private static let parsed = Atomic<Int>(0)

    static func run(_ bytes: [UInt8]) {
        for maximumLength in [3, 10_000] {
            guard let history = try? RunHistory(parsing: bytes, maximumLength: maximumLength) else { return }
            require(history.steps.count <= maximumLength && history.samples.count <= maximumLength, "a series outgrew its bound")
            _ = history.renderReport()
            if parsed.add(1, ordering: .relaxed).newValue % 64 == 0 { writeReport(history) }
        }
    }

    /// Writes the report to a new temporary directory, then removes it.
    private static func writeReport(_ history: RunHistory) {
        var template = Array("/tmp/gradkit-fuzz-report-XXXXXX".utf8CString)
        guard let directory = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            fatalError("cannot create a temporary directory for the report: errno \(errno)")
        }
        defer { removeTree(directory) }
        do { try history.writeReport(to: directory) } catch { require(false, "writing a report to \(directory) failed: \(error)") }
    }

    /// Removes a directory of files and directories (the report's two levels).
    private static func removeTree(_ path: String) {
        if let stream = opendir(path) {
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                guard name != ".", name != ".." else { continue }
                let child = path + "/" + name
                if unlink(child) != 0 { removeTree(child) }
            }
            closedir(stream)
        }
        rmdir(path)
    }
}
