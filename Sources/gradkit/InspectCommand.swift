// gradkit inspect — list a checkpoint's contents. SPDX-License-Identifier: MIT
import GradKit

let inspectUsage = """
    usage: gradkit inspect FILE.safetensors

    Prints each tensor's name, shape and L2 norm, then the metadata. Names and
    values are printed with control characters escaped (\\n, \\u{1B}), so a file
    cannot steer the terminal.
    """

/// Runs `gradkit inspect FILE`: each tensor's name, shape and norm, then the metadata.
func inspect(_ commandLine: [String]) throws {
    if commandLine.contains("--help") || commandLine.contains("-h") {
        print(inspectUsage)
        return
    }
    guard commandLine.count == 1, !commandLine[0].hasPrefix("--") else { throw UsageError("usage: gradkit inspect FILE.safetensors") }
    let (tensors, metadata) = try SafeTensors.read(commandLine[0])
    for name in tensors.keys.sorted() {
        let tensor = tensors[name]!
        let norm = tensor.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
        print("\(name.escapingControlCharacters)  \(tensor.shape)  norm \(norm)")
    }
    for key in metadata.keys.sorted() { print("\(key.escapingControlCharacters) = \(metadata[key]!.escapingControlCharacters)") }
}
