// GradKit — callbacks: code that runs at the points of a training run. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Code a ``Trainer`` calls as a run goes (Keras' `Callback`): before the
/// first step, after every step, after every epoch and at the end. Every
/// method has a default that does nothing.
///
/// A callback that throws ends training with its error; at the end of an
/// epoch, every callback runs first (so a checkpoint is still written when a
/// log fails) and the first error is thrown after.
public protocol TrainingCallback: AnyObject {
    /// Before the first step of ``Trainer/fit(_:validation:)``: open files, check paths.
    func trainingWillBegin(_ trainer: Trainer) throws
    /// After each step (taken or skipped).
    func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws
    /// After each epoch, once validation, early stopping and ``Trainer/onEpoch`` are done
    /// (a checkpoint taken here holds the model the run reports).
    func epochDidEnd(_ trainer: Trainer, _ record: EpochRecord) throws
    /// When ``Trainer/fit(_:validation:)`` ends, normally or by an error
    /// (then errors this throws are dropped).
    func trainingDidEnd(_ trainer: Trainer, _ history: History) throws
}

extension TrainingCallback {
    /// Does nothing.
    public func trainingWillBegin(_ trainer: Trainer) throws {}
    /// Does nothing.
    public func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws {}
    /// Does nothing.
    public func epochDidEnd(_ trainer: Trainer, _ record: EpochRecord) throws {}
    /// Does nothing.
    public func trainingDidEnd(_ trainer: Trainer, _ history: History) throws {}
}

/// Appends one JSON object per line to a file: each step
/// (`{"type":"step","epoch":…,"step":…,"loss":…,"gradient_norm":…,"learning_rate":…,"skipped":…,"clipped":…}`),
/// each sampled step's per-layer statistics and verdicts (a `layers` record,
/// see ``RunHistory/init(parsing:maximumLength:)``: `gradkit report` draws a
/// report from the log) and each epoch (`{"type":"epoch","epoch":…,"loss":…,"accuracy":…,"validation_loss":…,
/// "validation_accuracy":…,"learning_rate":…,"skipped_steps":…,"seconds":…}`).
///
/// The file is opened for appending when training begins (a missing
/// directory, a directory, a read-only file are errors then, before the first
/// step); lines are written at the end of each epoch and when 64 KiB have
/// gathered, and a failed write (a full disk) is an error that ends training.
/// The file holds whole lines only: a write that fails part way is taken
/// back, and a file that ends inside a line (cut short by another program)
/// gets a line break before the first new line.
public final class JSONLinesLogger: TrainingCallback {
    /// The file appended to.
    public let path: String
    private var descriptor: Int32 = -1
    private var pending: [UInt8] = []

    /// A logger that appends to the file at `path` once training begins.
    ///
    /// - Parameter path: the JSON-lines file; created if missing, appended to if present.
    public init(path: String) { self.path = path }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// Opens the file for appending.
    ///
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when the path is empty, cannot be opened or is not a regular file.
    public func trainingWillBegin(_ trainer: Trainer) throws {
        guard !path.isEmpty else { throw TrainingError.cannotWrite(path: path, reason: "the log path is empty") }
        if descriptor >= 0 { return }
        let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0o666)
        guard fd >= 0 else { throw TrainingError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw TrainingError.cannotWrite(path: path, reason: "not a regular file")
        }
        var last = UInt8(ascii: "\n")
        if info.st_size > 0, pread(fd, &last, 1, info.st_size - 1) == 1, last != UInt8(ascii: "\n") { pending.insert(UInt8(ascii: "\n"), at: 0) }
        descriptor = fd
    }

    /// Gathers the step's line and, on a sampled step, the monitor's `layers` line; writes once 64 KiB have gathered.
    ///
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when a write fails.
    public func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws {
        append([
            "type": .string("step"), "epoch": .number(Double(record.epoch)), "step": .number(Double(record.step)),
            "loss": .number(Double(record.loss)), "gradient_norm": .number(Double(record.gradientNorm)),
            "learning_rate": .number(Double(record.learningRate)), "skipped": .bool(record.skipped),
            "clipped": .bool(record.clipped),
        ])
        if let layers = trainer.monitor.layersRecord(step: record.step) { append(layers) }
        if pending.count >= 1 << 16 { try flush() }
    }

    /// Gathers the epoch's line and writes every gathered line.
    ///
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when the write fails.
    public func epochDidEnd(_ trainer: Trainer, _ record: EpochRecord) throws {
        append([
            "type": .string("epoch"), "epoch": .number(Double(record.epoch)), "loss": .number(Double(record.loss)),
            "accuracy": record.accuracy.map { .number(Double($0)) } ?? .null,
            "validation_loss": record.validationLoss.map { .number(Double($0)) } ?? .null,
            "validation_accuracy": record.validationAccuracy.map { .number(Double($0)) } ?? .null,
            "learning_rate": .number(Double(record.learningRate)), "skipped_steps": .number(Double(record.skippedSteps)),
            "seconds": .number(record.seconds),
        ])
        try flush()
    }

    /// Writes what is left and closes the file.
    ///
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when the write fails.
    public func trainingDidEnd(_ trainer: Trainer, _ history: History) throws {
        defer {
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
        try flush()
    }

    /// Adds one line (written at the next flush).
    func append(_ object: [String: JSON]) {
        pending += Array((JSON.object(object).text + "\n").utf8)
    }

    /// Writes the gathered lines.
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when the write fails.
    public func flush() throws {
        guard descriptor >= 0 else {
            if pending.isEmpty { return }
            throw TrainingError.cannotWrite(path: path, reason: "the log is not open")
        }
        var info = stat()
        let start = fstat(descriptor, &info) == 0 ? info.st_size : -1
        var written = 0
        while written < pending.count {
            let n = pending.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                let reason = String(cString: strerror(errno))
                // Whole lines only: what this flush wrote is taken back (and stays pending).
                if start >= 0 { _ = ftruncate(descriptor, start) }
                throw TrainingError.cannotWrite(path: path, reason: reason)
            }
            written += n
        }
        pending.removeAll(keepingCapacity: true)
    }
}

/// Writes TensorBoard event files while training (Keras' `TensorBoard`
/// callback): each step's loss and learning rate, each sampled step's
/// per-layer gradient and weight norms and gradient histograms, and each
/// epoch's accuracy and validation figures (at the step count reached). The
/// directory is created when training begins; the file is flushed after
/// every epoch and closed at the end.
public final class TensorBoardLogger: TrainingCallback {
    /// The directory the event file is written in.
    public let directory: String
    /// The writer, once training has begun.
    public private(set) var writer: TensorBoardWriter?

    /// A logger that writes its event file in `directory` once training begins.
    ///
    /// - Parameter directory: the run's log directory (TensorBoard's `--logdir` or a subdirectory of it); created if missing.
    public init(directory: String) { self.directory = directory }

    /// Creates the directory and the event file, and has the monitor capture gradient histograms.
    ///
    /// - Throws: ``TensorBoardError`` when the directory or file cannot be created.
    public func trainingWillBegin(_ trainer: Trainer) throws {
        if writer == nil { writer = try TensorBoardWriter(directory: directory) }
        trainer.monitor.capturesGradientHistograms = true
    }

    /// Adds the step's `loss` and `learning_rate` and, on a sampled step, the per-layer norms and histograms.
    public func stepDidEnd(_ trainer: Trainer, _ record: StepRecord) throws {
        writer?.addSampledStep(of: trainer.monitor, step: record.step, loss: record.loss, learningRate: record.learningRate)
    }

    /// Adds `epoch/loss`, `epoch/accuracy`, `epoch/validation_loss` and `epoch/validation_accuracy` (those the record has) at ``Trainer/completedSteps``, then flushes.
    ///
    /// - Throws: ``TensorBoardError`` when the write fails.
    public func epochDidEnd(_ trainer: Trainer, _ record: EpochRecord) throws {
        guard let writer else { return }
        let step = trainer.completedSteps
        writer.addScalar("epoch/loss", record.loss, step: step)
        if let accuracy = record.accuracy { writer.addScalar("epoch/accuracy", accuracy, step: step) }
        if let loss = record.validationLoss { writer.addScalar("epoch/validation_loss", loss, step: step) }
        if let accuracy = record.validationAccuracy { writer.addScalar("epoch/validation_accuracy", accuracy, step: step) }
        try writer.flush()
    }

    /// Closes the event file.
    ///
    /// - Throws: ``TensorBoardError`` when the final write fails.
    public func trainingDidEnd(_ trainer: Trainer, _ history: History) throws {
        try writer?.close()
        writer = nil
    }
}

/// Writes the monitor's report of the run (``GradientMonitor/writeReport(to:)``:
/// Markdown with the verdict table and SVG figures) when training ends. The
/// directory is created when training begins, so a path that cannot be
/// written fails before the first step.
public final class ReportWriter: TrainingCallback {
    /// The directory the report is written in.
    public let directory: String

    /// A writer that puts the report in `directory` when training ends.
    ///
    /// - Parameter directory: the report's directory; created (with its parents) when training begins.
    public init(directory: String) { self.directory = directory }

    /// Creates the directory, so an unwritable path fails before the first step.
    ///
    /// - Throws: ``TrainingError/cannotWrite(path:reason:)`` when the path is empty or the directory cannot be created.
    public func trainingWillBegin(_ trainer: Trainer) throws {
        guard !directory.isEmpty else { throw TrainingError.cannotWrite(path: directory, reason: "the report directory is empty") }
        if case .failure(let error) = FileIO.createDirectories(directory) {
            throw TrainingError.cannotWrite(path: directory, reason: error.message)
        }
    }

    /// Writes the report (``GradientMonitor/writeReport(to:)``).
    ///
    /// - Throws: ``ReportError`` when a file cannot be written.
    public func trainingDidEnd(_ trainer: Trainer, _ history: History) throws {
        try trainer.monitor.writeReport(to: directory)
    }
}
