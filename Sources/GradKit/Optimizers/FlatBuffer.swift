// GradKit — contiguous memory for a whole parameter set. SPDX-License-Identifier: MIT

/// A 64-byte aligned array of floats that parameters view into. Owned by an
/// optimizer: values, gradients and each kind of state live in one buffer each,
/// so a step is one kernel call per run of parameters and a norm one pass.
final class FlatBuffer {
    let base: UnsafeMutablePointer<Float>
    let count: Int

    /// `count` floats, all `initialValue`.
    init(count: Int, initialValue: Float = 0) {
        self.count = count
        let capacity = Swift.max(count, 16)
        base = LargeAllocation.allocate(bytes: capacity * 4).bindMemory(to: Float.self, capacity: capacity)
        base.initialize(repeating: initialValue, count: capacity)
    }

    deinit { base.deallocate() }
}

/// Where each parameter lives in the flat buffers: offsets rounded up to 16
/// floats so every parameter starts on a 64-byte boundary. The gaps are zero
/// and stay zero under every optimizer update (zero gradient, zero state).
struct FlatLayout {
    let offsets: [Int]
    let counts: [Int]
    let total: Int

    init(_ parameters: [Parameter]) {
        var offsets: [Int] = [], counts: [Int] = []
        var cursor = 0
        for p in parameters {
            offsets.append(cursor)
            counts.append(p.scalarCount)
            cursor += (p.scalarCount + 15) / 16 * 16
        }
        self.offsets = offsets
        self.counts = counts
        self.total = cursor
    }
}
