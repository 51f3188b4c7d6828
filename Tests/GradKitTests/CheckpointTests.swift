// safetensors files, checkpoints and resuming training.
import Testing
#if canImport(Glibc)
import Glibc
#endif

@testable import GradKit

/// A safetensors file from a header JSON text and data bytes.
func safeTensorsBytes(header: String, data: [UInt8]) -> [UInt8] {
    let h = Array(header.utf8)
    var length = UInt64(h.count)
    var out: [UInt8] = []
    for _ in 0..<8 {
        out.append(UInt8(length & 0xFF))
        length >>= 8
    }
    return out + h + data
}

/// GradKit's twin of the fixture's `nn.Sequential(Linear(5, 8), BatchNorm1d(8), Tanh(), Linear(8, 3))`.
func fixtureModel() -> Sequential {
    Sequential([Linear(inputSize: 5, outputSize: 8), BatchNorm(featureCount: 8), Tanh(), Linear(inputSize: 8, outputSize: 3)])
}

@Suite("safetensors and checkpoints")
struct CheckpointTests {
    @Test("encode then decode gives the same tensors bit for bit, and the header follows the format")
    func roundTrip() throws {
        let special: [Float] = [0, -0.0, 1, -1.5, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .ulpOfOne]
        let tensors: [String: Tensor] = [
            "a.weight": randomTensor([3, 4], seed: 1), "scalar": Tensor(2.5), "special": Tensor(shape: [9], scalars: special),
            "empty": Tensor(shape: [0, 3], scalars: []),
        ]
        let bytes = SafeTensors.encode(tensors, metadata: ["format": "pt", "note": "ünïcode \"quoted\""])
        let (decoded, metadata) = try SafeTensors.decode(bytes, file: "mem")
        #expect(metadata == ["format": "pt", "note": "ünïcode \"quoted\""])
        #expect(Set(decoded.keys) == Set(tensors.keys))
        for (name, tensor) in tensors {
            #expect(decoded[name]!.shape == tensor.shape)
            expectIdentical(decoded[name]!.scalars, tensor.scalars, name)
        }
        // The header length is little-endian, the data starts at a multiple of 8, F32 throughout.
        let length = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
        #expect((8 + length) % 8 == 0)
        let header = try JSON.parse(String(decoding: bytes[8..<(8 + length)], as: UTF8.self))
        #expect(header.objectValue?["a.weight"]?.objectValue?["dtype"]?.stringValue == "F32")
    }

    @Test("other dtypes convert to Float: F64, F16, BF16, I64, I32, U8, BOOL")
    func dtypes() throws {
        let header = """
            {"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"h":{"dtype":"F16","shape":[2],"data_offsets":[8,12]},\
            "b":{"dtype":"BF16","shape":[1],"data_offsets":[12,14]},"l":{"dtype":"I64","shape":[],"data_offsets":[14,22]},\
            "i":{"dtype":"I32","shape":[1],"data_offsets":[22,26]},"u":{"dtype":"U8","shape":[1],"data_offsets":[26,27]},\
            "t":{"dtype":"BOOL","shape":[1],"data_offsets":[27,28]}}
            """
        let data: [UInt8] = [0, 0, 0, 0, 0, 0, 0xF8, 0x3F] + [0x00, 0x3C, 0x00, 0xC0] + [0x40, 0x40]
            + [0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + [7, 0, 0, 0] + [200] + [1]
        let (t, _) = try SafeTensors.decode(safeTensorsBytes(header: header, data: data), file: "mem")
        #expect(t["d"]!.scalars == [1.5] && t["h"]!.scalars == [1, -2] && t["b"]!.scalars == [3])
        #expect(t["l"]!.scalars == [-2] && t["l"]!.shape == [] && t["i"]!.scalars == [7] && t["u"]!.scalars == [200] && t["t"]!.scalars == [1])
    }

    @Test("malformed safetensors files throw, naming the byte offset")
    func malformed() {
        let ok = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let cases: [([UInt8], String)] = [
            ([1, 2, 3], "header length"),
            (safeTensorsBytes(header: ok, data: [0, 0, 0]), "outside"),                  // data cut short
            (safeTensorsBytes(header: ok, data: [0, 0, 0, 0, 9]), "trailing"),           // a byte too many
            (safeTensorsBytes(header: "{\"a\":", data: []), "JSON"),
            (safeTensorsBytes(header: "[1]", data: []), "not a JSON object"),
            (safeTensorsBytes(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "needs 8 bytes"),
            (safeTensorsBytes(header: #"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "invalid dimension"),
            (safeTensorsBytes(header: #"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]), "lacks"),
            (safeTensorsBytes(
                header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#,
                data: [UInt8](repeating: 0, count: 6)), "overlaps"),
            (safeTensorsBytes(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, data: [UInt8](repeating: 0, count: 8)), "hole"),
            (safeTensorsBytes(header: #"{"__metadata__":{"k":1}}"#, data: []), "not a string"),
        ]
        for (bytes, reason) in cases {
            do {
                _ = try SafeTensors.decode(bytes, file: "bad.safetensors")
                Issue.record("no error for case '\(reason)'")
            } catch let CheckpointError.malformed(file, offset, message) {
                #expect(file == "bad.safetensors" && offset >= 0 && offset <= bytes.count)
                #expect(message.contains(reason), "'\(message)' should mention '\(reason)'")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
        #expect(throws: CheckpointError.unsupportedType(file: "f8", tensor: "a", dtype: "F8_E4M3")) {
            try SafeTensors.decode(safeTensorsBytes(header: #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#, data: [0]), file: "f8")
        }
        #expect(throws: CheckpointError.self) { try SafeTensors.read("/nonexistent/x.safetensors") }
    }

    @Test("a PyTorch nn.Sequential state dict loads and gives the same outputs")
    func pytorchFixture() throws {
        let model = fixtureModel()
        let checkpoint = try Checkpoint.read(from: fixturePath("safetensors/torch_sequential.safetensors"))
        #expect(Set(checkpoint.model.keys) == Set(model.stateDictionary().keys))
        #expect(checkpoint.optimizer == nil && checkpoint.epoch == 0)
        try checkpoint.load(into: model)
        #expect(model.stateDictionary()["1.num_batches_tracked"]!.scalars == [3])
        model.isTraining = false
        let (io, _) = try SafeTensors.read(fixturePath("safetensors/torch_sequential_io.safetensors"))
        let output = withoutGradients { model(io["input"]!) }
        expectClose(output.scalars, io["output"]!.scalars, relative: 1e-5, absolute: 1e-6)
    }

    @Test("GradKit's checkpoint loads into PyTorch (files for safetensors_fixture.py check)")
    func exportForPyTorch() throws {
        let model = withManualSeed(5) { fixtureModel() }
        model.isTraining = true
        withoutGradients { _ = model(randomTensor([16, 5], seed: 3, in: -2...2)) }  // running statistics
        for p in model.parameters where p.name.hasPrefix("1.") { p.value = randomTensor(p.shape, seed: 8, in: 0.5...1.5) }
        model.isTraining = false
        let input = randomTensor([4, 5], seed: 4)
        let output = withoutGradients { model(input) }
        let directory = try getenv("GRADKIT_EXPORT_DIR").map { String(cString: $0) } ?? temporaryDirectory()
        mkdir(directory, 0o755)
        try Checkpoint(model: model.stateDictionary()).write(to: directory + "/model.safetensors")
        try SafeTensors.write(["input": input, "output": output], to: directory + "/io.safetensors")
        // What PyTorch's loader requires, checked here too: exact names, shapes, F32 data.
        let (tensors, metadata) = try SafeTensors.read(directory + "/model.safetensors")
        #expect(Set(tensors.keys) == Set(["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "3.weight", "3.bias"]))
        #expect(metadata["format"] == Checkpoint.format)
        let reloaded = fixtureModel()
        try Checkpoint.read(from: directory + "/model.safetensors").load(into: reloaded)
        reloaded.isTraining = false
        expectIdentical(withoutGradients { reloaded(input) }.scalars, output.scalars)
    }

    @Test("loading checks names and shapes both ways and changes nothing on error")
    func loadErrors() throws {
        let model = fixtureModel()
        let before = model.stateDictionary()
        var state = before.mapValues { $0 + 1 }
        state["0.weight"] = nil
        #expect(throws: CheckpointError.missingTensor(file: "f", tensor: "0.weight")) { try Checkpoint(model: state).load(into: model, file: "f") }
        state = before.mapValues { $0 + 1 }
        state["9.weight"] = Tensor(1)
        #expect(throws: CheckpointError.unexpectedTensor(file: "f", tensor: "9.weight")) { try Checkpoint(model: state).load(into: model, file: "f") }
        state = before.mapValues { $0 + 1 }
        state["3.bias"] = Tensor(zeros: [4])
        #expect(throws: CheckpointError.shapeMismatch(file: "f", tensor: "3.bias", expected: [3], found: [4])) {
            try Checkpoint(model: state).load(into: model, file: "f")
        }
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
    }

    @Test("checkpoint files keep optimizer state, counters, generators and configuration")
    func checkpointRoundTrip() throws {
        let model = withManualSeed(1) { MLP(sizes: [4, 6, 2], dropout: 0.3) }
        let optimizer = Adam(model.parameters, learningRate: 0.01, weightDecay: 0.1, amsgrad: true)
        let x = randomTensor([8, 4], seed: 2)
        for _ in 0..<3 {
            softmaxCrossEntropy(logits: model(x), labels: [0, 1, 1, 0, 1, 0, 0, 1]).backward()
            optimizer.step()
            optimizer.zeroGradients()
        }
        let checkpoint = Checkpoint(
            model: model.stateDictionary(), optimizer: optimizer.exportState(), step: 3, epoch: 1,
            randomState: ["dropout:2": [1, 2, 3, UInt64.max]], configuration: ["command": "gradkit train --seed 1", "note": "{\"json\": true}"])
        let directory = try temporaryDirectory()
        try checkpoint.write(to: directory + "/c.safetensors")
        let read = try Checkpoint.read(from: directory + "/c.safetensors")
        #expect(read.step == 3 && read.epoch == 1 && read.randomState == checkpoint.randomState && read.configuration == checkpoint.configuration)
        #expect(read.optimizer == checkpoint.optimizer)
        #expect(Set(read.model.keys) == Set(checkpoint.model.keys))
        for (name, tensor) in checkpoint.model { expectIdentical(read.model[name]!.scalars, tensor.scalars, name) }
        // Only the target file is left behind: the temporary file was renamed over it.
        let listing = directoryEntries(directory)
        #expect(listing == ["c.safetensors"], "\(listing)")
        #expect(throws: CheckpointError.self) { try checkpoint.write(to: directory + "/missing/c.safetensors") }
    }

    @Test("training 4 epochs equals training 2, checkpointing, and resuming for 2 more, bit for bit")
    func resumeIsBitIdentical() throws {
        let data = try Dataset.digits().split([0.25, 0.75], seed: 2)[0]
        let validation = try Dataset.digits().split([0.1, 0.9], seed: 5)[0]
        func makeTrainer(seed: UInt64) -> Trainer {
            let model = withManualSeed(seed) { MLP(sizes: [64, 32, 32, 10], batchNorm: true, dropout: 0.2) }
            let options = TrainingOptions(
                epochs: 4, batchSize: 16, seed: 9, dropsLastBatch: true, clipping: .norm(1), schedule: .perEpoch(StepDecay(stepSize: 1, gamma: 0.7)), progress: .silent)
            return Trainer(model: model, optimizer: Adam(model.parameters, learningRate: 3e-3), loss: .softmaxCrossEntropy, options: options)
        }
        let straight = makeTrainer(seed: 4)
        let history = try straight.fit(data, validation: validation)

        let first = makeTrainer(seed: 4)
        first.options.epochs = 2
        try first.fit(data, validation: validation)
        let directory = try temporaryDirectory()
        try first.checkpoint().write(to: directory + "/resume.safetensors")
        let resumed = makeTrainer(seed: 99)  // different initial weights and dropout seeds: all must come from the file
        try resumed.restore(Checkpoint.read(from: directory + "/resume.safetensors"))
        #expect(resumed.completedEpochs == 2 && resumed.completedSteps == first.completedSteps)
        let rest = try resumed.fit(data, validation: validation)

        #expect(rest.epochs.map(\.loss) == Array(history.epochs.suffix(2).map(\.loss)))
        #expect(rest.epochs.map(\.validationLoss) == Array(history.epochs.suffix(2).map(\.validationLoss)))
        #expect(rest.steps.map(\.gradientNorm) == Array(history.steps.suffix(rest.steps.count).map(\.gradientNorm)))
        let a = straight.model.stateDictionary(), b = resumed.model.stateDictionary()
        #expect(Set(a.keys) == Set(b.keys))
        for (name, tensor) in a { expectIdentical(b[name]!.scalars, tensor.scalars, name) }
        #expect(straight.optimizer.exportState() == resumed.optimizer.exportState())
    }

    @Test("restoring a checkpoint for another optimizer throws and leaves the model as it was")
    func restoreIsAtomic() throws {
        let model = withManualSeed(3) { MLP(sizes: [4, 5, 2]) }
        let sgdState = SGD(model.parameters, learningRate: 0.1, momentum: 0.9).exportState()
        let trainer = Trainer(model: model, optimizer: Adam(model.parameters), loss: .softmaxCrossEntropy)
        let before = model.stateDictionary()
        let other = before.mapValues { $0 * 2 }
        #expect(throws: OptimizerStateError.wrongOptimizer(expected: "Adam", found: "SGD")) {
            try trainer.restore(Checkpoint(model: other, optimizer: sgdState, step: 5, epoch: 1))
        }
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
        #expect(trainer.completedEpochs == 0 && trainer.completedSteps == 0)
    }

    /// A valid checkpoint file's tensors and metadata (one parameter, Adam after one step), for tests to corrupt.
    private func validCheckpointParts() throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        let parameter = Parameter(Tensor(shape: [2], scalars: [1, 2]), name: "w")
        let optimizer = Adam([parameter], learningRate: 0.1)
        parameter.gradient = Tensor(shape: [2], scalars: [0.5, -0.5])
        optimizer.step()
        let checkpoint = Checkpoint(
            model: ["w": parameter.value], optimizer: optimizer.exportState(), step: 1, epoch: 1, randomState: ["shuffle": [1, 2, 3, 4]])
        let path = try temporaryDirectory() + "/valid.safetensors"
        try checkpoint.write(to: path)
        return try SafeTensors.read(path)
    }

    @Test("counts, generator states and hyperparameters from a file are bounded, and errors name the key")
    func boundedMetadata() throws {
        let (tensors, metadata) = try validCheckpointParts()
        let path = try temporaryDirectory() + "/bad.safetensors"
        #expect(metadata["optimizer.steps"] == "[1]" && metadata["random"] != nil)
        let cases: [(String, String, String)] = [
            ("step", "9223372036854775807", "step"), ("step", "9007199254740992", "step"), ("step", "-1", "step"),
            ("step", "18446744073709551616", "step"), ("step", "1e3", "step"), ("epoch", "9223372036854775807", "epoch"),
            ("optimizer.stepCount", "9223372036854775807", "optimizer.stepCount"),
            ("optimizer.steps", "[9007199254740992]", "optimizer.steps"), ("optimizer.steps", "[1e300]", "optimizer"),
            ("optimizer.groups", #"[{"params":[0],"lr":1e300,"beta1":0.9,"beta2":0.999,"eps":1e-8,"weight_decay":0,"amsgrad":0,"maximize":0}]"#, "optimizer.groups"),
            ("random", #"{"shuffle":["1","2","3"]}"#, "random"), ("random", #"{"shuffle":["0","0","0","0"]}"#, "random"),
            ("random", #"{"shuffle":["1","2","3","4","5"]}"#, "random"),
            ("random", "[" + String(repeating: "0,", count: SafeTensors.maximumHeaderValues) + "0]", "random"),  // too many values to parse
        ]
        for (key, value, reported) in cases {
            var corrupted = metadata
            corrupted[key] = value
            try SafeTensors.write(tensors, metadata: corrupted, to: path)
            do {
                _ = try Checkpoint.read(from: path)
                Issue.record("\(key) = \(value) was accepted")
            } catch let CheckpointError.badMetadata(file, key, reason) {
                #expect(file == path && key == reported, "\(key): \(reason)")
            }
        }
        // The largest count accepted: 2^53 - 1, so that += 1 stays exact and cannot overflow.
        var largest = metadata
        largest["step"] = "9007199254740991"
        try SafeTensors.write(tensors, metadata: largest, to: path)
        #expect(try Checkpoint.read(from: path).step == Checkpoint.countLimit - 1)
    }

    @Test("optimizer tensors of no parameter are refused, not dropped")
    func orphanOptimizerTensors() throws {
        let (tensors, metadata) = try validCheckpointParts()
        let path = try temporaryDirectory() + "/orphan.safetensors"
        for name in ["optimizer/1/exp_avg", "optimizer/01/exp_avg", "optimizer/x", "optimizer/-1/exp_avg"] {
            var extra = tensors
            extra[name] = Tensor(shape: [2], scalars: [0, 0])
            try SafeTensors.write(extra, metadata: metadata, to: path)
            #expect(throws: CheckpointError.self, "\(name)") { try Checkpoint.read(from: path) }
        }
        var withoutKind = metadata
        withoutKind["optimizer.kind"] = nil
        try SafeTensors.write(tensors, metadata: withoutKind, to: path)
        #expect(throws: CheckpointError.badMetadata(file: path, key: "optimizer.kind", reason: "missing, yet tensor 'optimizer/0/exp_avg' is optimizer state")) {
            try Checkpoint.read(from: path)
        }
    }

    @Test("a NaN or infinity in a model tensor or optimizer buffer is refused, naming tensor and element")
    func nonFiniteTensors() throws {
        let (tensors, metadata) = try validCheckpointParts()
        let path = try temporaryDirectory() + "/nan.safetensors"
        for (name, value) in [("w", Float.nan), ("optimizer/0/exp_avg_sq", Float.infinity), ("optimizer/0/exp_avg", -Float.infinity)] {
            var corrupted = tensors
            corrupted[name] = Tensor(shape: [2], scalars: [0.5, value])
            try SafeTensors.write(corrupted, metadata: metadata, to: path)
            #expect {
                try Checkpoint.read(from: path)
            } throws: { error in
                guard case .nonFinite(let file, let tensor, let element, let found) = error as? CheckpointError else { return false }
                return file == path && tensor == name && element == 1 && found.bitPattern == value.bitPattern
            }
        }
        // validate() is the same rule for a checkpoint built in memory.
        #expect(throws: CheckpointError.self) { try Checkpoint(model: ["w": Tensor(shape: [1], scalars: [.nan])]).validate() }
        #expect(throws: CheckpointError.self) { try Checkpoint(model: [:], step: -1).validate() }
        try Checkpoint(model: ["w": Tensor(shape: [1], scalars: [.greatestFiniteMagnitude])], step: Checkpoint.countLimit - 1).validate()
    }

    @Test("a restored early-stopping counter from the file cannot overflow the next epoch")
    func restoredCountersCannotOverflow() throws {
        let data = Dataset.xor(copies: 4, noise: 0, seed: 1)
        let model = withManualSeed(1) { MLP(sizes: [2, 4, 2]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: 8, earlyStopping: EarlyStopping(patience: 5), progress: .silent))
        var checkpoint = trainer.checkpoint()
        checkpoint.configuration["trainer.epochsWithoutImprovement"] = String(Int.max)
        checkpoint.configuration["trainer.bestLoss"] = "-1"  // no epoch improves on it
        checkpoint.epoch = 1
        try trainer.restore(checkpoint)
        let history = try trainer.fit(data)
        #expect(history.epochs.count == 1 && history.stoppedEarly != nil)
    }

    @Test("a best loss in the file that is not a loss (NaN, text, a number cut by a NUL) is refused, and nothing changes")
    func restoredBestLossChecked() throws {
        let model = withManualSeed(1) { MLP(sizes: [2, 4, 2]) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 1, batchSize: 8, progress: .silent))
        let before = model.stateDictionary()
        for text in ["nan", "-nan", "low", "0.5\u{0}junk", ""] {
            var checkpoint = trainer.checkpoint()
            checkpoint.configuration["trainer.bestLoss"] = text
            checkpoint.epoch = 3
            #expect(throws: CheckpointError.self, "\(text.debugDescription)") { try trainer.restore(checkpoint) }
            #expect(trainer.completedEpochs == 0)
        }
        for (name, tensor) in model.stateDictionary() { expectIdentical(tensor.scalars, before[name]!.scalars, name) }
        var checkpoint = trainer.checkpoint()
        checkpoint.configuration["trainer.bestLoss"] = "inf"  // what a checkpoint before the first epoch holds
        try trainer.restore(checkpoint)
    }
}

/// The names in a directory, sorted, without "." and "..".
func directoryEntries(_ path: String) -> [String] {
    guard let directory = opendir(path) else { return [] }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafePointer(to: entry.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        if name != "." && name != ".." { names.append(name) }
    }
    return names.sorted()
}
