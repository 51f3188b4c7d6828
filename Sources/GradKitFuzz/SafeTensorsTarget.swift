// GradKit — fuzz target: safetensors files and the checkpoints they hold. SPDX-License-Identifier: MIT
import GradKit

/// Decodes the input as a safetensors file; what decodes must re-encode to
/// the same tensors and metadata, is read as a checkpoint, and a checkpoint
/// is restored into a small trainer, whose own checkpoint must validate.
enum SafeTensorsTarget {
    static func run(_ bytes: [UInt8]) {
        guard let (tensors, metadata) = try? SafeTensors.decode(bytes, file: "input") else { return }
        roundTrip(tensors, metadata)
        guard let checkpoint = try? Checkpoint(tensors: tensors, metadata: metadata, file: "input") else { return }
        do { try checkpoint.validate(file: "input") } catch { require(false, "a checkpoint read from a file fails validation: \(error)") }
        restore(checkpoint)
    }

    /// `encode` then `decode` gives back every tensor bit for bit (GradKit
    /// writes F32, the exact image of every type it reads) and the metadata.
    private static func roundTrip(_ tensors: [String: Tensor], _ metadata: [String: String]) {
        let encoded = SafeTensors.encode(tensors, metadata: metadata)
        let decoded: (tensors: [String: Tensor], metadata: [String: String])
        do { decoded = try SafeTensors.decode(encoded, file: "re-encoded") } catch {
            fatalError("fuzz property violated: a decoded file re-encodes to one that does not decode: \(error)")
        }
        require(decoded.metadata == metadata, "the metadata changed in a round trip")
        require(decoded.tensors.keys.sorted() == tensors.keys.sorted(), "the tensor names changed in a round trip")
        for (name, tensor) in tensors { require(identical(decoded.tensors[name]!, tensor), "tensor \(name) changed in a round trip") }
    }

    /// Restores into ``model()`` with an optimizer of the checkpoint's kind,
    /// as `gradkit train --resume` does; a restored trainer's checkpoint
    /// must pass the validation a file's does.
    private static func restore(_ checkpoint: Checkpoint) {
        let model = Self.model()
        let trainer = Trainer(model: model, optimizer: optimizer(kind: checkpoint.optimizer?.kind, model), loss: .softmaxCrossEntropy)
        guard (try? trainer.restore(checkpoint, file: "input")) != nil else { return }
        do { try trainer.checkpoint().validate(file: "restored") } catch {
            require(false, "the checkpoint of a restored trainer fails validation: \(error)")
        }
    }

    /// The model checkpoints are restored into (and the seed checkpoints
    /// written from), the same at every call: parameters, a dropout
    /// generator, two parameter groups.
    static func model() -> Sequential {
        withManualSeed(1) {
            Sequential([Linear(inputSize: 3, outputSize: 4), ReLU(), Dropout(probability: 0.25, seed: 1), Linear(inputSize: 4, outputSize: 2)])
        }
    }

    /// An optimizer of `kind` (Adam for none or an unknown kind) with one
    /// group per linear layer.
    static func optimizer(kind: String?, _ model: Sequential) -> Optimizer {
        let groups = [ParameterGroup(model.layers[0].parameters), ParameterGroup(model.layers[3].parameters, learningRate: 0.01)]
        switch kind {
        case "SGD": return SGD(groups, learningRate: 0.1, momentum: 0.9)
        case "AdaGrad": return AdaGrad(groups)
        case "RMSprop": return RMSprop(groups, centered: true)
        case "AdamW": return AdamW(groups)
        default: return Adam(groups, amsgrad: true)
        }
    }
}
