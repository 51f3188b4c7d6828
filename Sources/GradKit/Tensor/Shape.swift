// GradKit — shape arithmetic: counts, broadcasting, axis normalization. SPDX-License-Identifier: MIT

/// Shape helpers shared by the operations. Messages name the operation so a
/// trap says what was called with what.
enum Shape {
    /// CK_MAX_RANK: the strided kernels' limit after dimension merging.
    static let maximumKernelRank = 8

    @inline(__always)
    static func count(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape { n &*= d }
        return n
    }

    static func validate(_ shape: [Int], op: String) {
        for d in shape where d < 0 {
            preconditionFailure("\(op): shape \(shape) has a negative dimension")
        }
    }

    /// Row-major strides in elements.
    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        var step = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            result[axis] = step
            step &*= shape[axis]
        }
        return result
    }

    /// NumPy broadcasting: align right; each pair of sizes must be equal or one.
    static func broadcast(_ a: [Int], _ b: [Int], op: String) -> [Int] {
        if a == b { return a }
        let rank = Swift.max(a.count, b.count)
        var result = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 {
                result[i] = da
            } else if da == 1 {
                result[i] = db
            } else {
                preconditionFailure("\(op): shapes \(a) and \(b) cannot be broadcast together")
            }
        }
        return result
    }

    /// Strides of an operand of `shape` read as `target` (0 along broadcast axes).
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        let own = strides(shape)
        let lead = target.count - shape.count
        var result = [Int](repeating: 0, count: target.count)
        for i in 0..<shape.count where shape[i] != 1 {
            result[lead + i] = own[i]
        }
        return result
    }

    /// Drops size-1 dimensions and merges neighbours that every operand walks
    /// contiguously, so kernels see the fewest, longest rows.
    static func collapse(_ shape: [Int], _ strides: [[Int]]) -> StridedLayout {
        var outShape: [Int] = []
        var outStrides = [[Int]](repeating: [], count: strides.count)
        outShape.reserveCapacity(shape.count)
        for axis in 0..<shape.count where shape[axis] != 1 {
            let size = shape[axis]
            if !outShape.isEmpty,
                (0..<strides.count).allSatisfy({ outStrides[$0].last! == strides[$0][axis] * size })
            {
                outShape[outShape.count - 1] *= size
                for k in 0..<strides.count { outStrides[k][outStrides[k].count - 1] = strides[k][axis] }
            } else {
                outShape.append(size)
                for k in 0..<strides.count { outStrides[k].append(strides[k][axis]) }
            }
        }
        if outShape.isEmpty {
            return StridedLayout(shape: [1], strides: Array(repeating: [0], count: strides.count))
        }
        precondition(
            outShape.count <= maximumKernelRank,
            "broadcasting or permuting shape \(shape): more than \(maximumKernelRank) dimensions remain after merging")
        return StridedLayout(shape: outShape, strides: outStrides)
    }

    /// Axes in 0..<rank, sorted and unique; negative axes count from the end.
    static func normalizeAxes(_ axes: [Int], rank: Int, op: String) -> [Int] {
        var result: [Int] = []
        for axis in axes {
            let a = axis < 0 ? axis + rank : axis
            precondition(a >= 0 && a < rank, "\(op): axis \(axis) is out of range for rank \(rank)")
            if !result.contains(a) { result.append(a) }
        }
        return result.sorted()
    }

    static func normalizeAxis(_ axis: Int, rank: Int, op: String) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "\(op): axis \(axis) is out of range for rank \(rank)")
        return a
    }
}
