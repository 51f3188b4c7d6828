// Emulated fp16 and bfloat16 storage: rounding against Swift's own Float16 conversion (fp16) and a
// nearest-of-two-candidates reference (bfloat16), at the formats' boundaries and on random bit
// patterns; the recorded op rounds its output and the gradient flowing back; the layer does the same.
import Testing

@testable import GradKit

/// bfloat16 rounding by another route: the two bfloat16 values around `x` (its top 16 bits, and one
/// unit more), the nearer by exact Double distance, the even one on a tie.
private func bfloat16Reference(_ x: Float) -> Float {
    guard x.isFinite else { return x }
    let down = Float(bitPattern: x.bitPattern & 0xFFFF_0000)
    let upBits = (x.bitPattern & 0xFFFF_0000) + 0x1_0000
    let up = Float(bitPattern: upBits)
    let toDown = Swift.abs(Double(x) - Double(down))
    // One unit above the largest finite value is ∞: measure the distance to where 2^128 would be.
    let toUp = up.isInfinite ? Swift.abs(0x1p128 * Double(x.sign == .minus ? -1 : 1) - Double(x)) : Swift.abs(Double(up) - Double(x))
    if toDown != toUp { return toDown < toUp ? down : up }
    return (down.bitPattern >> 16) & 1 == 0 ? down : up
}

/// Values at and around the formats' boundaries, both signs.
private let boundaryValues: [Float] = {
    let positive: [Float] = [
        0, 1, 65504, 65519.996, 65520, 65536, 1e6, 0x1p-14, 0x1p-14 - 0x1p-25, 0x1p-24, 0x1p-25, 0x1p-25 + 0x1p-40, 0x1p-26,
        3 * 0x1p-25, 1.5 * 0x1p-24, 1 + 0x1p-11, 1 + 3 * 0x1p-11, 1 + 0x1p-8, 1 + 3 * 0x1p-8, 0.1, 1e-8, 1e-30, 0x1p-130,
        .leastNonzeroMagnitude, .greatestFiniteMagnitude, .infinity,
    ]
    return positive + positive.map { -$0 }
}()

/// Random bit patterns spread over every exponent, plus random magnitudes around fp16's range.
private let randomValues: [Float] = {
    var generator = SeededGenerator(seed: 16)
    return (0..<20_000).map { i in
        i % 2 == 0 ? Float(bitPattern: UInt32(truncatingIfNeeded: generator.next())) : Float.random(in: -1...1, using: &generator) * 0x1p-12
    }.filter { !$0.isNaN }
}()

@Suite("Storage formats")
struct StorageFormatTests {
    #if !(os(macOS) && arch(x86_64))
    @Test("fp16 rounding is Swift's Float16 conversion: boundaries, ties to even, subnormals, overflow, random bit patterns")
    func float16() {
        for x in boundaryValues + randomValues {
            let expected = Float(Float16(x))
            let actual = StorageFormat.float16.round(x)
            #expect(actual.bitPattern == expected.bitPattern, "\(x): \(actual) vs Float16's \(expected)")
        }
    }
    #endif

    @Test("fp16's known values: 65504 is the largest, 65520 overflows, 2^-24 is the smallest, 2^-25 ties to 0, ties go to even")
    func float16KnownValues() {
        let f = StorageFormat.float16
        #expect(f.round(65504) == 65504 && f.round(65519.996) == 65504 && f.round(65520) == .infinity && f.round(-65520) == -.infinity)
        #expect(f.round(0x1p-24) == 0x1p-24 && f.round(0x1p-25) == 0 && f.round(0x1p-25 + 0x1p-40) == 0x1p-24)
        #expect(f.round(-0x1p-26).sign == .minus && f.round(-0x1p-26) == 0)
        // Subnormal ties: 3·2^-25 lies between 2^-24 (odd) and 2^-23 (even).
        #expect(f.round(3 * 0x1p-25) == 0x1p-23 && f.round(1.5 * 0x1p-24) == 0x1p-23)
        // Normal ties: fp16's step at 1 is 2^-10.
        #expect(f.round(1 + 0x1p-11) == 1 && f.round(1 + 3 * 0x1p-11) == 1 + 0x1p-9)
        #expect(f.round(0.1) == 0.0999755859375 && f.round(.nan).isNaN)
    }

    @Test("bfloat16 rounding is the nearer of the two neighbours (ties to even); it keeps FP32's range")
    func bfloat16() {
        for x in boundaryValues + randomValues {
            let expected = bfloat16Reference(x), actual = StorageFormat.bfloat16.round(x)
            #expect(actual.bitPattern == expected.bitPattern, "\(x): \(actual) vs \(expected)")
        }
        let b = StorageFormat.bfloat16
        #expect(b.round(1 + 0x1p-8) == 1 && b.round(1 + 3 * 0x1p-8) == 1 + 0x1p-6 && b.round(.greatestFiniteMagnitude) == .infinity)
        #expect(b.round(1e-30) != 0 && b.round(0x1p-25) == 0x1p-25 && b.round(.nan).isNaN)
    }

    @Test("stored(as:) rounds its output and the gradient that flows back through it")
    func recordedOp() throws {
        for format in StorageFormat.allCases {
            let x = Parameter(Tensor(shape: [4], scalars: [0.1, 1e-9, 70000, -3.14159]), name: "x")
            let c = Tensor(shape: [4], scalars: [1e-8, 0.3, 2e-9, 123.456])
            let y = x.value.stored(as: format)
            #expect(y.scalars == x.value.scalars.map(format.round))
            (y * c).sum().backward()
            // d/dx of sum(round(x) · c) as stored: c, rounded to the format.
            #expect(try #require(x.gradient).scalars == c.scalars.map(format.round), "\(format)")
        }
    }

    @Test("the StorageRounding layer is the op: forward and backward rounded, no parameters, a description")
    func layer() throws {
        let x = Parameter(Tensor(shape: [2, 2], scalars: [0.1, 1e-9, 2, -7e4]), name: "x")
        let layer = StorageRounding(.float16)
        let y = layer(x.value)
        #expect(y.scalars == [0.0999755859375, 0, 2, -.infinity] && layer.parameters.isEmpty)
        (y * Tensor(shape: [2, 2], scalars: [1e-8, 1, 1, 0])).sum().backward()
        #expect(try #require(x.gradient).scalars == [0, 1, 1, 0] && layer.description == "StorageRounding(.float16)")
    }
}
