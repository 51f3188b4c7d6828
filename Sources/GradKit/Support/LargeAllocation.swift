// GradKit — allocation of large float buffers. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Large, long-lived buffers (optimizer state, big tensors) are 2 MiB aligned
/// and asked to be backed by transparent huge pages: a streaming kernel over
/// several 40 MB arrays otherwise spends its time in TLB misses. Smaller
/// buffers are 64-byte aligned.
enum LargeAllocation {
    /// From this size up, huge pages are requested.
    static let threshold = 2 << 20

    static func allocate(bytes: Int) -> UnsafeMutableRawPointer {
        guard bytes >= threshold else { return .allocate(byteCount: bytes, alignment: 64) }
        let huge = 2 << 20
        let rounded = (bytes + huge - 1) / huge * huge
        let raw = UnsafeMutableRawPointer.allocate(byteCount: rounded, alignment: huge)
        #if canImport(Glibc)
        _ = madvise(raw, rounded, MADV_HUGEPAGE) // advice only: ignored where THP is off
        #endif
        return raw
    }
}
