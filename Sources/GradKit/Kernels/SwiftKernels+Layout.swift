// GradKit — pure-Swift twins: transposes, strided copies, row gathers. SPDX-License-Identifier: MIT

extension SwiftKernels {
    static func transpose(batch: Int, rows: Int, columns: Int, output y: FloatPointer, input x: ConstFloatPointer) {
        let size = rows &* columns
        for b in 0..<batch {
            let xb = x + b &* size, yb = y + b &* size
            for r in 0..<rows {
                for c in 0..<columns { yb[c &* rows &+ r] = xb[r &* columns &+ c] }
            }
        }
    }

    static func stridedCopy(shape: [Int], strides: [Int], output y: FloatPointer, input x: ConstFloatPointer) {
        if shape.isEmpty {
            y[0] = x[0]
            return
        }
        let layout = StridedLayout(shape: shape, strides: [strides, strides])
        let n = shape[shape.count - 1], step = strides[strides.count - 1]
        if shape.contains(0) { return }
        forEachRow(layout) { r, offset, _ in
            let yr = y + r &* n, xr = x + offset
            for i in 0..<n { yr[i] = xr[i &* step] }
        }
    }

    static func gatherRows(
        count: Int, columns: Int, output y: FloatPointer, input x: ConstFloatPointer, rows: UnsafePointer<Int>
    ) {
        for i in 0..<count {
            (y + i &* columns).update(from: x + rows[i] &* columns, count: columns)
        }
    }

    static func scatterAddRows(
        count: Int, columns: Int, output y: FloatPointer, input x: ConstFloatPointer, rows: UnsafePointer<Int>
    ) {
        for i in 0..<count {
            let yr = y + rows[i] &* columns, xr = x + i &* columns
            for c in 0..<columns { yr[c] += xr[c] }
        }
    }
}
