// gradkit — whether what the tool printed reached standard output. SPDX-License-Identifier: MIT
#if canImport(Glibc)
// `stdout` is a C global variable, which Swift 6 refuses to read without this; the tool reads it
// once, from its one thread, as it exits.
@preconcurrency import Glibc
#endif

/// Flushes standard output: nil when everything printed reached it, else why it did not (a full
/// disk, a closed file).
func standardOutputFailure() -> String? {
    let flushed = fflush(stdout) == 0, code = errno
    guard !flushed || ferror(stdout) != 0 else { return nil }
    return flushed ? "an earlier write failed" : String(cString: strerror(code))
}
