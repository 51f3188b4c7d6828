// GradKit — tensor memory: 64-byte aligned buffers, recycled per thread. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The memory behind one or more tensors (copy-on-write: tensors share a
/// storage until one of them is mutated).
///
/// A storage either owns a pooled buffer or is a *view* into memory owned by
/// someone else (an optimizer's flat parameter buffer). A view that must change
/// while others still read it can be *detached*: its readers keep the old values
/// in a private copy, and the writer gets a fresh view (see `Parameter`).
final class TensorStorage {
    /// First element; 64-byte aligned when owned.
    private(set) var base: UnsafeMutablePointer<Float>
    /// Elements in use (the buffer may be larger: pools round sizes up).
    let count: Int
    /// Non-nil for views: keeps the viewed memory alive.
    private(set) var owner: AnyObject?
    /// Pool size class of an owned buffer.
    private var sizeClass: Int

    /// An owned buffer of `count` elements, uninitialized.
    init(count: Int) {
        self.count = count
        self.sizeClass = BufferPool.sizeClass(for: count)
        self.base = BufferPool.acquire(sizeClass: sizeClass)
        self.owner = nil
    }

    /// A view of `count` elements at `base`, kept alive by `owner`.
    init(viewing base: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.count = count
        self.base = base
        self.owner = owner
        self.sizeClass = -1
    }

    var isView: Bool { owner != nil }

    /// Turns a view into an owned copy of its current values, so that whoever
    /// holds this storage keeps those values while the viewed memory changes.
    func detachIntoPrivateCopy() {
        guard owner != nil else { return }
        let cls = BufferPool.sizeClass(for: count)
        let copy = BufferPool.acquire(sizeClass: cls)
        copy.update(from: base, count: count)
        base = copy
        sizeClass = cls
        owner = nil
    }

    /// A new owned storage with the same values.
    func copy() -> TensorStorage {
        let result = TensorStorage(count: count)
        result.base.update(from: base, count: count)
        return result
    }

    deinit {
        if owner == nil { BufferPool.release(base, sizeClass: sizeClass) }
    }
}

/// Recycles tensor buffers so that a training loop, which frees and allocates
/// the same sizes every step, stops calling malloc (and stops touching fresh
/// pages, which is what makes large allocations slow) after its first step.
///
/// One pool per thread, no locks. Sizes are rounded up to classes with four
/// steps per power of two (at most 25% slack); each thread caches at most
/// ``maximumCachedBytes`` and frees beyond that.
final class BufferPool {
    static let local = ThreadLocal { BufferPool() }

    /// The most bytes one thread keeps for reuse.
    nonisolated(unsafe) static var maximumCachedBytes = 1 << 30

    private static let classCount = 256
    /// One free list per size class, linked through the first word of each
    /// free buffer (no Swift array in the hot path).
    private let heads: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    private(set) var cachedBytes = 0

    init() {
        heads = .allocate(capacity: BufferPool.classCount)
        heads.initialize(repeating: nil, count: BufferPool.classCount)
    }

    /// Size class for `count` floats: capacity (q + 1) * 2^(e - 2) with
    /// q in 4...7, the smallest such capacity >= max(count, 16).
    @inline(__always)
    static func sizeClass(for count: Int) -> Int {
        let m = Swift.max(count, 16) - 1
        let e = Int.bitWidth - 1 - m.leadingZeroBitCount
        let q = m >> (e - 2)
        return (e - 2) * 4 + (q - 4)
    }

    @inline(__always)
    static func capacity(ofClass sizeClass: Int) -> Int {
        let shift = sizeClass / 4, q = sizeClass % 4 + 4
        return (q + 1) << shift
    }

    static func acquire(sizeClass: Int) -> UnsafeMutablePointer<Float> {
        let pool = local.current
        if let raw = pool.heads[sizeClass] {
            pool.heads[sizeClass] = raw.load(as: UnsafeMutableRawPointer?.self)
            pool.cachedBytes -= capacity(ofClass: sizeClass) * 4
            return raw.assumingMemoryBound(to: Float.self)
        }
        let bytes = capacity(ofClass: sizeClass) * MemoryLayout<Float>.stride
        return LargeAllocation.allocate(bytes: bytes).bindMemory(to: Float.self, capacity: bytes / 4)
    }

    static func release(_ pointer: UnsafeMutablePointer<Float>, sizeClass: Int) {
        let bytes = capacity(ofClass: sizeClass) * 4
        guard let pool = local.existing, pool.cachedBytes + bytes <= maximumCachedBytes else {
            UnsafeMutableRawPointer(pointer).deallocate()
            return
        }
        let raw = UnsafeMutableRawPointer(pointer)
        raw.storeBytes(of: pool.heads[sizeClass], as: UnsafeMutableRawPointer?.self)
        pool.heads[sizeClass] = raw
        pool.cachedBytes += bytes
    }

    /// Frees every cached buffer of this thread.
    func trim() {
        for i in 0..<BufferPool.classCount {
            var next = heads[i]
            while let raw = next {
                next = raw.load(as: UnsafeMutableRawPointer?.self)
                raw.deallocate()
            }
            heads[i] = nil
        }
        cachedBytes = 0
    }

    deinit {
        trim()
        heads.deallocate()
    }
}
