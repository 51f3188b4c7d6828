// GradKit — how much memory this process may still allocate, checked before large allocations. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// The memory a process may still allocate, as the system states it.
///
/// An allocation that fails traps ("failed to allocate N bytes"): a size read
/// from a file or given on the command line is compared with this budget
/// first, so that it fails as an error naming the limit instead. The budget
/// is the least of
/// - the machine's physical memory;
/// - the soft `RLIMIT_AS` (`ulimit -v`) minus the address space already mapped;
/// - the soft `RLIMIT_DATA` minus the same (an upper bound of what the data segment holds);
/// - the cgroup's `memory.max` minus `memory.current` (cgroup v2), or
///   `memory.limit_in_bytes` minus `memory.usage_in_bytes` (v1), when present.
///
/// It is an upper bound: other processes' use of physical memory is not
/// subtracted (Linux overcommits, and pages of a sparse or cached file come
/// and go), so a request within it can still make the machine swap.
package struct MemoryBudget: Sendable, Equatable {
    /// The bytes that may still be allocated.
    package let bytes: Int
    /// What sets the limit, for a message: "this machine's physical memory", "RLIMIT_AS (ulimit -v)", ...
    package let limit: String

    /// A budget of `bytes` set by `limit`.
    package init(bytes: Int, limit: String) {
        self.bytes = bytes
        self.limit = limit
    }

    /// The budget now (limits and usage are read on each call: they change).
    package static var current: MemoryBudget {
        var budget = MemoryBudget(bytes: FileIO.physicalMemoryBytes, limit: "this machine's physical memory")
        func consider(_ bytes: Int?, _ limit: String) {
            if let bytes, bytes < budget.bytes { budget = MemoryBudget(bytes: Swift.max(0, bytes), limit: limit) }
        }
        let mapped = mappedBytes() ?? 0
        consider(softLimit(RLIMIT_AS).map { $0 - mapped }, "the address-space limit RLIMIT_AS (ulimit -v)")
        consider(softLimit(RLIMIT_DATA).map { $0 - mapped }, "the data-size limit RLIMIT_DATA (ulimit -d)")
        if let max = number(in: "/sys/fs/cgroup/memory.max") {
            consider(max - (number(in: "/sys/fs/cgroup/memory.current") ?? 0), "the cgroup's memory.max")
        } else if let max = number(in: "/sys/fs/cgroup/memory/memory.limit_in_bytes") {
            consider(max - (number(in: "/sys/fs/cgroup/memory/memory.usage_in_bytes") ?? 0), "the cgroup's memory.limit_in_bytes")
        }
        return budget
    }

    /// "more than the 4294967296 bytes RLIMIT_AS (ulimit -v) leaves", for an error message.
    package var exceededDescription: String { "more than the \(bytes) bytes \(limit) leaves this process" }

    /// A soft resource limit in bytes; nil when unlimited.
    private static func softLimit(_ resource: __rlimit_resource) -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0 else { return nil }
        // RLIM_INFINITY is all ones, above Int.max.
        return limit.rlim_cur > UInt(Int.max) ? nil : Int(limit.rlim_cur)
    }

    /// The process's mapped address space (the first field of /proc/self/statm, in pages).
    private static func mappedBytes() -> Int? {
        guard let pages = number(in: "/proc/self/statm") else { return nil }
        let pageSize = sysconf(Int32(_SC_PAGESIZE))
        return pageSize > 0 ? pages.multipliedReportingOverflow(by: pageSize).partialValue : nil
    }

    /// The leading decimal number of a small system file; nil when absent or "max".
    private static func number(in path: String) -> Int? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let digits = buffer[0..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard !digits.isEmpty, digits.count <= 18 else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }
}
