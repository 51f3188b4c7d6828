// GradKit — per-thread instances. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One instance of `Value` per thread, made on first use and released when the
/// thread exits. A pthread key rather than Foundation's thread dictionary: one
/// `pthread_getspecific` per access, a few nanoseconds.
final class ThreadLocal<Value: AnyObject>: @unchecked Sendable {
    private var key = pthread_key_t()
    private let make: @Sendable () -> Value

    init(_ make: @escaping @Sendable () -> Value) {
        self.make = make
        let status = pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            Unmanaged<AnyObject>.fromOpaque(pointer).release()
        }
        precondition(status == 0, "ThreadLocal: pthread_key_create failed (\(status))")
    }

    /// This thread's instance, made now if the thread has none.
    @inline(__always)
    var current: Value {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<Value>.fromOpaque(pointer).takeUnretainedValue()
        }
        let value = make()
        pthread_setspecific(key, Unmanaged.passRetained(value).toOpaque())
        return value
    }

    /// This thread's instance if it has one; nil also while the thread is
    /// exiting (the key's value is cleared before its destructor runs).
    @inline(__always)
    var existing: Value? {
        guard let pointer = pthread_getspecific(key) else { return nil }
        return Unmanaged<Value>.fromOpaque(pointer).takeUnretainedValue()
    }
}
