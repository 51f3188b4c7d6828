// GradKit — TensorBoard's event records: protobuf by hand, TFRecord framing, CRC-32C. SPDX-License-Identifier: MIT

/// The few protobuf messages an event file needs, encoded field by field
/// (proto3: a scalar equal to its default is left out unless it belongs to a
/// `oneof`), with the field numbers of TensorBoard's `event.proto`,
/// `summary.proto` and `histogram.proto`.
enum TensorBoardEvent {
    /// `Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }`.
    static func fileVersion(wallTime: Double) -> [UInt8] {
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.bytes(3, Array("brain.Event:2".utf8))
        return event.bytes
    }

    /// An event holding one summary value.
    static func summary(wallTime: Double, step: Int, value: [UInt8]) -> [UInt8] {
        var summary = ProtobufWriter()
        summary.bytes(1, value)  // Summary { repeated Value value = 1; }
        var event = ProtobufWriter()
        event.double(1, wallTime)
        event.varint(2, UInt64(bitPattern: Int64(step)))
        event.bytes(5, summary.bytes)
        return event.bytes
    }

    /// `Summary.Value { string tag = 1; oneof value { float simple_value = 2; HistogramProto histo = 5; } }`.
    static func scalarValue(tag: String, _ value: Float) -> [UInt8] {
        var message = ProtobufWriter()
        message.bytes(1, Array(tag.utf8))
        message.fixed32(2, value.bitPattern)  // in a oneof: written even when 0
        return message.bytes
    }

    static func histogramValue(tag: String, _ histogram: TensorBoardHistogram) -> [UInt8] {
        // HistogramProto { double min = 1, max = 2, num = 3, sum = 4, sum_squares = 5;
        //                  repeated double bucket_limit = 6 [packed], bucket = 7 [packed]; }
        var proto = ProtobufWriter()
        proto.double(1, histogram.minimum)
        proto.double(2, histogram.maximum)
        proto.double(3, histogram.count)
        proto.double(4, histogram.sum)
        proto.double(5, histogram.sumOfSquares)
        proto.packedDoubles(6, histogram.bucketLimits)
        proto.packedDoubles(7, histogram.bucketCounts)
        var message = ProtobufWriter()
        message.bytes(1, Array(tag.utf8))
        message.bytes(5, proto.bytes)
        return message.bytes
    }

    /// A TFRecord: the length (UInt64, little-endian), its masked CRC-32C, the
    /// data, the data's masked CRC-32C.
    static func record(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(data.count + 16)
        let length = littleEndian(UInt64(data.count))
        out += length
        out += littleEndian(maskedCRC32C(length))
        out += data
        out += littleEndian(maskedCRC32C(data))
        return out
    }

    static func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}

/// Appends protobuf fields (wire types 0, 1, 2 and 5).
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

    private mutating func rawVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// An int64/uint64 field (left out when 0).
    mutating func varint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        key(field, 0)
        rawVarint(value)
    }

    /// A double field (left out when +0).
    mutating func double(_ field: Int, _ value: Double) {
        guard value.bitPattern != 0 else { return }
        key(field, 1)
        bytes += TensorBoardEvent.littleEndian(value.bitPattern)
    }

    /// A float field, always written (oneof members have presence).
    mutating func fixed32(_ field: Int, _ bits: UInt32) {
        key(field, 5)
        bytes += TensorBoardEvent.littleEndian(bits)
    }

    /// A string, bytes or embedded-message field.
    mutating func bytes(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        rawVarint(UInt64(value.count))
        bytes += value
    }

    /// A packed repeated double field (left out when empty).
    mutating func packedDoubles(_ field: Int, _ values: [Double]) {
        guard !values.isEmpty else { return }
        key(field, 2)
        rawVarint(UInt64(values.count * 8))
        for v in values { bytes += TensorBoardEvent.littleEndian(v.bitPattern) }
    }
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.
func crc32c(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes { crc = crc32cTable[Int(UInt8(truncatingIfNeeded: crc) ^ byte)] ^ (crc >> 8) }
    return ~crc
}

/// TFRecord's masked CRC: a CRC stored in data that is itself CRC'd must not look like one.
func maskedCRC32C(_ bytes: some Sequence<UInt8>) -> UInt32 {
    let crc = crc32c(bytes)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
}

private let crc32cTable: [UInt32] = (UInt32(0)..<256).map { n in
    var c = n
    for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
    return c
}
