// GradKit — the safetensors file format. SPDX-License-Identifier: MIT

/// What was wrong with a checkpoint file, and where; or why one could not be written.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    case unreadable(file: String, reason: String)
    /// The bytes are not a valid safetensors file: the offset of the problem.
    case malformed(file: String, offset: Int, reason: String)
    /// A tensor of a type GradKit does not read (complex or 8-bit float types).
    case unsupportedType(file: String, tensor: String, dtype: String)
    /// The file lacks a tensor the model or optimizer needs.
    case missingTensor(file: String, tensor: String)
    /// The file has a tensor the model does not.
    case unexpectedTensor(file: String, tensor: String)
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    /// A metadata entry is missing or unreadable.
    case badMetadata(file: String, key: String, reason: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "\(file): cannot read: \(reason)"
        case .malformed(let file, let offset, let reason): "\(file): byte \(offset): \(reason)"
        case .unsupportedType(let file, let tensor, let dtype): "\(file): tensor '\(tensor)' has unsupported dtype \(dtype)"
        case .missingTensor(let file, let tensor): "\(file): tensor '\(tensor)' is missing"
        case .unexpectedTensor(let file, let tensor): "\(file): tensor '\(tensor)' is not in the model"
        case .shapeMismatch(let file, let tensor, let expected, let found): "\(file): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case .badMetadata(let file, let key, let reason): "\(file): metadata '\(key)': \(reason)"
        case .writeFailed(let file, let reason): "\(file): cannot write: \(reason)"
        }
    }
}

/// Reading and writing the safetensors format (Hugging Face): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the little-endian data; string metadata under
/// `"__metadata__"`. GradKit writes F32 and reads F32, F64, F16, BF16 and the
/// integer types (converted to Float; PyTorch's `num_batches_tracked` is I64).
public enum SafeTensors {
    /// The largest header accepted (the reference implementation's limit).
    static let maximumHeaderBytes = 100_000_000

    /// The file's bytes for `tensors` and `metadata`. Tensors are stored in
    /// name order; the header is padded with spaces to a multiple of 8 bytes.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        var header: [String: JSON] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            let bytes = t.scalarCount * 4
            header[name] = .object([
                "dtype": .string("F32"), "shape": .array(t.shape.map { .number(Double($0)) }),
                "data_offsets": .array([.number(Double(offset)), .number(Double(offset + bytes))]),
            ])
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues { .string($0) }) }
        var headerBytes = Array(JSON.object(header).text.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + offset)
        var length = UInt64(headerBytes.count)
        for _ in 0..<8 {
            out.append(UInt8(length & 0xFF))
            length >>= 8
        }
        out += headerBytes
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { buffer in
                for v in buffer {
                    let bits = v.bitPattern
                    out += [UInt8(bits & 0xFF), UInt8(bits >> 8 & 0xFF), UInt8(bits >> 16 & 0xFF), UInt8(bits >> 24)]
                }
            }
        }
        return out
    }

    /// Writes a file atomically (temporary file, fsync, rename).
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        if case .failure(let error) = FileIO.writeAtomically(encode(tensors, metadata: metadata), to: path) {
            throw CheckpointError.writeFailed(file: path, reason: error.message)
        }
    }

    /// Every tensor (as Float) and the metadata of a file.
    /// - Throws: ``CheckpointError`` naming the byte offset of anything malformed.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        switch FileIO.readAll(path) {
        case .success(let bytes): return try decode(bytes, file: path)
        case .failure(let error): throw CheckpointError.unreadable(file: path, reason: error.message)
        }
    }

    private static let elementSizes: [String: Int] = [
        "F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2,
        "U8": 1, "BOOL": 1,
    ]

    static func decode(_ bytes: [UInt8], file: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard bytes.count >= 8 else { throw CheckpointError.malformed(file: file, offset: bytes.count, reason: "file ends inside the 8-byte header length") }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[i]) }
        guard length <= UInt64(maximumHeaderBytes), Int(length) <= bytes.count - 8 else {
            throw CheckpointError.malformed(file: file, offset: 0, reason: "header length \(length) exceeds the file (\(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(length)
        let header: JSON
        do {
            header = try JSON.parse(bytes[8..<headerEnd])
        } catch {
            throw CheckpointError.malformed(file: file, offset: 8 + error.offset, reason: "header JSON: \(error.reason)")
        }
        guard let entries = header.objectValue else { throw CheckpointError.malformed(file: file, offset: 8, reason: "header is not a JSON object") }
        var metadata: [String: String] = [:]
        if let meta = entries["__metadata__"] {
            guard let object = meta.objectValue else { throw CheckpointError.malformed(file: file, offset: 8, reason: "__metadata__ is not an object") }
            for (key, value) in object {
                guard let s = value.stringValue else { throw CheckpointError.malformed(file: file, offset: 8, reason: "metadata '\(key)' is not a string") }
                metadata[key] = s
            }
        }
        let dataSize = bytes.count - headerEnd
        var ranges: [(Int, Int, String)] = []
        var tensors: [String: Tensor] = [:]
        for (name, entry) in entries where name != "__metadata__" {
            guard let dtype = entry["dtype"]?.stringValue, let shapeJSON = entry["shape"]?.arrayValue,
                let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
                let begin = offsets[0].integerValue, let end = offsets[1].integerValue
            else {
                throw CheckpointError.malformed(file: file, offset: 8, reason: "tensor '\(name)' lacks a valid dtype, shape or data_offsets")
            }
            guard let size = elementSizes[dtype] else { throw CheckpointError.unsupportedType(file: file, tensor: name, dtype: dtype) }
            var shape: [Int] = []
            var count = 1
            for d in shapeJSON {
                guard let dim = d.integerValue, dim <= (1 << 40) else {
                    throw CheckpointError.malformed(file: file, offset: 8, reason: "tensor '\(name)' has an invalid dimension")
                }
                let (product, overflow) = count.multipliedReportingOverflow(by: dim)
                guard !overflow, product <= (1 << 40) else {
                    throw CheckpointError.malformed(file: file, offset: 8, reason: "tensor '\(name)' is too large")
                }
                count = product
                shape.append(dim)
            }
            guard begin <= end, end <= dataSize else {
                throw CheckpointError.malformed(file: file, offset: headerEnd + Swift.min(begin, dataSize), reason: "tensor '\(name)' data [\(begin), \(end)) is outside the \(dataSize) data bytes")
            }
            guard end - begin == count * size else {
                throw CheckpointError.malformed(file: file, offset: headerEnd + begin, reason: "tensor '\(name)' of shape \(shape) and dtype \(dtype) needs \(count * size) bytes, has \(end - begin)")
            }
            ranges.append((begin, end, name))
            tensors[name] = convert(bytes, from: headerEnd + begin, count: count, dtype: dtype, shape: shape)
        }
        // The data must be covered exactly: no overlaps, no holes (as the reference reader checks).
        ranges.sort { ($0.0, $0.1) < ($1.0, $1.1) }  // empty tensors first at a shared offset
        var cursor = 0
        for (begin, end, name) in ranges {
            guard begin == cursor else {
                throw CheckpointError.malformed(file: file, offset: headerEnd + Swift.min(begin, cursor), reason: begin < cursor ? "tensor '\(name)' overlaps the previous one" : "a hole precedes tensor '\(name)'")
            }
            cursor = end
        }
        guard cursor == dataSize else {
            throw CheckpointError.malformed(file: file, offset: headerEnd + cursor, reason: "\(dataSize - cursor) trailing bytes belong to no tensor")
        }
        return (tensors, metadata)
    }

    private static func convert(_ b: [UInt8], from o: Int, count: Int, dtype: String, shape: [Int]) -> Tensor {
        var values = [Float](repeating: 0, count: count)
        func u16(_ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
        func u32(_ i: Int) -> UInt32 { UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24 }
        func u64(_ i: Int) -> UInt64 { UInt64(u32(i)) | UInt64(u32(i + 4)) << 32 }
        for k in 0..<count {
            switch dtype {
            case "F32": values[k] = Float(bitPattern: u32(o + 4 * k))
            case "F64": values[k] = Float(Double(bitPattern: u64(o + 8 * k)))
            case "F16": values[k] = Float(Float16(bitPattern: u16(o + 2 * k)))
            case "BF16": values[k] = Float(bitPattern: UInt32(u16(o + 2 * k)) << 16)
            case "I64": values[k] = Float(Int64(bitPattern: u64(o + 8 * k)))
            case "I32": values[k] = Float(Int32(bitPattern: u32(o + 4 * k)))
            case "I16": values[k] = Float(Int16(bitPattern: u16(o + 2 * k)))
            case "I8": values[k] = Float(Int8(bitPattern: b[o + k]))
            case "U64": values[k] = Float(u64(o + 8 * k))
            case "U32": values[k] = Float(u32(o + 4 * k))
            case "U16": values[k] = Float(u16(o + 2 * k))
            default: values[k] = Float(b[o + k]) // U8, BOOL
            }
        }
        return Tensor(shape: shape, scalars: values)
    }
}
