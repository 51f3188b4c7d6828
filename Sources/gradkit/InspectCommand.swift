// gradkit inspect — list a checkpoint's contents. SPDX-License-Identifier: MIT
import GradKit

/// Runs `gradkit inspect FILE`: each tensor's name, shape and norm, then the metadata.
func inspectCommand(_ arguments: ParsedArguments) throws {
    let (tensors, metadata) = try SafeTensors.read(arguments.operands[0])
    for name in tensors.keys.sorted() {
        let tensor = tensors[name]!
        let norm = tensor.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        print("\(name)  \(tensor.shape)  norm \(norm)")
    }
    for key in metadata.keys.sorted() { print("\(key) = \(metadata[key]!)") }
}
