// Data sets, loaders, splits and standardization.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// An IDX file: magic, big-endian dimensions, then `payload`.
func idxBytes(type: UInt8, shape: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(shape.count)]
    for d in shape { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
    return bytes + payload
}

func parseCSV(_ text: String, labelColumn: Int = -1, hasHeader: Bool? = nil, regression: Bool = false, classCount: Int? = nil) throws -> Dataset {
    try Dataset.parseCSV(Array(text.utf8), file: "t.csv", labelColumn: labelColumn, hasHeader: hasHeader, regression: regression, classCount: classCount)
}

@Suite("Data sets")
struct DataTests {
    @Test("the embedded digits match scikit-learn's load_digits")
    func digits() {
        let data = Dataset.digits()
        #expect(data.features.shape == [1797, 64])
        #expect(data.classCount == 10)
        // np.bincount(load_digits().target), X.sum(), X[0] (scikit-learn 1.7.2).
        var counts = [Int](repeating: 0, count: 10)
        for label in data.labels! { counts[label] += 1 }
        #expect(counts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
        let pixels = data.features.scalars
        #expect(pixels.reduce(0.0) { $0 + Double($1) } == 561_718)
        #expect(Array(pixels[0..<64]).map { Int($0) } == [
            0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
            0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
        ])
        #expect(pixels.allSatisfy { $0 >= 0 && $0 <= 16 && $0 == $0.rounded() })
    }

    @Test("IDX files of every element type decode, big-endian")
    func idxTypes() throws {
        let bytes = try IDX.parse(idxBytes(type: 0x08, shape: [2, 3], payload: [0, 1, 2, 253, 254, 255]), file: "u8")
        #expect(bytes.shape == [2, 3] && bytes.scalars == [0, 1, 2, 253, 254, 255])
        let signed = try IDX.parse(idxBytes(type: 0x09, shape: [2], payload: [0x7F, 0x80]), file: "i8")
        #expect(signed.scalars == [127, -128])
        let short = try IDX.parse(idxBytes(type: 0x0B, shape: [2], payload: [0x01, 0x02, 0xFF, 0xFE]), file: "i16")
        #expect(short.scalars == [258, -2])
        let int = try IDX.parse(idxBytes(type: 0x0C, shape: [1], payload: [0xFF, 0xFF, 0xFF, 0xFD]), file: "i32")
        #expect(int.scalars == [-3])
        let float = try IDX.parse(idxBytes(type: 0x0D, shape: [1], payload: [0x3F, 0xC0, 0x00, 0x00]), file: "f32")
        #expect(float.scalars == [1.5])
        let double = try IDX.parse(idxBytes(type: 0x0E, shape: [1], payload: [0xC0, 0x04, 0, 0, 0, 0, 0, 0]), file: "f64")
        #expect(double.scalars == [-2.5])
    }

    @Test("malformed IDX files throw, naming the file and byte offset")
    func idxErrors() {
        let cases: [([UInt8], Int)] = [
            ([0, 0], 2),                                                        // inside the magic number
            ([1, 0, 8, 1, 0, 0, 0, 1, 5], 0),                                   // magic does not start with zeros
            ([0, 0, 0x42, 1, 0, 0, 0, 1, 5], 2),                                // unknown type
            ([0, 0, 8, 0], 3),                                                  // zero dimensions
            ([0, 0, 8, 2, 0, 0, 0, 1, 0], 9),                                   // ends inside the dimensions
            (idxBytes(type: 8, shape: [2, 2], payload: [1, 2, 3]), 15),         // one data byte short
            (idxBytes(type: 8, shape: [2], payload: [1, 2, 3]), 10),            // one byte too many
            (idxBytes(type: 0x0D, shape: [1], payload: [0x7F, 0xC0, 0, 0]), 8), // NaN
        ]
        for (bytes, offset) in cases {
            #expect(throws: DataError.self) { try IDX.parse(bytes, file: "bad.idx") }
            do {
                _ = try IDX.parse(bytes, file: "bad.idx")
            } catch let DataError.malformed(file, at, _) {
                #expect(file == "bad.idx" && at == offset, "\(bytes): offset \(at), expected \(offset)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test("an IDX image and label pair loads as a scaled classification set")
    func idxPair() throws {
        let directory = try temporaryDirectory()
        let images = directory + "/images.idx", labels = directory + "/labels.idx"
        try FileIO.writeAtomically(idxBytes(type: 8, shape: [3, 2, 2], payload: Array(0..<12).map { UInt8($0 * 20) }), to: images).get()
        try FileIO.writeAtomically(idxBytes(type: 8, shape: [3], payload: [2, 0, 1]), to: labels).get()
        let data = try Dataset.idx(images: images, labels: labels)
        #expect(data.features.shape == [3, 4] && data.labels == [2, 0, 1] && data.classCount == 3)
        expectClose(data.features.scalars, Array(0..<12).map { Float($0 * 20) / 255 }, relative: 1e-6)
        try FileIO.writeAtomically(idxBytes(type: 8, shape: [2], payload: [0, 1]), to: labels).get()
        #expect(throws: DataError.countMismatch(features: 3, targets: 2)) { try Dataset.idx(images: images, labels: labels) }
        try FileIO.writeAtomically(idxBytes(type: 8, shape: [3], payload: [0, 1, 10]), to: labels).get()
        // Byte 10: the third label, after the 8-byte header of a rank-1 file.
        #expect(throws: DataError.malformed(file: labels, offset: 10, reason: "label 10 is out of range 0..<10 (the class count given)")) {
            try Dataset.idx(images: images, labels: labels, classCount: 10)
        }
        #expect(throws: DataError.self) { try Dataset.idx(images: directory + "/missing.idx", labels: labels) }
    }

    @Test("CSV: header detection, label column, CRLF, regression targets")
    func csv() throws {
        let data = try parseCSV("a,b,label\r\n1,2,0\r\n3, 4 ,1\r\n\r\n")
        #expect(data.features.scalars == [1, 2, 3, 4] && data.labels == [0, 1])
        let first = try parseCSV("2,1.5,-1\n0,0.5,3\n", labelColumn: 0)
        #expect(first.features.scalars == [1.5, -1, 0.5, 3] && first.labels == [2, 0] && first.classCount == 3)
        let regression = try parseCSV("x,y\n1,0.25\n2,-0.5\n", regression: true)
        #expect(regression.targetValues?.scalars == [0.25, -0.5] && regression.features.shape == [2, 1])
        let headerless = try parseCSV("1,0\n2,1\n", hasHeader: false)
        #expect(headerless.count == 2)
    }

    @Test("bad CSV fields throw with the file, row and column")
    func csvErrors() {
        let cases: [(String, Int, Int)] = [
            ("a,b\n1,0\n2,x\n", 3, 2),        // not a number
            ("a,b\n1,0\n2\n", 3, 2),          // missing field
            ("a,b\n1,0\n2,0,5\n", 3, 3),      // extra field
            ("a,b\n1,0\n2,0.5\n", 3, 2),      // label not an integer
            ("a,b\n1,0\n2,-1\n", 3, 2),       // negative label
            ("a,b\n1,0\nnan,1\n", 3, 1),      // NaN
            ("a,b\n1,0\ninf,1\n", 3, 1),      // infinity
            ("a,b\n", 1, 1),                  // no data rows
        ]
        for (text, row, column) in cases {
            do {
                _ = try parseCSV(text)
                Issue.record("no error for \(text)")
            } catch let DataError.badField(file, r, c, _) {
                #expect(file == "t.csv" && r == row && c == column, "\(text): row \(r) column \(c)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        do {
            _ = try parseCSV("a,b\n1,0\n2,7\n", classCount: 5)
            Issue.record("no error for a label out of range")
        } catch let DataError.badField(_, row, column, reason) {
            #expect(row == 3 && column == 2 && reason.contains("out of range"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("data sets validate counts, labels and finiteness")
    func validation() {
        let x = Tensor(shape: [2, 2], scalars: [1, 2, 3, .nan])
        #expect(throws: DataError.nonFinite(row: 1, column: 1)) { try Dataset(features: x, labels: [0, 1]) }
        #expect(throws: DataError.countMismatch(features: 2, targets: 3)) {
            try Dataset(features: Tensor(zeros: [2, 2]), labels: [0, 1, 0])
        }
        #expect(throws: DataError.labelOutOfRange(row: 1, label: 3, classCount: 3)) {
            try Dataset(features: Tensor(zeros: [2, 2]), labels: [0, 3], classCount: 3)
        }
        #expect(throws: DataError.nonFinite(row: 0, column: 0)) {
            try Dataset(features: Tensor(zeros: [1, 2]), targets: Tensor(shape: [1, 1], scalars: [.infinity]))
        }
    }

    @Test("splits are disjoint and complete; stratified splits keep the class balance")
    func splits() throws {
        let data = Dataset.digits()
        for stratified in [false, true] {
            let parts = try data.split([0.7, 0.1, 0.2], seed: 3, stratified: stratified)
            #expect(parts.map(\.count).reduce(0, +) == data.count)
            // Disjoint and complete: every image appears exactly once (compare rows as keys).
            var seen: [[Float]: Int] = [:]
            for row in 0..<data.count { seen[Array(data.features.scalars[row * 64..<(row + 1) * 64]), default: 0] += 1 }
            for part in parts {
                for row in 0..<part.count { seen[Array(part.features.scalars[row * 64..<(row + 1) * 64]), default: 0] -= 1 }
            }
            #expect(seen.values.allSatisfy { $0 == 0 })
            if stratified {
                for part in parts {
                    var counts = [Int](repeating: 0, count: 10)
                    for label in part.labels! { counts[label] += 1 }
                    let share = Double(part.count) / Double(data.count)
                    let expected = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180].map { Double($0) * share }
                    for (c, e) in zip(counts, expected) { #expect(Swift.abs(Double(c) - e) <= 1, "\(counts) vs \(expected)") }
                }
            }
        }
        #expect(try data.split([0.5, 0.5], seed: 1).map(\.labels) == data.split([0.5, 0.5], seed: 1).map(\.labels))
        #expect(throws: DataError.self) { try data.split([0.9, 0.2]) }
        #expect(throws: DataError.self) { try data.split([0.5, 0, 0.5]) }
        #expect(throws: DataError.self) { try Dataset.sine().split([0.5, 0.5], stratified: true) }
    }

    @Test("batches cover every example once, in a seeded order")
    func batches() {
        let data = Dataset.xor(copies: 5)
        var generator: SeededGenerator? = SeededGenerator(seed: 9)
        let batches = data.batches(size: 6, shuffledBy: &generator)
        #expect(batches.map(\.count) == [6, 6, 6, 2])
        var none: SeededGenerator? = nil
        #expect(data.batches(size: 20, shuffledBy: &none)[0].labels == data.labels)
        func row(_ features: Tensor, _ labels: [Int], _ i: Int) -> [Float] { Array(features.scalars[i * 2..<i * 2 + 2]) + [Float(labels[i])] }
        let rows = batches.flatMap { b in (0..<b.count).map { row(b.features, b.labels!, $0) } }
        let original = (0..<data.count).map { row(data.features, data.labels!, $0) }
        #expect(rows.sorted { $0.lexicographicallyPrecedes($1) } == original.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(rows != original, "a seeded shuffle of 20 examples left them in order")
    }

    @Test("standardization uses training statistics; constant features are only centered")
    func standardizer() throws {
        let train = try Dataset(features: Tensor(shape: [4, 2], scalars: [1, 5, 2, 5, 3, 5, 6, 5]), labels: [0, 1, 0, 1])
        let standardizer = Standardizer(fitting: train)
        // Column 0: mean 3, population variance (4 + 1 + 0 + 9) / 4 = 3.5.
        expectClose(standardizer.mean.scalars, [3, 5], relative: 1e-6)
        expectClose(standardizer.standardDeviation.scalars, [Float(3.5).squareRoot(), 1], relative: 1e-6)
        let test = try Dataset(features: Tensor(shape: [1, 2], scalars: [10, 7]), labels: [1])
        expectClose(try standardizer.transform(test).features.scalars, [7 / Float(3.5).squareRoot(), 2], relative: 1e-6)
        #expect(try standardizer.transform(test).labels == [1])
    }

    @Test("synthetic data sets have the documented structure")
    func synthetic() {
        let xor = Dataset.xor()
        #expect(xor.features.scalars == [0, 0, 0, 1, 1, 0, 1, 1] && xor.labels == [0, 1, 1, 0])
        let spirals = Dataset.twoSpirals(countPerClass: 50, noise: 0)
        #expect(spirals.count == 100 && spirals.labels!.filter { $0 == 1 }.count == 50)
        // Examples alternate between the classes, and the two spirals are point reflections of each other.
        let s = spirals.features.scalars
        for i in 0..<50 {
            #expect(spirals.labels![2 * i] == 0 && spirals.labels![2 * i + 1] == 1)
            expectClose([s[4 * i + 2], s[4 * i + 3]], [-s[4 * i], -s[4 * i + 1]], absolute: 1e-6)
        }
        let circles = Dataset.circles(count: 200, factor: 0.5, noise: 0)
        for i in 0..<circles.count {
            let c = circles.features.scalars
            let radius = (c[2 * i] * c[2 * i] + c[2 * i + 1] * c[2 * i + 1]).squareRoot()
            #expect(Swift.abs(radius - (circles.labels![i] == 1 ? 0.5 : 1)) < 1e-5)
        }
        let adding = Dataset.addingProblem(count: 20, length: 10, seed: 4)
        #expect(adding.features.shape == [20, 10, 2])
        let x = adding.features.scalars, y = adding.targetValues!.scalars
        for i in 0..<20 {
            var sum: Float = 0, markers = 0
            for t in 0..<10 where x[(i * 10 + t) * 2 + 1] == 1 {
                sum += x[(i * 10 + t) * 2]
                markers += 1
            }
            #expect(markers == 2 && sum == y[i])
        }
        let sine = Dataset.sine(count: 64, noise: 0)
        let f = sine.features.scalars, t = sine.targetValues!.scalars
        for i in 0..<64 { #expect(Swift.abs(t[i] - Float(sin(Double(f[i])))) < 1e-5) }
    }

    @Test("random and truncated bytes never crash a loader: they throw or parse")
    func fuzz() throws {
        var generator = SeededGenerator(seed: 77)
        let validIDX = idxBytes(type: 0x0D, shape: [2, 3], payload: (0..<6).flatMap { i -> [UInt8] in
            let bits = Float(i).bitPattern
            return [UInt8(bits >> 24), UInt8(bits >> 16 & 255), UInt8(bits >> 8 & 255), UInt8(bits & 255)]
        })
        let validCSV = Array("f1,f2,label\n0.5,1e3,1\n-2,3,0\n".utf8)
        let validSafeTensors = SafeTensors.encode(["a.weight": Tensor(shape: [2, 2], scalars: [1, 2, 3, 4]), "b": Tensor(7)], metadata: ["k": "v"])
        // Every proper prefix of a valid IDX or safetensors file is an error.
        for length in 0..<validIDX.count {
            #expect(throws: DataError.self) { try IDX.parse(Array(validIDX[..<length]), file: "cut.idx") }
        }
        for length in 0..<validSafeTensors.count {
            #expect(throws: CheckpointError.self) { try SafeTensors.decode(Array(validSafeTensors[..<length]), file: "cut.safetensors") }
        }
        for length in 0..<validCSV.count { _ = try? Dataset.parseCSV(Array(validCSV[..<length]), file: "cut.csv", labelColumn: -1, hasHeader: nil, regression: false, classCount: nil) }
        // Random bytes, and valid files with random bytes flipped.
        for trial in 0..<3000 {
            let length = Int.random(in: 0..<80, using: &generator)
            var noise = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            if trial % 3 == 0, noise.count >= 4 { noise[0] = 0; noise[1] = 0; noise[2] = [8, 9, 0x0B, 0x0C, 0x0D, 0x0E][trial % 6]; noise[3] = UInt8(trial % 4) }
            _ = try? IDX.parse(noise, file: "noise")
            _ = try? SafeTensors.decode(noise, file: "noise")
            _ = try? Dataset.parseCSV(noise, file: "noise", labelColumn: -1, hasHeader: nil, regression: trial % 2 == 0, classCount: nil)
            for valid in [validIDX, validCSV, validSafeTensors] {
                var mutated = valid
                for _ in 0..<(1 + trial % 4) { mutated[Int.random(in: 0..<mutated.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
                _ = try? IDX.parse(mutated, file: "mutated")
                _ = try? SafeTensors.decode(mutated, file: "mutated")
                _ = try? Dataset.parseCSV(mutated, file: "mutated", labelColumn: 0, hasHeader: nil, regression: false, classCount: 4)
            }
        }
    }
}
