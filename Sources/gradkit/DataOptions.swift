// gradkit — where the data comes from and how it is split and normalized. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif
import GradKit

/// A data set GradKit ships.
enum BuiltInDataset: String, CaseIterable {
    case digits, xor, spirals, circles

    func load(seed: UInt64) -> Dataset {
        switch self {
        case .digits: .digits()
        case .xor: .xor(copies: 100, noise: 0.15, seed: seed)
        case .spirals: .twoSpirals(countPerClass: 300, seed: seed)
        case .circles: .circles(count: 600, seed: seed)
        }
    }

    /// The hidden widths when `--layers` is not given.
    var hiddenWidths: [Int] {
        switch self {
        case .digits: [128]
        case .spirals: [64, 64]
        case .xor: [8]
        case .circles: [32]
        }
    }
}

/// The training data: `--dataset`, `--idx` or `--csv`.
enum DataSource: Equatable {
    case builtIn(BuiltInDataset)
    case idx(images: String, labels: String)
    case csv(path: String)

    /// The files read.
    var files: [String] {
        switch self {
        case .builtIn: []
        case .idx(let images, let labels): [images, labels]
        case .csv(let path): [path]
        }
    }

    /// The option that names it.
    var optionName: String {
        switch self {
        case .builtIn: "--dataset"
        case .idx: "--idx"
        case .csv: "--csv"
        }
    }

    /// The option and value that name it, with files as absolute paths (for checkpoints).
    var canonical: String {
        if case .builtIn(let name) = self { return "--dataset \(name.rawValue)" }
        return optionName + " " + files.map(absolutePath).joined(separator: ",")
    }
}

/// How features are normalized, with statistics from the training part.
enum Normalization: String, CaseIterable {
    case standard, scale, none

    /// `parts` normalized with a transform fitted on `parts[0]`.
    func apply(_ parts: [Dataset]) throws -> [Dataset] {
        switch self {
        case .standard:
            let standardizer = Standardizer(fitting: parts[0])
            return try parts.map(standardizer.transform)
        case .scale:
            let scaler = MagnitudeScaler(fitting: parts[0])
            return try parts.map(scaler.transform)
        case .none:
            return parts
        }
    }
}

/// The training, validation and test parts of a run.
struct LoadedData {
    var train: Dataset
    var validation: Dataset?
    /// Nil when nothing is held out and no `--test` file is given.
    var test: Dataset?
}

extension LoadedData {
    /// The examples as loaded, as text for a checkpoint: each part's count
    /// and a 64-bit FNV-1a hash of its features' bits and its labels or
    /// targets. A resumed run compares it like an option, so editing the
    /// data file between runs is noticed while a file only reformatted
    /// (same numbers) is not.
    var fingerprint: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ word: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) {
                hash = (hash ^ (word >> UInt64(shift) & 0xFF)) &* 0x0000_0100_0000_01B3
            }
        }
        var counts: [String] = []
        for (name, part) in [("train", train), ("validation", validation), ("test", test)] {
            guard let part else { continue }
            counts.append("\(part.count) \(name)")
            part.features.withUnsafeBufferPointer { for value in $0 { mix(UInt64(value.bitPattern)) } }
            if let labels = part.labels { for label in labels { mix(UInt64(bitPattern: Int64(label))) } }
            part.targetValues?.withUnsafeBufferPointer { for value in $0 { mix(UInt64(value.bitPattern)) } }
        }
        let hex = String(hash, radix: 16)
        return counts.joined(separator: ", ") + ", fnv1a " + String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// The data options, checked together.
struct DataOptions {
    var source: DataSource = .builtIn(.digits)
    var testSource: DataSource?
    var labelColumn = -1
    var separator: Character = ","
    /// `--header`: the CSV's first row is declared a header (otherwise a first row without a number, or
    /// reading 0,1,2,..., is one).
    var header = false
    var regression = false
    var testFraction = 0.2
    var validationFraction = 0.0
    var normalization = Normalization.standard
    var stratify = true

    init(_ a: ParsedArguments) throws(UsageError) {
        source = try DataOptions.source(a)
        let isCSV = if case .csv = source { true } else { false }
        for option in [Option.separator, .header, .labelColumn, .regression] where a.has(option) && !isCSV {
            throw UsageError("\(option.flagName) applies to --csv data only")
        }
        labelColumn = a.integer(.labelColumn) ?? -1
        regression = a.flag(.regression)
        header = a.flag(.header)
        if let text = a.text(.separator) { separator = try DataOptions.separator(text) }
        if let text = a.text(.test) { testSource = try DataOptions.testSource(text, training: source) }
        if testSource != nil, a.has(.testFraction) { throw UsageError("give either --test or --test-fraction") }
        testFraction = a.number(.testFraction) ?? (testSource == nil ? 0.2 : 0)
        validationFraction = a.number(.validationFraction) ?? 0
        guard testFraction + validationFraction < 1 else { throw UsageError("--test-fraction plus --validation-fraction must be below 1") }
        let defaultNormalization: Normalization = source == .builtIn(.digits) ? .none : .standard
        normalization = a.text(.normalize).flatMap(Normalization.init(rawValue:)) ?? defaultNormalization
        stratify = !a.flag(.noStratify) && !regression
    }

    private static func source(_ a: ParsedArguments) throws(UsageError) -> DataSource {
        switch try a.oneOf([.dataset, .idx, .csv]) {
        case .dataset?: return .builtIn(BuiltInDataset(rawValue: a.text(.dataset)!)!)
        case .idx?: return try idxPair(a.text(.idx)!, option: "--idx")
        case .csv?: return .csv(path: a.text(.csv)!)
        default: return .builtIn(.digits)
        }
    }

    private static func idxPair(_ text: String, option: String) throws(UsageError) -> DataSource {
        let paths = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard paths.count == 2, !paths[0].isEmpty, !paths[1].isEmpty else {
            throw UsageError("\(option) needs IMAGES,LABELS (two paths separated by a comma), got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
        }
        let same = canonicalPath(paths[0]) == canonicalPath(paths[1])
            || FileIO.identity(of: paths[0]).map { $0 == FileIO.identity(of: paths[1]) } == true
        guard !same else {
            throw UsageError("\(option) names one file as both IMAGES and LABELS: \(text.quotedForMessage(limit: DisplayText.messageLimit))")
        }
        return .idx(images: paths[0], labels: paths[1])
    }

    private static func testSource(_ text: String, training: DataSource) throws(UsageError) -> DataSource {
        switch training {
        case .builtIn: throw UsageError("--test needs --idx or --csv training data")
        case .idx: return try idxPair(text, option: "--test")
        case .csv: return .csv(path: text)
        }
    }

    private static func separator(_ text: String) throws(UsageError) -> Character {
        if text == "tab" { return "\t" }
        guard text.count == 1, let character = text.first else {
            throw UsageError("--separator must be one character or 'tab', got \(text.quotedForMessage(limit: DisplayText.messageLimit))")
        }
        if let problem = Dataset.csvSeparatorProblem(character) { throw UsageError("--separator \(problem)") }
        return character
    }

    /// The files the run reads.
    var inputFiles: [String] { source.files + (testSource?.files ?? []) }

    /// Training, validation and test parts, normalized with the training part's statistics.
    func load(seed: UInt64) throws -> LoadedData {
        var all = try load(source, seed: seed)
        let test = try testSource.map { try load($0, seed: seed) }
        if let test {
            if let classes = test.classCount, let labels = all.labels, classes > all.classCount! {
                all = try Dataset(features: all.features, labels: labels, classCount: classes)
            }
            guard test.featureCount == all.featureCount else {
                throw CommandError("the test data has \(test.featureCount) features per example, the training data \(all.featureCount)")
            }
        }
        let fractions = [(1 - testFraction - validationFraction, "training"), (validationFraction, "validation"), (testFraction, "test")]
            .filter { $0.0 > 0 }
        let parts = try all.split(fractions.map(\.0), seed: seed, stratified: stratify, partNames: fractions.map(\.1))
        let named = Dictionary(uniqueKeysWithValues: zip(fractions.map(\.1), parts))
        var validation = named["validation"], testPart = test ?? named["test"]
        var normalized = try normalization.apply([named["training"]!] + [validation, testPart].compactMap { $0 })[...]
        let train = normalized.removeFirst()
        if validation != nil { validation = normalized.removeFirst() }
        if testPart != nil { testPart = normalized.removeFirst() }
        return LoadedData(train: train, validation: validation, test: testPart)
    }

    private func load(_ source: DataSource, seed: UInt64) throws -> Dataset {
        switch source {
        case .builtIn(let name): name.load(seed: seed)
        case .idx(let images, let labels): try .idx(images: images, labels: labels)
        case .csv(let path): try .csv(path, labelColumn: labelColumn, hasHeader: header ? true : nil, separator: separator, regression: regression)
        }
    }
}

/// `path` made absolute with `realpath` (links resolved), or as given when it cannot be resolved.
func absolutePath(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
}
