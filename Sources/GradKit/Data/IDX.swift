// GradKit — the IDX file format. SPDX-License-Identifier: MIT

/// The IDX format of the MNIST files: two zero bytes, a type code, the number
/// of dimensions, each dimension as a big-endian UInt32, then the data,
/// big-endian. Type codes: 0x08 UInt8, 0x09 Int8, 0x0B Int16, 0x0C Int32,
/// 0x0D Float32, 0x0E Float64.
public enum IDX {
    /// Reads an IDX file into a Float tensor of its dimensions.
    /// - Throws: ``DataError`` naming the file and byte offset of anything
    ///   malformed: a bad magic number, an unknown type, a size that does not
    ///   match the file's length, or a value that is not finite in Float.
    public static func read(_ path: String) throws -> Tensor {
        try parse(readFile(path), file: path)
    }

    /// The bytes of the IDX file at `path`, read only after its header has
    /// been checked against its size: a short header over gigabytes of junk
    /// (or of a sparse file's zeros) is refused without reading them.
    /// - Throws: ``DataError`` as ``read(_:)``.
    static func readFile(_ path: String) throws -> [UInt8] {
        let file: ReadableFile
        do throws(FileIOError) { file = try ReadableFile(path: path) } catch { throw DataError.unreadable(file: path, reason: error.message) }
        var header = [UInt8](repeating: 0, count: Swift.min(file.size, 4 + 4 * 255))
        var failure: FileIOError?
        header.withUnsafeMutableBytes { buffer in
            do throws(FileIOError) { try file.read(into: buffer, at: 0) } catch { failure = error }
        }
        if let failure { throw DataError.unreadable(file: path, reason: failure.message) }
        _ = try Layout(header, file: path, fileSize: file.size)
        return try readDataFile(path)
    }

    /// Decodes the bytes of a whole IDX file; ``read(_:)`` without the file
    /// system, visible to the package's fuzzers.
    /// - Throws: ``DataError/malformed(file:offset:reason:)``, as ``read(_:)``.
    package static func parse(_ bytes: [UInt8], file: String) throws -> Tensor {
        let layout = try Layout(bytes, file: file)
        var values = [Float](repeating: 0, count: layout.count)
        for i in 0..<layout.count {
            let value = layout.value(at: i, in: bytes)
            values[i] = Float(value)
            if !values[i].isFinite {
                let reason = value.isFinite ? "value \(value) is beyond Float's range (±3.4e38)" : "value \(value) is not finite"
                throw DataError.malformed(file: file, offset: layout.offset(of: i), reason: reason)
            }
        }
        return Tensor(shape: layout.shape, scalars: values)
    }

    /// The header of an IDX file, checked against the file's length before
    /// anything is allocated: element type, dimensions, where the data starts.
    struct Layout {
        /// The type code (byte 2).
        let type: UInt8
        /// Bytes per element.
        let elementSize: Int
        /// The dimensions, outermost first.
        let shape: [Int]
        /// The number of elements, the product of `shape`.
        let count: Int
        /// The offset of the first element.
        let dataOffset: Int

        /// Reads and checks the header of `bytes`, the start of a file of
        /// `fileSize` bytes (all of it by default).
        /// - Throws: ``DataError/malformed(file:offset:reason:)`` for a bad magic
        ///   number, an unknown type, or dimensions that do not match the length.
        init(_ bytes: [UInt8], file: String, fileSize: Int? = nil) throws {
            let fileSize = fileSize ?? bytes.count
            guard bytes.count >= 4 else { throw DataError.malformed(file: file, offset: bytes.count, reason: "file ends inside the 4-byte magic number") }
            guard bytes[0] == 0, bytes[1] == 0 else { throw DataError.malformed(file: file, offset: 0, reason: "magic number does not start with two zero bytes") }
            switch bytes[2] {
            case 0x08, 0x09: elementSize = 1
            case 0x0B: elementSize = 2
            case 0x0C, 0x0D: elementSize = 4
            case 0x0E: elementSize = 8
            default: throw DataError.malformed(file: file, offset: 2, reason: "unknown data type 0x\(String(bytes[2], radix: 16))")
            }
            type = bytes[2]
            let rank = Int(bytes[3])
            guard rank >= 1 else { throw DataError.malformed(file: file, offset: 3, reason: "zero dimensions") }
            guard bytes.count >= 4 + 4 * rank else {
                throw DataError.malformed(file: file, offset: bytes.count, reason: "file ends inside the \(rank) dimension sizes")
            }
            var shape: [Int] = []
            var total = 1
            for d in 0..<rank {
                let o = 4 + 4 * d
                let dimension = Int(IDX.bigEndian32(bytes, o))
                // At most 2^40 elements (4 TiB of Float): the data-length check
                // below then bounds the allocation by the file's size.
                let (product, overflow) = total.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= (1 << 40) else { throw DataError.malformed(file: file, offset: o, reason: "dimensions are too large") }
                total = product
                shape.append(dimension)
            }
            dataOffset = 4 + 4 * rank
            let expected = total * elementSize
            guard fileSize - dataOffset == expected else {
                throw DataError.malformed(
                    file: file, offset: Swift.min(fileSize, dataOffset + expected),
                    reason: "dimensions \(shape) need \(expected) data bytes, the file has \(fileSize - dataOffset)")
            }
            self.shape = shape
            count = total
        }

        /// The byte offset of element `index`.
        func offset(of index: Int) -> Int { dataOffset + index * elementSize }

        /// Element `index`, exactly (every IDX type converts to Double without rounding).
        func value(at index: Int, in bytes: [UInt8]) -> Double {
            let o = offset(of: index)
            switch type {
            case 0x08: return Double(bytes[o])
            case 0x09: return Double(Int8(bitPattern: bytes[o]))
            case 0x0B: return Double(Int16(bitPattern: UInt16(bytes[o]) << 8 | UInt16(bytes[o + 1])))
            case 0x0C: return Double(Int32(bitPattern: IDX.bigEndian32(bytes, o)))
            case 0x0D: return Double(Float(bitPattern: IDX.bigEndian32(bytes, o)))
            default:
                var raw: UInt64 = 0
                for k in 0..<8 { raw = raw << 8 | UInt64(bytes[o + k]) }
                return Double(bitPattern: raw)
            }
        }
    }

    private static func bigEndian32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) << 24 | UInt32(b[o + 1]) << 16 | UInt32(b[o + 2]) << 8 | UInt32(b[o + 3])
    }
}
