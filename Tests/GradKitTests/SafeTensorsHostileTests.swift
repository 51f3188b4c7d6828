// safetensors files built to hurt the reader: huge, lying, special, overlapping, deep, duplicated, junk-named.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// A file holding `header` (length field included) whose size is then set to
/// `size` with ftruncate: the rest reads as zeros but takes no disk space.
func sparseFile(_ path: String, header: [UInt8], size: Int) throws {
    try writePlainFile(path, header)
    guard truncate(path, off_t(size)) == 0 else { throw FileIOError(message: "truncate failed: \(errno)") }
}

/// The 8-byte little-endian header length field for `length`.
func lengthField(_ length: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: length >> (8 * UInt64($0))) } }

/// Bytes this process read from files and devices while `body` ran (`rchar` of /proc/self/io).
/// Tests running at the same time add their reads, so bounds sit far below the sizes tested;
/// unlike wall time, the count does not grow when the machine is busy.
func bytesRead(_ body: () throws -> Void) rethrows -> Int {
    func rchar() -> Int {
        let descriptor = open("/proc/self/io", O_RDONLY)
        guard descriptor >= 0 else { return 0 }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(descriptor, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix(Swift.max(0, count)), as: UTF8.self)
        let line = text.split(separator: "\n").first { $0.hasPrefix("rchar:") } ?? ""
        return Int(line.dropFirst("rchar:".count).filter(\.isNumber)) ?? 0
    }
    let before = rchar()
    try body()
    return rchar() - before
}

/// CPU seconds the calling thread spends in `body` (user and system): unlike wall time, not
/// stretched by other processes on the machine.
func threadCPUSeconds(_ body: () throws -> Void) rethrows -> Double {
    func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
    let start = now()
    try body()
    return now() - start
}

/// Reading bounds: far below the files tested (2 to 40 GiB), far above what a refusal reads.
let refusalReadBound = 256 << 20

/// The CheckpointError a read throws, or nil when it succeeds.
func readError(_ path: String) -> CheckpointError? {
    do {
        _ = try SafeTensors.read(path)
        return nil
    } catch let error as CheckpointError {
        return error
    } catch {
        Issue.record("unexpected \(error)")
        return nil
    }
}

/// The peak resident memory of this process so far, in bytes.
func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return usage.ru_maxrss * 1024
}

@Suite("hostile safetensors files")
struct SafeTensorsHostileTests {
    @Test("a FIFO, a directory and /dev/zero are refused at once, naming their kind")
    func specialFiles() throws {
        let directory = try temporaryDirectory()
        mkfifo(directory + "/fifo.safetensors", 0o600)
        for (path, kind) in [(directory + "/fifo.safetensors", "a FIFO"), (directory, "a directory"), ("/dev/zero", "a character device")] {
            var error: CheckpointError?
            let read = bytesRead { error = readError(path) }
            #expect(read < refusalReadBound, "\(path): read \(read) bytes")
            guard case .unreadable(let file, let reason)? = error else {
                Issue.record("\(path): \(String(describing: error))")
                continue
            }
            #expect(file == path && reason.contains("is \(kind)"), "\(reason)")
            #expect(throws: CheckpointError.self) { try Checkpoint.read(from: path) }
        }
    }

    @Test("a 40 GiB sparse file is rejected in milliseconds, without reading its data")
    func hugeSparseFile() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/huge.safetensors"
        defer { unlink(path) }
        let header = Array(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#.utf8)
        try sparseFile(path, header: lengthField(UInt64(header.count)) + header, size: 40 << 30)
        var error: CheckpointError?
        let read = bytesRead { error = readError(path) }
        #expect(read < refusalReadBound, "read \(read) bytes")
        guard case .malformed(_, _, let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("trailing bytes"), "\(reason)")
    }

    @Test("a valid header over more data than the machine's memory is refused before allocating")
    func tensorsLargerThanMemory() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/big.safetensors"
        defer { unlink(path) }
        let dataBytes = (FileIO.physicalMemoryBytes / 4 + 1) * 4
        let text = #"{"big":{"dtype":"F32","shape":[\#(dataBytes / 4)],"data_offsets":[0,\#(dataBytes)]}}"#
        let header = Array(text.utf8)
        try sparseFile(path, header: lengthField(UInt64(header.count)) + header, size: 8 + header.count + dataBytes)
        var error: CheckpointError?
        let read = bytesRead { error = readError(path) }
        #expect(read < refusalReadBound, "read \(read) bytes")
        guard case .unreadable(_, let reason)? = error else { Issue.record("\(String(describing: error))"); return }
        #expect(reason.contains("memory"), "\(reason)")
    }

    @Test("header lengths beyond the cap or the file (2 GiB sparse, 2^63) are rejected before the header is read")
    func headerLengths() async throws {
        let directory = try temporaryDirectory()
        let path = directory + "/long-header.safetensors"
        defer { unlink(path) }
        // A header length that fits the 2 GiB file but not the 100 MB cap.
        try sparseFile(path, header: lengthField((2 << 30) - 8) + Array("{".utf8), size: 2 << 30)
        var error: CheckpointError?
        let read = bytesRead { error = readError(path) }
        #expect(read < refusalReadBound, "read \(read) bytes")
        #expect(error.map { "\($0)".contains("over the limit") } == true, "\(String(describing: error))")
        // Nor does it cost memory: measured in a child process, whose peak is its own.
        await #expect(processExitsWith: .success) { [path = path as String] in
            let before = peakResidentBytes()
            _ = try? SafeTensors.read(path)
            exit(peakResidentBytes() - before < 32 << 20 ? EXIT_SUCCESS : EXIT_FAILURE)
        }
        for length: UInt64 in [1 << 63, UInt64.max, 100_000_001, 9] {
            let bytes = lengthField(length) + Array("{}".utf8)
            #expect(throws: CheckpointError.self, "header length \(length)") { try SafeTensors.decode(bytes, file: "mem") }
            try writePlainFile(path, bytes)
            guard case .malformed(_, 0, _)? = readError(path) else { Issue.record("header length \(length) not refused at byte 0"); continue }
        }
    }

    @Test("thousands of tensors sharing one byte range are rejected before any is converted")
    func overlappingTensors() throws {
        let dataBytes = 800_000
        var header = "{"
        for i in 0..<3000 { header += #""t\#(i)":{"dtype":"F32","shape":[\#(dataBytes / 4)],"data_offsets":[0,\#(dataBytes)]},"# }
        header.removeLast()
        header += "}"
        let bytes = safeTensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataBytes))
        var failure: Error?
        let time = threadCPUSeconds {
            do { _ = try SafeTensors.decode(bytes, file: "overlap") } catch { failure = error }
        }
        #expect(time < 1, "took \(time) s of CPU")
        #expect(failure.map { "\($0)".contains("overlaps") } == true, "\(String(describing: failure))")
    }

    @Test("a header of 100k '[' or '{\"a\":' is an error, not a stack overflow")
    func deepNesting() {
        for opener in ["[", #"{"a":"#] {
            let header = String(repeating: opener, count: 100_000)
            #expect(throws: CheckpointError.self) { try SafeTensors.decode(safeTensorsBytes(header: header, data: []), file: "deep") }
        }
    }

    @Test("a header of more JSON values than the limit, or a shape of more than 64 dimensions, is refused early")
    func headerSizeLimits() {
        // Within the 100 MB cap, but 1.5 million values: refused by count, before the rest is parsed.
        let many = "[" + String(repeating: "0,", count: 1_500_000) + "0]"
        #expect {
            try SafeTensors.decode(safeTensorsBytes(header: #"{"__metadata__":{"k":"v"},"x":"# + many + "}", data: []), file: "many")
        } throws: { error in
            "\(error)".contains("more than \(SafeTensors.maximumHeaderValues) values")
        }
        let rank65 = "[" + Array(repeating: "1", count: 65).joined(separator: ",") + "]"
        #expect {
            try SafeTensors.decode(safeTensorsBytes(header: #"{"a":{"dtype":"F32","shape":\#(rank65),"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), file: "rank")
        } throws: { error in
            "\(error)".contains("65 dimensions")
        }
        let rank64 = "[" + Array(repeating: "1", count: 64).joined(separator: ",") + "]"
        #expect(throws: Never.self) {
            try SafeTensors.decode(safeTensorsBytes(header: #"{"a":{"dtype":"F32","shape":\#(rank64),"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), file: "rank")
        }
    }

    @Test("a tensor name twice in the header is an error naming it")
    func duplicateNames() {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        #expect {
            try SafeTensors.decode(safeTensorsBytes(header: header, data: [UInt8](repeating: 0, count: 8)), file: "dup")
        } throws: { error in
            "\(error)".contains("duplicate key 'w'")
        }
        let metadata = #"{"__metadata__":{"k":"a","k":"b"}}"#
        #expect(throws: CheckpointError.self) { try SafeTensors.decode(safeTensorsBytes(header: metadata, data: []), file: "dup") }
    }

    @Test("a 1 MB junk name yields a short, escaped, one-line message")
    func junkNames() throws {
        let junk = "\u{1B}[2J\u{1B}]0;pwned\u{07}" + String(repeating: "\u{1B}[31mX\n", count: 100_000)
        let cases = [
            #"{"\#(jsonEscaped(junk))":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#,  // unsupported dtype
            #"{"\#(jsonEscaped(junk))":{"dtype":"F32","shape":[2],"data_offsets":[0,1]}}"#,  // wrong size
            #"{"\#(jsonEscaped(junk))":1,"\#(jsonEscaped(junk))":2}"#,  // duplicate
            #"{"__metadata__":{"\#(jsonEscaped(junk))":1}}"#,  // metadata not a string
        ]
        for header in cases {
            do {
                _ = try SafeTensors.decode(safeTensorsBytes(header: header, data: [0]), file: "junk\u{1B}.safetensors")
                Issue.record("no error")
            } catch {
                let message = "\(error)"
                #expect(message.utf8.count < 400, "\(message.utf8.count) bytes")
                #expect(!message.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }, "\(message.debugDescription)")
                #expect(message.contains("\\u{1B}[2J"), "\(message)")
            }
        }
    }

    @Test("metadata values must be strings; entries must be objects with the three fields")
    func wrongTypes() {
        let headers = [
            #"{"__metadata__":{"k":["v"]}}"#, #"{"__metadata__":"v"}"#, #"{"a":5}"#, #"{"a":{"dtype":4,"shape":[],"data_offsets":[0,4]}}"#,
            #"{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,4]}}"#, #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}"#,
            #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0.5,4]}}"#,
            #"{"a":{"dtype":"F32","shape":[9223372036854775807,2],"data_offsets":[0,4]}}"#,
            #"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}}"#,
        ]
        for header in headers {
            #expect(throws: CheckpointError.self, "\(header)") { try SafeTensors.decode(safeTensorsBytes(header: header, data: [0, 0, 0, 0]), file: "t") }
        }
    }

    @Test("a file that shrinks while being read is an error, not a crash")
    func shrinkingFile() throws {
        let directory = try temporaryDirectory()
        let path = directory + "/shrink.safetensors"
        try writePlainFile(path, SafeTensors.encode(["w": randomTensor([1000], seed: 1)]))
        let file = try ReadableFile(path: path)
        truncate(path, 100)
        var buffer = [UInt8](repeating: 0, count: file.size)
        let message = fileIOError { try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: 0) } }
        #expect(message?.contains("changed while being read") == true, "\(message ?? "no error")")
    }

    @Test("reading a file and decoding its bytes agree for every dtype, across chunk boundaries")
    func fileAndMemoryAgree() throws {
        // Enough elements that every type spans several 64 KiB chunks; values from an independent formula.
        let n = 40_000
        func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] { values.flatMap { v in (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } } }
        let f64 = (0..<n).map { Double($0) * 0.25 - 7 }, i16 = (0..<n).map { Int16(truncatingIfNeeded: $0 * 37 - 20_000) }
        let f16 = (0..<n).map { Float16(Float($0 % 2048) - 1024) }, u8 = (0..<n).map { UInt8($0 % 256) }
        let parts: [(String, String, [UInt8], [Float])] = [
            ("d", "F64", bytes(f64.map(\.bitPattern)), f64.map { Float($0) }),
            ("h", "F16", bytes(f16.map(\.bitPattern)), f16.map { Float($0) }),
            ("i", "I16", bytes(i16), i16.map { Float($0) }),
            ("u", "U8", bytes(u8), u8.map { Float($0) }),
            ("f", "F32", bytes(f64.map { Float($0).bitPattern }), f64.map { Float($0) }),
        ]
        var header = "{", data: [UInt8] = []
        for (name, dtype, raw, _) in parts {
            header += #""\#(name)":{"dtype":"\#(dtype)","shape":[\#(n)],"data_offsets":[\#(data.count),\#(data.count + raw.count)]},"#
            data += raw
        }
        header.removeLast()
        let file = safeTensorsBytes(header: header + "}", data: data)
        let directory = try temporaryDirectory()
        try writePlainFile(directory + "/all.safetensors", file)
        let (fromFile, _) = try SafeTensors.read(directory + "/all.safetensors")
        let (fromMemory, _) = try SafeTensors.decode(file, file: "mem")
        for (name, _, _, expected) in parts {
            expectIdentical(fromFile[name]!.scalars, expected, name)
            expectIdentical(fromMemory[name]!.scalars, expected, name)
        }
    }

    @Test("reading a 100 MB F32 file takes the tensor's memory plus a small constant")
    func peakMemory() async throws {
        let directory = try temporaryDirectory()
        let path = directory + "/large.safetensors"
        defer { unlink(path) }
        await #expect(processExitsWith: .success) { [path = path as String] in
            // Written in 1 MiB pieces so that writing does not raise the peak being measured.
            let count = 25_000_000
            let header = Array(#"{"w":{"dtype":"F32","shape":[\#(count)],"data_offsets":[0,\#(count * 4)]}}"#.utf8)
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            var piece = lengthField(UInt64(header.count)) + header
            _ = piece.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            piece = (0..<(1 << 18)).flatMap { i in withUnsafeBytes(of: Float(i).bitPattern.littleEndian, Array.init) }
            for _ in 0..<(count / (1 << 18)) { _ = piece.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) } }
            let rest = count % (1 << 18) * 4
            _ = piece.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, rest) }
            close(descriptor)
            let before = peakResidentBytes()
            let (tensors, _) = try SafeTensors.read(path)
            let growth = peakResidentBytes() - before
            let tensorBytes = tensors["w"]!.scalarCount * 4
            let ok = tensors["w"]!.withUnsafeBufferPointer { $0[1] == 1 && $0[(1 << 18) + 5] == 5 }
            // The tensor plus 16 MB for everything else; reading the whole file first would need twice the tensor.
            print("peak growth \(growth) bytes for a \(tensorBytes)-byte tensor")
            exit(ok && growth <= tensorBytes + (16 << 20) ? EXIT_SUCCESS : EXIT_FAILURE)
        }
    }

    @Test("JSON never traps: huge numbers, -0, 2^63, invalid UTF-8, lone surrogates, NUL bytes")
    func jsonEdges() throws {
        #expect(try JSON.parse("1e300").integerValue == nil)
        #expect(try JSON.parse("-0").integerValue == 0)
        #expect(try JSON.parse("9223372036854775808").integerValue == nil)
        #expect(try JSON.parse("9007199254740993").integerValue == 9_007_199_254_740_992)  // rounds to 2^53 as a Double
        #expect(try JSON.parse("-1").integerValue == nil)
        let refused: [[UInt8]] = [
            Array("1e400".utf8), Array("-1e400".utf8), [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
            Array(#""\udc00""#.utf8), Array(#""\ud800x""#.utf8), Array(#""\ud800\u0041""#.utf8), [0x22, 0x00, 0x22], [0x00],
            Array("[1,".utf8), Array(#"{"a":1,"a":2}"#.utf8), Array(repeating: UInt8(ascii: "["), count: 100_000),
        ]
        for bytes in refused {
            #expect(throws: JSONError.self, "\(bytes.prefix(12))") { try JSON.parse(bytes[...]) }
        }
        #expect(try JSON.parse(#""\u0000""#).stringValue == "\u{0}")
        let long = "1" + String(repeating: "0", count: 5_000_000)
        #expect(throws: JSONError.self) { try JSON.parse(long) }  // 10^5000000 is beyond Double
        #expect(try JSON.parse("0." + String(repeating: "0", count: 5_000_000) + "1").numberValue == 0)
    }
}

/// `text` as the inside of a JSON string literal.
func jsonEscaped(_ text: String) -> String {
    let quoted = JSON.string(text).text
    return String(quoted.dropFirst().dropLast())
}
