// GradKit — the generated seed inputs of the fuzz targets (`GradKitFuzz seeds Fuzz/corpus`). SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// Writes each target's generated seeds, small valid files made by GradKit
/// itself and the near misses of each rule, to `<directory>/<target>/`.
/// The committed corpus is this output plus files made by other programs
/// (PyTorch's safetensors), which `Fuzz/README.md` lists.
enum Seeds {
    static func write(to directory: String) {
        let all: [FuzzTarget: [String: [UInt8]]] = [.safetensors: safetensors(), .idx: idx(), .csv: csv(), .log: log(), .arguments: arguments()]
        for (target, files) in all {
            let folder = directory + "/" + target.rawValue
            if case .failure(let error) = FileIO.createDirectories(folder) { fail("\(folder): \(error.message)") }
            for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
                if case .failure(let error) = FileIO.writeAtomically(bytes, to: folder + "/" + name) { fail("\(name): \(error.message)") }
            }
            print("\(folder): \(files.count) seeds, \(files.values.map(\.count).reduce(0, +)) bytes")
        }
    }

    // MARK: safetensors

    static func safetensors() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for kind in ["SGD", "AdaGrad", "RMSprop", "Adam", "AdamW"] {
            files["gradkit-checkpoint-\(kind).safetensors"] = trainedCheckpoint(kind: kind)
        }
        let model = SafeTensorsTarget.model()
        files["gradkit-state-dict.safetensors"] = SafeTensors.encode(model.stateDictionary())
        files["metadata-only.safetensors"] = SafeTensors.encode([:], metadata: ["format": "gradkit-checkpoint-1", "step": "3"])
        // One tensor of each dtype GradKit reads, and one it does not.
        let dtypes: [(String, Int)] = [("F64", 8), ("F32", 4), ("F16", 2), ("BF16", 2), ("I64", 8), ("I32", 4), ("I16", 2), ("I8", 1),
                                       ("U64", 8), ("U32", 4), ("U16", 2), ("U8", 1), ("BOOL", 1)]
        var entries: [String] = [], data: [UInt8] = []
        for (index, (dtype, size)) in dtypes.enumerated() {
            entries.append("\"t\(index)\":{\"dtype\":\"\(dtype)\",\"shape\":[2],\"data_offsets\":[\(data.count),\(data.count + 2 * size)]}")
            data += (0..<(2 * size)).map { UInt8(truncatingIfNeeded: $0 * 37 + index) }
        }
        files["dtypes.safetensors"] = file("{" + entries.joined(separator: ",") + "}", data)
        files["unsupported-dtype.safetensors"] = file(#"{"c":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#, [UInt8](repeating: 0, count: 8))
        files["empty-tensor.safetensors"] = file(#"{"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#, [0, 0, 128, 63])

        // Near misses of the file rules.
        let checkpoint = files["gradkit-checkpoint-Adam.safetensors"]!
        files["truncated.safetensors"] = Array(checkpoint.prefix(checkpoint.count / 2))
        files["length-beyond-file.safetensors"] = [0xFF, 0xFF, 0, 0, 0, 0, 0, 0] + Array(#"{"a":1}"#.utf8)
        files["length-only.safetensors"] = [0, 0, 0, 0, 0, 0, 0, 0]
        files["header-not-json.safetensors"] = file(#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]"#, [0, 0, 0, 0])
        files["header-nested.safetensors"] = file(String(repeating: "[", count: 70) + String(repeating: "]", count: 70), [])
        files["overlap.safetensors"] = file(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, [UInt8](repeating: 0, count: 8))
        files["hole.safetensors"] = file(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, [UInt8](repeating: 0, count: 8))
        files["huge-shape.safetensors"] = file(#"{"a":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])

        // Near misses of the checkpoint rules.
        let weights = #""0.weight":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        files["nan-weight.safetensors"] = file("{\(weights)}", [0, 0, 0xC0, 0x7F])
        files["negative-step.safetensors"] = file(#"{"__metadata__":{"step":"-1","epoch":"99999999999999999999"},"# + weights + "}", [0, 0, 0, 0])
        files["random-three-words.safetensors"] = file(#"{"__metadata__":{"random":"{\"dropout:2\":[\"1\",\"2\",\"3\"]}"},"# + weights + "}", [0, 0, 0, 0])
        files["optimizer-without-kind.safetensors"] = file(#"{"optimizer/0/exp_avg":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, [0, 0, 0, 0])
        files["optimizer-bad-groups.safetensors"] = file(
            #"{"__metadata__":{"optimizer.kind":"Adam","optimizer.parameters":"[\"0.weight\"]","optimizer.steps":"[1]","optimizer.groups":"[{\"params\":[0,5],\"lr\":1e300}]"},"#
                + weights + "}", [0, 0, 0, 0])
        return files
    }

    /// A safetensors file of `header` (padded) and `data`.
    static func file(_ header: String, _ data: [UInt8]) -> [UInt8] {
        var text = Array(header.utf8)
        while text.count % 8 != 0 { text.append(0x20) }
        return (0..<8).map { UInt8(truncatingIfNeeded: text.count >> (8 * $0)) } + text + data
    }

    /// The checkpoint of a trainer of ``SafeTensorsTarget/model()`` after two
    /// epochs with an optimizer of `kind` and early stopping (so it holds best weights).
    static func trainedCheckpoint(kind: String) -> [UInt8] {
        let model = SafeTensorsTarget.model()
        let trainer = Trainer(
            model: model, optimizer: SafeTensorsTarget.optimizer(kind: kind, model), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: 4, earlyStopping: EarlyStopping(patience: 5), progress: .silent))
        var generator = SeededGenerator(seed: 3)
        let data = try! Dataset(features: Tensor(randomNormal: [8, 3], using: &generator), labels: [0, 1, 1, 0, 1, 0, 0, 1])
        try! trainer.fit(data, validation: data)
        let path = temporaryPath("checkpoint")
        defer { unlink(path) }
        try! trainer.checkpoint(configuration: ["command": "gradkit train --optimizer \(kind)"]).write(to: path)
        return try! FileIO.readAll(path).get()
    }

    // MARK: IDX

    static func idx() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        // Two images of 2 × 2 in every type, with values each type can hold.
        let values: [Double] = [0, 1, 2, 127, 3, 100, 5, 9]
        for (code, name) in [(0x08, "u8"), (0x09, "i8"), (0x0B, "i16"), (0x0C, "i32"), (0x0D, "f32"), (0x0E, "f64")] {
            let images = idxFile(type: UInt8(code), shape: [2, 2, 2], values.map { code == 0x08 ? $0 : -$0 + 1 })
            files["images-\(name).idx"] = images
            files["pair-\(name).idx"] = images + idxFile(type: 0x08, shape: [2], [1, 3]) + [0]
        }
        files["pair-labels-i32-classes-10.idx"] = idxFile(type: 0x08, shape: [3, 2], [1, 2, 3, 4, 5, 6]) + idxFile(type: 0x0C, shape: [3], [9, 0, 4]) + [0b0100]
        files["pair-labels-f64-fraction.idx"] = idxFile(type: 0x08, shape: [1, 1], [7]) + idxFile(type: 0x0E, shape: [1], [2.5]) + [0]
        files["pair-label-out-of-range.idx"] = idxFile(type: 0x08, shape: [1, 1], [7]) + idxFile(type: 0x08, shape: [1], [12]) + [0b0100]
        files["pair-count-mismatch.idx"] = idxFile(type: 0x08, shape: [2, 1], [7, 8]) + idxFile(type: 0x08, shape: [3], [1, 2, 3]) + [0]
        files["pair-scale-overflow.idx"] = idxFile(type: 0x08, shape: [1, 1], [200]) + idxFile(type: 0x08, shape: [1], [0]) + [0b10]
        files["pair-labels-rank-2.idx"] = idxFile(type: 0x08, shape: [1, 1], [7]) + idxFile(type: 0x08, shape: [1, 1], [0]) + [0]
        files["zero-images.idx"] = idxFile(type: 0x08, shape: [0, 2], []) + idxFile(type: 0x08, shape: [0], []) + [0]
        files["zero-pixels.idx"] = idxFile(type: 0x08, shape: [2, 0], []) + idxFile(type: 0x08, shape: [2], [0, 1]) + [0]
        files["bad-magic.idx"] = [1, 0, 8, 1, 0, 0, 0, 1, 5]
        files["unknown-type.idx"] = [0, 0, 0x0A, 1, 0, 0, 0, 1, 5]
        files["rank-zero.idx"] = [0, 0, 8, 0]
        files["truncated-dimensions.idx"] = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0]
        files["short-data.idx"] = idxFile(type: 0x0C, shape: [4], [1, 2, 3, 4]).dropLast(3)
        files["huge-dimensions.idx"] = [0, 0, 8, 2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        files["f32-nan.idx"] = [0, 0, 0x0D, 1, 0, 0, 0, 1, 0x7F, 0xC0, 0, 0]
        files["f64-beyond-float.idx"] = idxFile(type: 0x0E, shape: [1], [1e300])
        return files
    }

    /// An IDX file: magic, big-endian dimensions, big-endian values of `type`.
    static func idxFile(type: UInt8, shape: [Int], _ values: [Double]) -> [UInt8] {
        func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
            (0..<(T.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }
        }
        var bytes: [UInt8] = [0, 0, type, UInt8(shape.count)]
        for dimension in shape { bytes += bigEndian(UInt32(dimension)) }
        for value in values {
            switch type {
            case 0x08: bytes.append(UInt8(value))
            case 0x09: bytes.append(UInt8(bitPattern: Int8(value)))
            case 0x0B: bytes += bigEndian(Int16(value))
            case 0x0C: bytes += bigEndian(Int32(value))
            case 0x0D: bytes += bigEndian(Float(value).bitPattern)
            default: bytes += bigEndian(value.bitPattern)
            }
        }
        return bytes
    }

    // MARK: CSV

    static func csv() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        func add(_ name: String, _ text: String, separator: Character = ",", header: Bool? = nil, labelColumn: Int = -1,
                 classCount: Int? = nil, regression: Bool = false, stratified: Bool = false, batchSize: Int = 2) {
            let options = [
                CSVTarget.separators.firstIndex(of: separator)!, CSVTarget.headers.firstIndex(of: header)!,
                CSVTarget.labelColumns.firstIndex(of: labelColumn)!, CSVTarget.classCounts.firstIndex(of: classCount)!,
                (regression ? 1 : 0) | (stratified ? 2 : 0) | (batchSize - 1) << 2,
            ].map(UInt8.init)
            files[name] = options + Array(text.utf8)
        }
        add("header.csv", "x1,x2,label\n0.5,1,0\n-1.5,2e-3,1\n3,+.5,1\n1,1,0\n")
        add("no-header-stratified.csv", "1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,0\n11,12,1\n", header: false, stratified: true, batchSize: 3)
        add("bom-crlf.csv", "\u{FEFF}a,b,c\r\n1,2,1\r\n3,4,0\r\n\r\n5,6,2\r\n")
        add("cr-line-ends.csv", "a;b;y\r1;2;0\r3;4;1\r", separator: ";")
        add("quotes.csv", "\"a\",\"b, with comma\",\"y\"\n\"1.5\", \"2\" ,\"1\"\n\"3\",\"4\",0\n")
        add("tabs.csv", "1\t2\t3\n4\t5\t6\n", separator: "\t", regression: true)
        add("pipes-first-label.csv", "y|a|b\n1|0.1|0.2\n0|0.3|0.4\n", separator: "|", labelColumn: 0)
        add("regression-middle.csv", "a,t,b\n1,0.25,2\n2,-7.5,3\n3,1e10,4\n", labelColumn: 1, regression: true, batchSize: 1)
        add("class-count-10.csv", "1,9\n2,0\n3,4\n", classCount: 10)
        add("blank-lines.csv", "\n  \n1,2,0\n\t\n3,4,1\n\n")
        add("wide.csv", (0..<6).map { row in (0..<12).map { "\(row * $0 % 7)" }.joined(separator: ",") }.joined(separator: "\n"))
        // Near misses.
        add("nan.csv", "1,nan,0\n2,inf,1\n")
        add("hex.csv", "0x1F,2,0\n")
        add("empty-field.csv", "1,,0\n2,3,1\n")
        add("trailing-separator.csv", "1,2,0,\n3,4,1,\n")
        add("unclosed-quote.csv", "\"1,2,0\n")
        add("text-after-quote.csv", "\"1\"x,2,0\n")
        add("nul.csv", "1,2\u{0},0\n")
        add("utf16.csv", "\u{FFFE}1,2,0")
        add("float-overflow.csv", "1e39,2,0\n")
        add("label-beyond-limit.csv", "1,2,1000000\n")
        add("label-fraction.csv", "1,2,0.5\n")
        add("label-huge.csv", "1,2,1e300\n")
        add("mixed-header.csv", "x,2,label\n1,2,0\n")
        add("header-only.csv", "a,b,c\n")
        add("one-column.csv", "1;2;3\n4;5;6\n")
        add("ragged.csv", "1,2,0\n3,4\n")
        add("label-column-huge.csv", "1,2,0\n", labelColumn: Int.max)
        add("label-column-min.csv", "1,2,0\n", labelColumn: Int.min)
        add("class-count-zero.csv", "1,2,0\n", classCount: 0)
        add("separator-letter.csv", "1a2a0\n", separator: "a")
        add("separator-quote.csv", "1\"2\"0\n", separator: "\"")
        add("invalid-utf8.csv", "x,\u{FF},y\n")
        return files
    }

    // MARK: Logs

    static func log() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        files["trainer-run.jsonl"] = trainerLog()
        let step = #"{"type":"step","epoch":0,"step":0,"loss":0.7,"gradient_norm":1.5,"learning_rate":0.001,"skipped":false,"clipped":false}"#
        let layer = #"{"layer":1,"path":"0","kind":"Linear","activation":"ReLU","gradient_norm":0.9,"weight_norm":8.1,"update_ratio":0.0012,"dead_fraction":0.05,"saturated_fraction":null,"preactivation_mean":0.02,"preactivation_std":1.1,"verdict":"healthy","evidence":[]}"#
        let layers = "{\"type\":\"layers\",\"step\":0,\"layers\":[\(layer)]}"
        files["one-step.jsonl"] = Array((step + "\n" + layers + "\n").utf8)
        files["steps-only.jsonl"] = Array((0..<5).map { step.replacingStep($0) }.joined(separator: "\n").utf8)
        files["nulls.jsonl"] = Array(#"{"type":"step","step":1,"loss":null,"gradient_norm":null,"learning_rate":null,"skipped":true}"#.utf8)
        files["huge-numbers.jsonl"] = Array((#"{"type":"step","step":9007199254740992,"loss":1e300,"gradient_norm":-1e300,"learning_rate":5e-324}"# + "\n"
            + #"{"type":"layers","step":1,"layers":[{"layer":1,"path":"0","kind":"Linear","gradient_norm":1e300,"update_ratio":1e-300,"dead_fraction":1e30,"preactivation_std":-1}]}"#).utf8)
        files["layers-differ.jsonl"] = Array((layers + "\n" + layers.replacingOccurrences("\"Linear\"", "\"RNN\"")).utf8)
        files["unknown-verdict.jsonl"] = Array(layers.replacingOccurrences("healthy", "sick").utf8)
        files["wrong-layer-number.jsonl"] = Array(layers.replacingOccurrences("\"layer\":1", "\"layer\":2").utf8)
        files["not-json.jsonl"] = Array((step + "\n{\"type\":\"step\",\n").utf8)
        files["negative-step.jsonl"] = Array(step.replacingStep(-1).utf8)
        files["other-records.jsonl"] = Array(("\n  \r\n{\"type\":\"epoch\",\"epoch\":1}\n[1,2]\n" + step + "\r\n").utf8)
        return files
    }

    // MARK: Command lines

    static func arguments() -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        /// A command line as the target reads it: words separated by NUL.
        func add(_ name: String, _ words: [String]) { files[name + ".args"] = Array(words.joined(separator: "\u{0}").utf8) }
        add("empty", [])
        add("help", ["--help"])
        add("help-train", ["help", "train"])
        add("version", ["--version"])
        add("info", ["info"])
        add("train-digits", ["train", "--dataset", "digits", "--layers", "64,128,10", "--epochs", "30", "--checkpoint", "run.safetensors"])
        add("train-every-model-option", [
            "train", "--dataset", "spirals", "--layers", "2,32,32,3", "--activation", "leaky-relu", "--init", "xavier-uniform", "--batch-norm",
            "--dropout", "0.1", "--residual", "--batch-size", "16", "--seed", "7",
        ])
        add("train-sgd", ["train", "--optimizer", "sgd", "--lr=0.1", "--momentum", "0.9", "--dampening", "0", "--nesterov", "--weight-decay", "1e-4"])
        add("train-adam", ["train", "--optimizer", "adamw", "--beta1", "0.8", "--beta2", "0.99", "--eps", "1e-7", "--amsgrad"])
        add("train-rmsprop", ["train", "--optimizer", "rmsprop", "--alpha", "0.9", "--centered"])
        add("train-adagrad", ["train", "--optimizer", "adagrad", "--lr-decay", "0.01", "--initial-accumulator", "0.1"])
        add("train-csv", [
            "train", "--csv", "data.csv", "--separator", "tab", "--label-column", "0", "--regression", "--test", "test.csv",
            "--validation-fraction", "0.1", "--normalize", "scale", "--no-stratify",
        ])
        add("train-idx", ["train", "--idx", "images.idx,labels.idx", "--test-fraction", "0.25"])
        add("train-schedules", ["train", "--schedule", "multistep:10/20:0.5", "--clip-norm", "1", "--early-stopping", "5", "--max-skipped-steps", "0"])
        add("train-schedule-onecycle", ["train", "--schedule", "onecycle:0.1", "--agc", "0.01", "--detect-anomaly", "--distributed"])
        add("train-outputs", [
            "train", "--resume", "run.safetensors", "--accept-changed-options", "--stop-after", "3", "--log", "run.jsonl", "--report", "out",
            "--tensorboard", "tb", "--json", "--quiet", "--threads", "2",
        ])
        add("report-options-ended", ["report", "--output", "r", "--", "--run.jsonl"])
        add("lr-find", ["lr-find", "--dataset", "xor", "--optimizer", "sgd", "--start", "1e-5", "--end", "1", "--steps", "50", "--output", "plot.svg"])
        add("lab", ["lab", "--quick", "--output", "lab", "--only", "vanishing", "--seed", "1", "--threads", "1"])
        add("report", ["report", "run.jsonl", "--output", "report"])
        add("inspect", ["inspect", "run.safetensors"])
        // Near misses.
        add("unknown-command", ["fit"])
        add("empty-command", ["", "train"])
        add("operand-after-options-end", ["train", "--epochs", "1", "--", "--csv"])
        add("unknown-option", ["train", "--epoch", "3"])
        add("short-option", ["train", "-e", "3"])
        add("option-twice", ["train", "--epochs", "3", "--epochs=4"])
        add("value-missing", ["train", "--epochs"])
        add("flag-with-value", ["train", "--quiet=yes"])
        add("out-of-range", ["train", "--batch-size", "0", "--dropout", "1", "--threads", "99999999999999999999"])
        add("negative-number-operand", ["report", "-1"])
        add("other-command-option", ["lr-find", "--epochs", "3"])
        add("conflicting-sources", ["train", "--dataset", "xor", "--csv", "a.csv", "--test", "b.csv"])
        add("bad-lists", ["train", "--layers", "3,,2", "--idx", "a.idx", "--separator", "ab", "--schedule", "step:0:2"])
        add("lr-range", ["lr-find", "--start", "10", "--end", "1", "--lr", "nan"])
        add("control-characters", ["train", "--log", "\u{FFFD}\u{0007}\n"])
        return files
    }

    /// The JSON-lines log of a monitored run of two epochs (three monitored layers: ReLU and tanh after them).
    static func trainerLog() -> [UInt8] {
        let model = withManualSeed(2) {
            Sequential([Linear(inputSize: 2, outputSize: 6), ReLU(), Linear(inputSize: 6, outputSize: 6), Tanh(), Linear(inputSize: 6, outputSize: 2)])
        }
        let path = temporaryPath("log")
        defer { unlink(path) }
        let trainer = Trainer(
            model: model, optimizer: SGD(model.parameters, learningRate: 0.1), loss: .softmaxCrossEntropy,
            options: TrainingOptions(epochs: 2, batchSize: 4, progress: .silent, logPath: path))
        try! trainer.fit(Dataset.xor(copies: 2))
        return try! FileIO.readAll(path).get()
    }

    /// A path for a temporary file in `/tmp`.
    static func temporaryPath(_ name: String) -> String { "/tmp/gradkit-fuzz-seed-\(getpid())-\(name)" }
}

extension String {
    /// The text with every `target` replaced (the harness has no Foundation).
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }

    /// A step record with its step number replaced.
    fileprivate func replacingStep(_ step: Int) -> String { replacingOccurrences("\"step\":0", "\"step\":\(step)") }
}
