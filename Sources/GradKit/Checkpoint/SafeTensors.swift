// GradKit — the safetensors file format. SPDX-License-Identifier: MIT

/// What was wrong with a checkpoint file, and where; or why one could not be written.
///
/// The descriptions quote names and values escaped and cut to about 80
/// characters: they come from the file, which may hold megabytes of junk or
/// terminal escape sequences.
public enum CheckpointError: Error, Equatable, CustomStringConvertible {
    /// The file could not be opened or read (it is missing, a FIFO, a directory ...).
    case unreadable(file: String, reason: String)
    /// The bytes are not a valid safetensors file: the offset of the problem.
    case malformed(file: String, offset: Int, reason: String)
    /// A tensor of a type GradKit does not read (complex or 8-bit float types).
    case unsupportedType(file: String, tensor: String, dtype: String)
    /// The file lacks a tensor the model or optimizer needs.
    case missingTensor(file: String, tensor: String)
    /// The file has a tensor the model does not.
    case unexpectedTensor(file: String, tensor: String)
    /// A tensor's shape differs from the model's.
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    /// A metadata entry is missing, unreadable or out of range, or holds state the restoring
    /// trainer has no place for (a loss scaler's, in a ``Trainer`` without a ``Trainer/lossScaler``).
    case badMetadata(file: String, key: String, reason: String)
    /// A model tensor or optimizer buffer holds a NaN or an infinity at `element` (row-major).
    case nonFinite(file: String, tensor: String, element: Int, value: Float)
    /// An optimizer buffer that holds squares (Adam's `exp_avg_sq`, RMSprop's
    /// `square_avg`, AdaGrad's `sum`) holds a negative value at `element`.
    case negative(file: String, tensor: String, element: Int, value: Float)
    /// The file could not be written.
    case writeFailed(file: String, reason: String)

    /// One line naming the file (and the tensor, byte offset or metadata key) and what was wrong.
    public var description: String {
        switch self {
        case .unreadable(let file, let reason): "\(Self.shown(file)): cannot read: \(reason)"
        case .malformed(let file, let offset, let reason): "\(Self.shown(file)): byte \(offset): \(reason)"
        case .unsupportedType(let file, let tensor, let dtype):
            "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) has unsupported dtype \(dtype.quotedForMessage())"
        case .missingTensor(let file, let tensor): "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) is missing"
        case .unexpectedTensor(let file, let tensor): "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) is not in the model"
        case .shapeMismatch(let file, let tensor, let expected, let found):
            "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) has shape \(found), expected \(expected)"
        case .badMetadata(let file, let key, let reason): "\(Self.shown(file)): metadata \(key.quotedForMessage()): \(reason)"
        case .nonFinite(let file, let tensor, let element, let value):
            "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) element \(element) is \(value), not a finite number"
        case .negative(let file, let tensor, let element, let value):
            "\(Self.shown(file)): tensor \(tensor.quotedForMessage()) element \(element) is \(value), but it holds squares, never negative"
        case .writeFailed(let file, let reason): "\(Self.shown(file)): cannot write: \(reason)"
        }
    }

    private static func shown(_ file: String) -> String { file.shownInMessage }
}

/// Reading and writing the safetensors format (Hugging Face): an 8-byte
/// little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the little-endian data; string metadata under
/// `"__metadata__"`. GradKit writes F32 and reads F32, F64, F16, BF16 and the
/// integer types (converted to Float; PyTorch's `num_batches_tracked` is I64).
///
/// Reading trusts nothing in the file. The header length is checked against
/// the file size and a 100 MB cap before the header is read; the whole header
/// is validated (see `layout(fileSize:file:read:)`) before any tensor data
/// is read; then each tensor's bytes go straight into its Float storage
/// (with `pread`, no memory map), so reading takes the memory of the resulting
/// tensors plus a 64 KiB chunk, refused up front when that exceeds
/// `MemoryBudget`.
public enum SafeTensors {
    /// The largest header accepted (the reference implementation's limit).
    static let maximumHeaderBytes = 100_000_000
    /// The largest dimension and element count of one tensor (2^40).
    static let maximumElementCount = 1 << 40
    /// The most dimensions a tensor may have (NumPy 2's limit).
    static let maximumRank = 64
    /// The most JSON values a header may hold: about 200,000 tensors of a
    /// few dimensions. Parsing a header into memory costs about a microsecond
    /// and a hundred bytes per value, so this bounds what the largest header
    /// the size cap admits could cost (a 100 MB header of tiny values would
    /// otherwise hold 50 million).
    static let maximumHeaderValues = 1_000_000

    /// The element types GradKit reads, by their safetensors names.
    enum DType: String {
        case F32, F64, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL

        /// Bytes per element.
        var size: Int {
            switch self {
            case .F64, .I64, .U64: 8
            case .F32, .I32, .U32: 4
            case .F16, .BF16, .I16, .U16: 2
            case .I8, .U8, .BOOL: 1
            }
        }
    }

    /// One tensor of a validated header.
    struct Entry {
        let name: String
        let dtype: DType
        let shape: [Int]
        let count: Int
        /// The byte range within the data section.
        let begin: Int, end: Int
    }

    /// A validated header: where each tensor's bytes are, and the metadata.
    struct Layout {
        /// Sorted by data offset.
        let entries: [Entry]
        let metadata: [String: String]
        /// The file offset of the data section (8 + the header length).
        let dataStart: Int
    }

    /// Fills a buffer with the source's bytes at a file offset; throws when it cannot.
    typealias ByteReader = (_ buffer: UnsafeMutableRawBufferPointer, _ offset: Int) throws -> Void

    // MARK: Writing

    /// The file's bytes for `tensors` and `metadata`. Tensors are stored in
    /// name order; the header is padded with spaces to a multiple of 8 bytes.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) -> [UInt8] {
        let (header, names) = header(tensors, metadata: metadata)
        var out = header
        out.reserveCapacity(header.count + names.reduce(0) { $0 + tensors[$1]!.scalarCount * 4 })
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { values in withLittleEndianBytes(values) { out.append(contentsOf: $0) } }
        }
        return out
    }

    /// Writes a file atomically (see `FileIO.writeAtomically(to:contents:)`),
    /// streaming each tensor's memory to the file without a copy of the whole.
    /// - Throws: ``CheckpointError/writeFailed(file:reason:)``.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        let (header, names) = header(tensors, metadata: metadata)
        do {
            try FileIO.writeAtomically(to: path) { writer in
                try header.withUnsafeBytes { try writer.write($0) }
                for name in names {
                    try tensors[name]!.withUnsafeBufferPointer { values in try withLittleEndianBytes(values) { try writer.write($0) } }
                }
            }
        } catch let error as FileIOError {
            throw CheckpointError.writeFailed(file: path, reason: error.message)
        }
    }

    /// The length field and padded header for `tensors`, and the order their data follows in.
    private static func header(_ tensors: [String: Tensor], metadata: [String: String]) -> (bytes: [UInt8], names: [String]) {
        var header: [String: JSON] = [:]
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let bytes = tensors[name]!.scalarCount * 4
            header[name] = .object([
                "dtype": .string("F32"), "shape": .array(tensors[name]!.shape.map { .number(Double($0)) }),
                "data_offsets": .array([.number(Double(offset)), .number(Double(offset + bytes))]),
            ])
            offset += bytes
        }
        if !metadata.isEmpty { header["__metadata__"] = .object(metadata.mapValues { .string($0) }) }
        var headerBytes = Array(JSON.object(header).text.utf8)
        while (8 + headerBytes.count) % 8 != 0 { headerBytes.append(0x20) }
        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count)
        var length = UInt64(headerBytes.count)
        for _ in 0..<8 {
            out.append(UInt8(length & 0xFF))
            length >>= 8
        }
        return (out + headerBytes, names)
    }

    /// Calls `body` with the little-endian bytes of `values`: their own memory
    /// on little-endian machines.
    private static func withLittleEndianBytes<Result>(
        _ values: UnsafeBufferPointer<Float>, _ body: (UnsafeRawBufferPointer) throws -> Result
    ) rethrows -> Result {
        #if _endian(little)
        return try body(UnsafeRawBufferPointer(values))
        #else
        return try values.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
        #endif
    }

    // MARK: Reading

    /// Every tensor (as Float) and the metadata of a file.
    ///
    /// The file is opened without blocking and refused unless it is a regular
    /// file; see the type's discussion for what is checked before what.
    /// - Throws: ``CheckpointError``: `unreadable` for a file that cannot be
    ///   opened, is not a regular file, changes while being read, or whose
    ///   tensors would not fit in memory; `malformed` with the byte offset, or
    ///   `unsupportedType`, for anything wrong in it.
    public static func read(_ path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let file: ReadableFile
        do throws(FileIOError) { file = try ReadableFile(path: path) } catch { throw CheckpointError.unreadable(file: path, reason: error.message) }
        let read: ByteReader = { buffer, offset in
            do throws(FileIOError) { try file.read(into: buffer, at: offset) } catch { throw CheckpointError.unreadable(file: path, reason: error.message) }
        }
        let layout = try layout(fileSize: file.size, file: path, read: read)
        return (try tensors(layout, read: read), layout.metadata)
    }

    /// ``read(_:)`` for a file already in memory (tests and fuzzing); the same
    /// validation, the same errors.
    package static func decode(_ bytes: [UInt8], file: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let read: ByteReader = { buffer, offset in
            // The layout's checks keep every range inside `bytes`.
            bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + buffer.count)])) }
        }
        let layout = try layout(fileSize: bytes.count, file: file, read: read)
        return (try tensors(layout, read: read), layout.metadata)
    }

    /// Reads the header length and the header through `read` and checks all
    /// of it; no tensor data is read. The rules, in order:
    ///
    /// 1. The file holds the 8-byte length; the length is at most
    ///    ``maximumHeaderBytes`` and at most the bytes that follow it (checked
    ///    before the header is read, so a huge or lying length costs nothing).
    /// 2. The header is a JSON object of at most ``maximumHeaderValues``
    ///    values (nesting and duplicate keys are refused by ``JSON``);
    ///    `__metadata__`, if present, maps strings to strings.
    /// 3. Every tensor entry has a known dtype, a shape of at most
    ///    ``maximumRank`` non-negative dimensions whose product is at most
    ///    ``maximumElementCount``, `data_offsets` of two
    ///    integers with begin <= end inside the data section, and exactly
    ///    elements × dtype size bytes.
    /// 4. The ranges, sorted, are contiguous, do not overlap, and cover the
    ///    data section exactly (as the reference reader requires).
    /// 5. The tensors, as Float, fit in the memory the process may still
    ///    allocate (`MemoryBudget`: physical memory, `RLIMIT_AS`,
    ///    `RLIMIT_DATA`, the cgroup's limit). Float storage is what reading
    ///    costs, whatever the file's size on disk: a sparse file of one F64
    ///    tensor needs half its length, one of U8 four times its length.
    static func layout(fileSize: Int, file: String, read: ByteReader) throws -> Layout {
        func malformed(_ offset: Int, _ reason: String) -> CheckpointError { .malformed(file: file, offset: offset, reason: reason) }
        guard fileSize >= 8 else { throw malformed(fileSize, "file ends inside the 8-byte header length") }
        var lengthBytes = [UInt8](repeating: 0, count: 8)
        try lengthBytes.withUnsafeMutableBytes { try read($0, 0) }
        let length = lengthBytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard length <= UInt64(maximumHeaderBytes) else {
            throw malformed(0, "header length \(length) is over the limit of \(maximumHeaderBytes) bytes")
        }
        guard Int(length) <= fileSize - 8 else {
            throw malformed(0, "header length \(length) exceeds the \(fileSize - 8) bytes after the length field")
        }
        let dataStart = 8 + Int(length), dataSize = fileSize - dataStart
        var headerBytes = [UInt8](repeating: 0, count: Int(length))
        try headerBytes.withUnsafeMutableBytes { try read($0, 8) }

        let header: JSON
        do { header = try JSON.parse(headerBytes[...], maximumValues: maximumHeaderValues) } catch { throw malformed(8 + error.offset, "header JSON: \(error.reason)") }
        guard let members = header.objectValue else { throw malformed(8, "header is not a JSON object") }
        var metadata: [String: String] = [:]
        if let meta = members["__metadata__"] {
            guard let object = meta.objectValue else { throw malformed(8, "__metadata__ is not an object") }
            for (key, value) in object {
                guard let text = value.stringValue else { throw malformed(8, "metadata \(key.quotedForMessage()) is not a string") }
                metadata[key] = text
            }
        }
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members where name != "__metadata__" {
            entries.append(try entry(name, value, dataStart: dataStart, dataSize: dataSize, file: file))
        }

        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }  // empty tensors first at a shared offset
        var cursor = 0
        for (index, entry) in entries.enumerated() {
            guard entry.begin == cursor else {
                let reason = entry.begin < cursor
                    ? "tensor \(entry.name.quotedForMessage()) overlaps tensor \(entries[index - 1].name.quotedForMessage())"
                    : "a hole of \(entry.begin - cursor) bytes precedes tensor \(entry.name.quotedForMessage())"
                throw malformed(dataStart + Swift.min(entry.begin, cursor), reason)
            }
            cursor = entry.end
        }
        guard cursor == dataSize else { throw malformed(dataStart + cursor, "\(dataSize - cursor) trailing bytes belong to no tensor") }

        // The ranges cover the data exactly, so the element total is at most dataSize: no overflow.
        let floatBytes = entries.reduce(0) { $0 + $1.count } * MemoryLayout<Float>.size
        let budget = MemoryBudget.current
        guard floatBytes <= budget.bytes else {
            throw CheckpointError.unreadable(file: file, reason: "its tensors need \(floatBytes) bytes as Float, \(budget.exceededDescription)")
        }
        return Layout(entries: entries, metadata: metadata, dataStart: dataStart)
    }

    /// One header entry checked on its own (rule 3 of `layout(fileSize:file:read:)`).
    private static func entry(_ name: String, _ value: JSON, dataStart: Int, dataSize: Int, file: String) throws -> Entry {
        func malformed(_ offset: Int, _ reason: String) -> CheckpointError {
            .malformed(file: file, offset: offset, reason: "tensor \(name.quotedForMessage()) \(reason)")
        }
        guard let dtypeName = value["dtype"]?.stringValue, let shapeJSON = value["shape"]?.arrayValue, let offsets = value["data_offsets"]?.arrayValue else {
            throw malformed(8, "lacks a dtype string, a shape array or a data_offsets array")
        }
        guard let dtype = DType(rawValue: dtypeName) else { throw CheckpointError.unsupportedType(file: file, tensor: name, dtype: dtypeName) }
        guard shapeJSON.count <= maximumRank else { throw malformed(8, "has \(shapeJSON.count) dimensions, more than \(maximumRank)") }
        var shape: [Int] = []
        shape.reserveCapacity(shapeJSON.count)
        for dimension in shapeJSON {
            guard let size = dimension.integerValue, size <= maximumElementCount else {
                throw malformed(8, "has an invalid dimension \(dimension.text.quotedForMessage(limit: 30)) (dimensions are integers from 0 to 2^40)")
            }
            shape.append(size)
        }
        var count = 1
        if !shape.contains(0) {
            for size in shape {
                let (product, overflow) = count.multipliedReportingOverflow(by: size)
                guard !overflow, product <= maximumElementCount else { throw malformed(8, "has more than 2^40 elements") }
                count = product
            }
        } else {
            count = 0
        }
        guard offsets.count == 2, let begin = offsets[0].integerValue, let end = offsets[1].integerValue else {
            throw malformed(8, "has data_offsets that are not two non-negative integers")
        }
        guard begin <= end else { throw malformed(dataStart + Swift.min(begin, dataSize), "has data_offsets [\(begin), \(end)) that end before they begin") }
        guard end <= dataSize else {
            throw malformed(dataStart + Swift.min(begin, dataSize), "data [\(begin), \(end)) is outside the \(dataSize) data bytes")
        }
        guard end - begin == count * dtype.size else {  // count <= 2^40, size <= 8: no overflow
            throw malformed(dataStart + begin, "of shape \(shape) and dtype \(dtype) needs \(count * dtype.size) bytes, has \(end - begin)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, count: count, begin: begin, end: end)
    }

    /// Reads every tensor of a validated layout into new Float tensors: F32
    /// straight into the tensor's memory, other types through a fixed chunk.
    private static func tensors(_ layout: Layout, read: ByteReader) throws -> [String: Tensor] {
        let chunkBytes = 1 << 16
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: 8)
        defer { chunk.deallocate() }
        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(layout.entries.count)
        for entry in layout.entries {
            var tensor = Tensor(uninitializedShape: entry.shape)
            let start = layout.dataStart + entry.begin
            try tensor.withUnsafeMutableBufferPointer { values in
                if entry.dtype == .F32 {
                    try read(UnsafeMutableRawBufferPointer(values), start)
                    #if _endian(big)
                    for i in values.indices { values[i] = Float(bitPattern: UInt32(littleEndian: values[i].bitPattern)) }
                    #endif
                    return
                }
                let perChunk = chunkBytes / entry.dtype.size
                var done = 0
                while done < entry.count {
                    let n = Swift.min(perChunk, entry.count - done)
                    let bytes = UnsafeMutableRawBufferPointer(rebasing: chunk[0..<(n * entry.dtype.size)])
                    try read(bytes, start + done * entry.dtype.size)
                    convert(UnsafeRawBufferPointer(bytes), from: entry.dtype, into: values.baseAddress! + done)
                    done += n
                }
            }
            tensors[entry.name] = tensor
        }
        return tensors
    }

    /// Converts little-endian elements of `dtype` to Float (integers to the nearest Float).
    private static func convert(_ raw: UnsafeRawBufferPointer, from dtype: DType, into out: UnsafeMutablePointer<Float>) {
        let count = raw.count / dtype.size
        func load<T: FixedWidthInteger>(_: T.Type, _ i: Int) -> T {
            T(littleEndian: raw.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self))
        }
        switch dtype {
        case .F32: for i in 0..<count { out[i] = Float(bitPattern: load(UInt32.self, i)) }
        case .F64: for i in 0..<count { out[i] = Float(Double(bitPattern: load(UInt64.self, i))) }
        case .F16: for i in 0..<count { out[i] = Float(Float16(bitPattern: load(UInt16.self, i))) }
        case .BF16: for i in 0..<count { out[i] = Float(bitPattern: UInt32(load(UInt16.self, i)) << 16) }
        case .I64: for i in 0..<count { out[i] = Float(load(Int64.self, i)) }
        case .I32: for i in 0..<count { out[i] = Float(load(Int32.self, i)) }
        case .I16: for i in 0..<count { out[i] = Float(load(Int16.self, i)) }
        case .I8: for i in 0..<count { out[i] = Float(load(Int8.self, i)) }
        case .U64: for i in 0..<count { out[i] = Float(load(UInt64.self, i)) }
        case .U32: for i in 0..<count { out[i] = Float(load(UInt32.self, i)) }
        case .U16: for i in 0..<count { out[i] = Float(load(UInt16.self, i)) }
        case .U8, .BOOL: for i in 0..<count { out[i] = Float(load(UInt8.self, i)) }
        }
    }
}
