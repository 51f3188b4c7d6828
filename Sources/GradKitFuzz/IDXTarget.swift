// GradKit — fuzz target: IDX files and image/label pairs. SPDX-License-Identifier: MIT
import GradKit

/// Parses the input as one IDX file, then as an images file followed by a
/// labels file and a last byte of options, through the path `Dataset.idx`
/// takes.
enum IDXTarget {
    static func run(_ bytes: [UInt8]) {
        if let tensor = try? IDX.parse(bytes, file: "input") {
            require(tensor.scalars.allSatisfy(\.isFinite), "IDX.parse returned a value that is not finite")
        }
        guard let options = bytes.last else { return }
        let files = bytes.dropLast()
        let split = files.startIndex + imagesLength(files)
        let scale: Float = [1.0 / 255, 1, 3e38, -1e-30][Int(options & 3)]
        let classCount: Int? = [nil, 10, 1, 1_000_000][Int(options >> 2 & 3)]
        guard let dataset = try? Dataset.parseIDX(
            images: Array(files[..<split]), imagesFile: "images", labels: Array(files[split...]), labelsFile: "labels",
            scale: scale, classCount: classCount)
        else { return }
        require(dataset.count > 0 && dataset.featureCount > 0, "an IDX data set with no examples or no features")
        require(dataset.features.scalars.allSatisfy(\.isFinite), "an IDX data set holds a value that is not finite")
        if let classCount { require(dataset.classCount == classCount, "the class count given was not kept") }
    }

    /// Where an images file at the start of `bytes` would end by its header
    /// (magic, type, rank, big-endian dimensions), clamped to the input: a
    /// concatenated images/labels pair splits where it was joined, anything
    /// else splits somewhere. This chooses the split; IDX.parse judges it.
    private static func imagesLength(_ bytes: ArraySlice<UInt8>) -> Int {
        let b = Array(bytes)
        guard b.count >= 4 else { return b.count }
        let size = [0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8][Int(b[2])] ?? 1
        var length = 4 + 4 * Int(b[3])
        guard length <= b.count else { return b.count }
        var elements = 1
        for d in 0..<Int(b[3]) {
            let o = 4 + 4 * d
            let dimension = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            elements = Swift.min(elements * dimension, b.count)
        }
        length += elements * size
        return Swift.min(length, b.count)
    }
}
