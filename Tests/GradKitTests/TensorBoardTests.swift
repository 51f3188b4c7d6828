// TensorBoard event files: CRC-32C, TFRecord framing, hand-encoded protobufs against TensorBoard's own
// Python writer (Tests/Fixtures/tensorboard_fixture.py), histogram buckets against a linear scan.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// One protobuf field as read back: a varint or fixed value, or length-delimited bytes.
struct DecodedField {
    var number: Int
    var wireType: Int
    var integer: UInt64 = 0
    var bytes: [UInt8] = []
    var double: Double { Double(bitPattern: integer) }
    var float: Float { Float(bitPattern: UInt32(truncatingIfNeeded: integer)) }
    var string: String { String(decoding: bytes, as: UTF8.self) }
}

/// A protobuf decoder written from the wire-format specification (not from the encoder).
func decodeProtobuf(_ bytes: [UInt8]) -> [DecodedField]? {
    var fields: [DecodedField] = [], i = 0
    func varint() -> UInt64? {
        var value: UInt64 = 0, shift: UInt64 = 0
        while i < bytes.count, shift < 64 {
            let byte = bytes[i]
            i += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return value }
            shift += 7
        }
        return nil
    }
    func fixed(_ count: Int) -> UInt64? {
        guard i + count <= bytes.count else { return nil }
        var value: UInt64 = 0
        for k in 0..<count { value |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        i += count
        return value
    }
    while i < bytes.count {
        guard let key = varint() else { return nil }
        var field = DecodedField(number: Int(key >> 3), wireType: Int(key & 7))
        switch field.wireType {
        case 0: guard let v = varint() else { return nil }; field.integer = v
        case 1: guard let v = fixed(8) else { return nil }; field.integer = v
        case 5: guard let v = fixed(4) else { return nil }; field.integer = v
        case 2:
            guard let length = varint(), i + Int(length) <= bytes.count else { return nil }
            field.bytes = Array(bytes[i..<(i + Int(length))])
            i += Int(length)
        default: return nil
        }
        fields.append(field)
    }
    return fields
}

/// `bytes` bytes at `at`, little-endian.
func littleEndianWord(_ data: [UInt8], at: Int, bytes: Int) -> UInt64 {
    var value: UInt64 = 0
    for k in 0..<bytes { value |= UInt64(data[at + k]) << UInt64(8 * k) }
    return value
}

/// The payloads of a TFRecord file, with both CRCs checked (nil on any framing error).
func readTFRecords(_ file: [UInt8]) -> [[UInt8]]? {
    func u64(_ at: Int) -> UInt64 { littleEndianWord(file, at: at, bytes: 8) }
    func u32(_ at: Int) -> UInt32 { UInt32(littleEndianWord(file, at: at, bytes: 4)) }
    var records: [[UInt8]] = [], at = 0
    while at < file.count {
        guard at + 12 <= file.count else { return nil }
        let length = Int(u64(at))
        guard u32(at + 8) == maskedCRC32C(file[at..<(at + 8)]), at + 12 + length + 4 <= file.count else { return nil }
        let data = Array(file[(at + 12)..<(at + 12 + length)])
        guard u32(at + 12 + length) == maskedCRC32C(data) else { return nil }
        records.append(data)
        at += 12 + length + 4
    }
    return records
}

/// An event read back: wall time, step, and its file version or summary values.
struct DecodedEvent {
    var wallTime = 0.0
    var step = 0
    var fileVersion: String?
    var scalars: [String: Float] = [:]
    var histograms: [String: [DecodedField]] = [:]

    init?(_ bytes: [UInt8]) {
        guard let fields = decodeProtobuf(bytes) else { return nil }
        for field in fields {
            switch (field.number, field.wireType) {
            case (1, 1): wallTime = field.double
            case (2, 0): step = Int(Int64(bitPattern: field.integer))
            case (3, 2): fileVersion = field.string
            case (5, 2):
                guard let values = decodeProtobuf(field.bytes) else { return nil }
                for value in values where value.number == 1 {
                    guard let parts = decodeProtobuf(value.bytes), let tag = parts.first(where: { $0.number == 1 })?.string else { return nil }
                    if let simple = parts.first(where: { $0.number == 2 && $0.wireType == 5 }) { scalars[tag] = simple.float }
                    if let histo = parts.first(where: { $0.number == 5 }) { histograms[tag] = decodeProtobuf(histo.bytes) }
                }
            default: return nil
            }
        }
    }
}

/// A histogram message's packed doubles of one field.
func packedDoubles(_ fields: [DecodedField], _ number: Int) -> [Double] {
    guard let packed = fields.first(where: { $0.number == number })?.bytes else { return [] }
    return stride(from: 0, to: packed.count, by: 8).map { Double(bitPattern: littleEndianWord(packed, at: $0, bytes: 8)) }
}

func fileBytes(_ path: String) throws -> [UInt8] { try FileIO.readAll(path).get() }

/// The fixture's histogram inputs (Tests/Fixtures/tensorboard_fixture.py).
let fixtureValuesA: [Float] = (0..<1000).map { Float((($0 * 7919) % 2001) - 1000) / 4096 }
let fixtureValuesB: [Float] = [0, 0x1p-43, -0x1p-38, 0x1p-30, 0x1p-25, -0x1p-20, 0x1p-25]
let fixtureValuesC: [Float] = [0x2be2a8bd, 0x342051b7, 0x41e2d61b, 0x4fa079d4, 0xbb06d843, 0x29e12e13, 0xa9e12e13].map { Float(bitPattern: $0) }

@Suite("TensorBoard")
struct TensorBoardTests {
    @Test("CRC-32C matches the published check values (RFC 3720 B.4 and the CRC catalogue)")
    func crc() {
        #expect(crc32c(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32c([UInt8]()) == 0)
        #expect(crc32c([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc32c([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(crc32c((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        // The mask, by its definition.
        let c = crc32c(Array("123456789".utf8))
        #expect(maskedCRC32C(Array("123456789".utf8)) == ((c >> 15) | (c << 17)) &+ 0xA282_EAD8)
    }

    @Test("the default edges are PyTorch's: 1,549 of them, symmetric, 0 in the middle, 1e-12 * 1.1^k")
    func edges() {
        let edges = TensorBoardHistogram.defaultEdges
        #expect(edges.count == 1549 && edges[774] == 0 && edges[775] == 1e-12 && edges[773] == -1e-12)
        #expect(zip(edges, edges.dropFirst()).allSatisfy { $0 < $1 })
        #expect((0..<774).allSatisfy { edges[$0] == -edges[1548 - $0] })
        #expect(edges.last! < 1e20 && edges.last! * 1.1 >= 1e20)
    }

    @Test("events are byte for byte those of TensorBoard's Python writer")
    func matchesTensorBoard() throws {
        let fixture = try fileBytes(fixturePath("tensorboard/events.fixture"))
        let directory = try temporaryDirectory() + "/board"
        let writer = try TensorBoardWriter(directory: directory)
        writer.addScalar("loss", 0.4375, step: 3, wallTime: 1_700_000_001.5)
        writer.addScalar("accuracy", 0, step: 0, wallTime: 1_700_000_002.75)
        #expect(writer.addHistogram("gradient/layer_01_0", values: fixtureValuesA, step: 300, wallTime: 1_700_000_003))
        #expect(writer.addHistogram("gradient/layer_02_1.body.0", values: Tensor(shape: [7], scalars: fixtureValuesB), step: 1 << 40, wallTime: 1_700_000_004.125))
        try writer.close()
        let written = try fileBytes(writer.path)
        // The writer stamps its file-version event with the current time: compare the fixture's
        // first record with one encoded at the fixture's time, and the rest as written.
        let first = TensorBoardEvent.record(TensorBoardEvent.fileVersion(wallTime: 1_700_000_000.25))
        let writtenRecords = try #require(readTFRecords(written))
        let fixtureRecords = try #require(readTFRecords(fixture))
        #expect(writtenRecords.count == 5 && fixtureRecords.count == 6)
        let ownFirst = try #require(DecodedEvent(writtenRecords[0]))
        #expect(ownFirst.fileVersion == "brain.Event:2" && Swift.abs(ownFirst.wallTime - TensorBoardWriter.wallTime()) < 600)
        let withoutFirst = Array(written.dropFirst(12 + writtenRecords[0].count + 4))
        let expected = Array(fixture.prefix(first.count + withoutFirst.count))
        // Name the first differing byte rather than print 25 kB.
        let mine = first + withoutFirst
        let mismatch = (0..<Swift.min(mine.count, expected.count)).first { mine[$0] != expected[$0] }
        #expect(mine.count == expected.count && mismatch == nil, "\(mine.count) bytes, first difference at byte \(mismatch.map(String.init) ?? "none")")
        #expect(first == Array(fixture.prefix(first.count)))
    }

    @Test("histograms next to bucket edges fall in numpy's buckets")
    func edgeBuckets() throws {
        let fixture = try #require(readTFRecords(try fileBytes(fixturePath("tensorboard/events.fixture"))))
        let event = try #require(DecodedEvent(fixture[5]))
        let reference = try #require(event.histograms["edges"])
        let histogram = try #require(TensorBoardHistogram(fixtureValuesC))
        #expect(histogram.bucketLimits == packedDoubles(reference, 6))
        #expect(histogram.bucketCounts == packedDoubles(reference, 7))
        let field = { (n: Int) in reference.first { $0.number == n }?.double ?? 0 }
        #expect(histogram.minimum == field(1) && histogram.maximum == field(2) && histogram.count == field(3))
        // Sums of values spanning 25 decades depend on the order of summation: within a few ulps.
        #expect(Swift.abs(histogram.sum - field(4)) <= 4 * field(4).magnitude.ulp)
        #expect(Swift.abs(histogram.sumOfSquares - field(5)) <= 4 * field(5).magnitude.ulp)
    }

    @Test("bucketing agrees with a linear scan of the edges; empty, non-finite and out-of-range input gives no histogram")
    func bucketsAgainstLinearScan() {
        let edges = TensorBoardHistogram.defaultEdges
        func scan(_ v: Double) -> Int? {
            guard v >= edges[0], v <= edges[edges.count - 1] else { return nil }
            for i in 0..<(edges.count - 1) where v >= edges[i] && v < edges[i + 1] { return i }
            return edges.count - 2
        }
        var values = randomScalars(300, seed: 41, in: -3...3) + [0, -0.0, 1e-13, -1e-13, 1e-12, -1e-12, 5e19, -5e19]
        values += edges.enumerated().filter { $0.offset % 97 == 0 }.map { Float($0.element) }
        for v in values { #expect(TensorBoardHistogram.bucket(of: Double(v), edges: edges) == scan(Double(v)), "\(v)") }
        #expect(TensorBoardHistogram.bucket(of: edges.last!, edges: edges) == edges.count - 2)
        #expect(TensorBoardHistogram.bucket(of: 2e20, edges: edges) == nil)
        let histogram = TensorBoardHistogram(values)!
        #expect(histogram.bucketCounts.reduce(0, +) == Double(values.count) && histogram.count == Double(values.count))
        #expect(histogram.bucketCounts.first == 0 && histogram.bucketCounts.last! > 0)
        #expect(TensorBoardHistogram([Float]()) == nil && TensorBoardHistogram([1, .nan]) == nil && TensorBoardHistogram([Float.infinity]) == nil)
        #expect(TensorBoardHistogram([Float(3e20)]) == nil)
    }

    @Test("the writer names its file as TensorBoard does, refuses an empty path and reports writes after close")
    func fileHandling() throws {
        #expect(throws: TensorBoardError.emptyPath) { try TensorBoardWriter(directory: "") }
        let directory = try temporaryDirectory() + "/a/b"
        let first = try TensorBoardWriter(directory: directory)
        let second = try TensorBoardWriter(directory: directory)
        #expect(first.path != second.path)
        let name = String(first.path.split(separator: "/").last!)
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        #expect(name.hasPrefix("events.out.tfevents.") && parts.count >= 6 && parts[3].count == 10 && Int(parts[3]) != nil, "\(name)")
        #expect(Int(parts[parts.count - 2]) == Int(getpid()))
        try first.close()
        first.addScalar("late", 1, step: 1)
        #expect(throws: TensorBoardError.closed(path: first.path)) { try first.flush() }
        try second.close()
        #expect(TensorBoardWriter.layerTag(index: 3, path: "1.body.0", layerCount: 9) == "layer_03_1.body.0")
        #expect(TensorBoardWriter.layerTag(index: 7, path: "0", layerCount: 120) == "layer_007_0")
        // A file where the directory should be.
        let blocked = try temporaryDirectory() + "/file"
        _ = FileIO.writeAtomically([1], to: blocked)
        #expect(throws: TensorBoardError.self) { try TensorBoardWriter(directory: blocked + "/runs") }
    }

    @Test("a write that fails part way (file size limit: EFBIG) is reported and taken back: the file ends on a whole record")
    func failedWriteLeavesWholeRecords() async {
        await #expect(processExitsWith: .success) {
            limitFileSize(4096)
            let writer = try! TensorBoardWriter(directory: try! temporaryDirectory())
            var failed = false
            for step in 0..<200 where !failed {
                _ = writer.addHistogram("h", values: Tensor(shape: [64], scalars: (0..<64).map { Float($0 * step) }), step: step)
                do { try writer.flush() } catch { failed = true }
            }
            guard failed else { exit(2) }
            // TFRecord framing: 8-byte length, 4-byte CRC, the data, 4-byte CRC.
            let bytes = try! FileIO.readAll(writer.path).get()
            var offset = 0
            while offset + 12 <= bytes.count {
                let length = (0..<8).reduce(0) { $0 | Int(bytes[offset + $1]) << (8 * $1) }
                offset += 12 + length + 4
            }
            exit(offset == bytes.count ? 0 : 3)
        }
    }
}
