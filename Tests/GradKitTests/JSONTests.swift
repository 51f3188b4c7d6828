// The JSON reader and writer behind safetensors headers, checkpoints and logs.
import Testing

@testable import GradKit

@Suite("JSON")
struct JSONTests {
    @Test("parses RFC 8259 values, escapes and surrogate pairs")
    func parse() throws {
        let value = try JSON.parse(#" { "a" : [1, -2.5e3, 0.125, true, false, null], "s": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00" } "#)
        #expect(value.objectValue?["a"] == .array([.number(1), .number(-2500), .number(0.125), .bool(true), .bool(false), .null]))
        #expect(value.objectValue?["s"]?.stringValue == "x\"\\/\u{8}\u{c}\n\r\té😀")
        #expect(try JSON.parse("9007199254740992").integerValue == 9_007_199_254_740_992)
        #expect(try JSON.parse("1.5").integerValue == nil)
    }

    @Test("rejects malformed text with the byte offset")
    func errors() {
        let cases: [(String, Int)] = [
            ("", 0), ("[1,]", 3), ("{\"a\" 1}", 5), ("\"abc", 4), ("\"\\q\"", 1), ("tru", 3), ("01", 1), ("1 2", 2),
            ("{\"a\":1,}", 7), ("\"\u{1}\"", 1), ("-", 1), ("1e", 2), ("\"\\ud83d\"", 1), ("1.", 2), (".5", 0), ("+1", 0),
            ("1e999", 0),
            (String(repeating: "[", count: 70) + String(repeating: "]", count: 70), 64),
        ]
        for (text, offset) in cases {
            do {
                _ = try JSON.parse(text)
                Issue.record("no error for \(text)")
            } catch {
                #expect(error.offset == offset, "'\(text)': offset \(error.offset) (\(error.reason)), expected \(offset)")
            }
        }
    }

    @Test("writing then parsing gives the same value")
    func roundTrip() throws {
        var generator = SeededGenerator(seed: 3)
        func random(_ depth: Int) -> JSON {
            switch Int.random(in: 0..<(depth > 3 ? 4 : 6), using: &generator) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &generator))
            case 2: return .number([0, -1, 1e300, 5e-324, 0.1, 123_456_789_012, -3.25][Int.random(in: 0..<7, using: &generator)])
            case 3: return .string(String((0..<Int.random(in: 0..<8, using: &generator)).map { _ in "aé\"\\\n\u{1}😀 "[Int.random(in: 0..<8, using: &generator)] }))
            case 4: return .array((0..<Int.random(in: 0..<4, using: &generator)).map { _ in random(depth + 1) })
            default:
                var members: [String: JSON] = [:]
                for i in 0..<Int.random(in: 0..<4, using: &generator) { members["k\(i)\u{e9}"] = random(depth + 1) }
                return .object(members)
            }
        }
        for _ in 0..<300 {
            let value = random(0)
            #expect(try JSON.parse(value.text) == value, "\(value.text)")
        }
    }
}

extension String {
    fileprivate subscript(_ index: Int) -> Character { self[self.index(startIndex, offsetBy: index)] }
}
