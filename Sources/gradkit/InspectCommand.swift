// gradkit inspect — list a checkpoint's contents. SPDX-License-Identifier: MIT
import GradKit

/// Runs `gradkit inspect FILE`: each tensor's name, shape and norm, then the
/// metadata, with control characters escaped so that a file cannot steer the terminal.
func inspectCommand(_ arguments: ParsedArguments) throws {
    let (tensors, metadata) = try SafeTensors.read(arguments.operands[0])
    for name in tensors.keys.sorted() {
        let tensor = tensors[name]!
        let norm = tensor.withUnsafeBufferPointer { $0.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
        print("\(name.escapingControlCharacters)  \(tensor.shape)  norm \(norm)")
    }
    for key in metadata.keys.sorted() { print("\(key.escapingControlCharacters) = \(metadata[key]!.escapingControlCharacters)") }
}
