// GradKit — TensorBoard event files: scalars and histograms, no dependencies. SPDX-License-Identifier: MIT
#if canImport(Glibc)
import Glibc
#endif

/// Writes an event file that TensorBoard (and PyTorch's `SummaryWriter`
/// readers) load: scalars and histograms, each tagged and stepped.
///
/// ```swift
/// let board = try TensorBoardWriter(directory: "runs/mlp")
/// board.addScalar("loss", loss, step: step)
/// board.addHistogram("weights/0", values: model.parameters[0].value, step: step)
/// try board.close()
/// // tensorboard --logdir runs
/// ```
/// The file is named as TensorBoard's own writer names it,
/// `events.out.tfevents.<10-digit seconds>.<host>.<pid>.<n>` (n counts up
/// from 0 past names already taken), and starts with the `brain.Event:2`
/// file-version event. Events are buffered and written in TFRecord framing
/// when 64 KiB are pending, on ``flush()`` and on ``close()``; a failed write
/// is reported by the next ``flush()`` or ``close()``, so adding never throws
/// (it is called from training callbacks). The file holds whole records only:
/// a write that fails part way (a full disk) is taken back.
public final class TensorBoardWriter {
    /// The directory given.
    public let directory: String
    /// The event file's path.
    public let path: String
    private var descriptor: Int32
    private var pending: [UInt8] = []
    private var failure: TensorBoardError?
    private static let bufferLimit = 1 << 16

    /// Creates `directory` (with missing parents) and a new event file in it.
    /// - Throws: ``TensorBoardError`` when the path is empty or the directory or file cannot be created.
    public init(directory: String) throws {
        guard !directory.isEmpty else { throw TensorBoardError.emptyPath }
        if case .failure(let error) = FileIO.createDirectories(directory) {
            throw TensorBoardError.cannotCreate(path: directory, reason: error.message)
        }
        self.directory = directory
        let now = TensorBoardWriter.wallTime()
        let seconds = String(Int(now))
        let stem = directory + (directory.hasSuffix("/") ? "" : "/") + "events.out.tfevents."
            + String(repeating: "0", count: Swift.max(0, 10 - seconds.count)) + seconds + "." + TensorBoardWriter.hostName() + ".\(getpid())."
        var counter = 0
        while true {
            let candidate = stem + String(counter)
            let fd = open(candidate, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 {
                path = candidate
                descriptor = fd
                break
            }
            guard errno == EEXIST, counter < 10_000 else {
                throw TensorBoardError.cannotCreate(path: candidate, reason: String(cString: strerror(errno)))
            }
            counter += 1
        }
        pending = TensorBoardEvent.record(TensorBoardEvent.fileVersion(wallTime: now))
        try flush()
    }

    deinit { try? close() }

    /// Adds a scalar (TensorBoard's Scalars tab).
    /// - Parameters:
    ///   - tag: the series' name (`"loss"`, `"epoch/accuracy"`); a slash groups series in TensorBoard.
    ///   - value: the value at `step`.
    ///   - step: the x coordinate, usually the optimizer step.
    ///   - wallTime: seconds since 1970 (default: now).
    public func addScalar(_ tag: String, _ value: Float, step: Int, wallTime: Double? = nil) {
        add(TensorBoardEvent.scalarValue(tag: tag, value), step: step, wallTime: wallTime)
    }

    /// Adds a histogram of `values` (TensorBoard's Histograms and Distributions
    /// tabs), bucketed as PyTorch's `add_histogram` does by default (see ``TensorBoardHistogram``).
    /// - Returns: false, writing nothing, when `values` is empty or holds NaN or ±∞.
    @discardableResult
    public func addHistogram(_ tag: String, values: [Float], step: Int, wallTime: Double? = nil) -> Bool {
        guard let histogram = TensorBoardHistogram(values) else { return false }
        addHistogram(tag, histogram, step: step, wallTime: wallTime)
        return true
    }

    /// Adds a histogram of a tensor's elements.
    /// - Returns: false, writing nothing, when the tensor is empty or holds NaN or ±∞.
    @discardableResult
    public func addHistogram(_ tag: String, values: Tensor, step: Int, wallTime: Double? = nil) -> Bool {
        guard let histogram = values.withUnsafeBufferPointer({ TensorBoardHistogram($0) }) else { return false }
        addHistogram(tag, histogram, step: step, wallTime: wallTime)
        return true
    }

    /// Adds a histogram already bucketed.
    public func addHistogram(_ tag: String, _ histogram: TensorBoardHistogram, step: Int, wallTime: Double? = nil) {
        add(TensorBoardEvent.histogramValue(tag: tag, histogram), step: step, wallTime: wallTime)
    }

    private func add(_ value: [UInt8], step: Int, wallTime: Double?) {
        guard descriptor >= 0 else {
            failure = failure ?? .closed(path: path)
            return
        }
        pending += TensorBoardEvent.record(TensorBoardEvent.summary(wallTime: wallTime ?? TensorBoardWriter.wallTime(), step: step, value: value))
        if pending.count >= TensorBoardWriter.bufferLimit { writePending() }
    }

    /// Writes the pending events to the file.
    /// - Throws: ``TensorBoardError`` for a write that failed since the last flush, or a writer already closed.
    public func flush() throws {
        writePending()
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    /// Flushes and closes the file; later events are dropped (and reported by ``flush()``).
    /// - Throws: ``TensorBoardError`` as ``flush()``, or when the file cannot be closed.
    public func close() throws {
        guard descriptor >= 0 else { return }
        writePending()
        if fsync(descriptor) != 0, failure == nil { failure = .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        if Glibc.close(descriptor) != 0, failure == nil { failure = .cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        descriptor = -1
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    private func writePending() {
        guard descriptor >= 0, !pending.isEmpty else { return }
        let start = lseek(descriptor, 0, SEEK_CUR)
        var written = 0
        while written < pending.count {
            let n = pending.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                failure = failure ?? .cannotWrite(path: path, reason: String(cString: strerror(errno)))
                // Whole records only: what this write added is taken back (these events are dropped).
                if start >= 0, ftruncate(descriptor, start) == 0 { _ = lseek(descriptor, start, SEEK_SET) }
                break
            }
            written += n
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Seconds since 1970, with the clock's resolution.
    static func wallTime() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // A '/' would make the name a path.
        return name.isEmpty ? "localhost" : String(name.map { $0 == "/" ? "_" : $0 })
    }
}

/// Why a TensorBoard event file could not be written.
public enum TensorBoardError: Error, Equatable, CustomStringConvertible {
    /// The directory path is empty.
    case emptyPath
    /// The log directory could not be created.
    case cannotCreate(path: String, reason: String)
    /// The event file could not be written.
    case cannotWrite(path: String, reason: String)
    /// Events were added after ``TensorBoardWriter/close()``.
    case closed(path: String)

    /// One line naming the path at fault and the reason.
    public var description: String {
        switch self {
        case .emptyPath: "TensorBoard: the log directory path is empty"
        case .cannotCreate(let path, let reason): "\(path.shownInMessage): cannot create: \(reason)"
        case .cannotWrite(let path, let reason): "\(path.shownInMessage): cannot write: \(reason)"
        case .closed(let path): "\(path.shownInMessage): events added after the writer was closed were dropped"
        }
    }
}

extension TensorBoardWriter {
    /// Logs one step of a monitored run: `loss`, `accuracy` and
    /// `learning_rate` as scalars and, when the step the monitor last inspected
    /// was sampled, each layer's `gradient_norm/<layer>` and `weight_norm/<layer>`
    /// scalars and, with ``GradientMonitor/capturesGradientHistograms`` set, the
    /// `gradient/<layer>` histogram of its weight gradients (before clipping).
    /// `<layer>` is ``layerTag(index:path:layerCount:)`` (`layer_01_0`): sorted by depth.
    ///
    /// Call it after the monitor's ``GradientMonitor/didStep()`` (the trainer: after the step).
    public func addSampledStep(of monitor: GradientMonitor, step: Int, loss: Float, accuracy: Float? = nil, learningRate: Float? = nil) {
        addScalar("loss", loss, step: step)
        if let accuracy { addScalar("accuracy", accuracy, step: step) }
        if let learningRate { addScalar("learning_rate", learningRate, step: step) }
        guard let sample = monitor.sampleOfLastStep else { return }
        let layers = monitor.layerPaths
        for (i, values) in sample.layers.enumerated() where i < layers.count {
            let tag = TensorBoardWriter.layerTag(index: i + 1, path: layers[i], layerCount: layers.count)
            addScalar("gradient_norm/" + tag, values.gradientNorm, step: step)
            if let weightNorm = values.weightNorm { addScalar("weight_norm/" + tag, weightNorm, step: step) }
            if monitor.capturesGradientHistograms, let histogram = monitor.gradientHistograms[i] {
                addHistogram("gradient/" + tag, histogram, step: step)
            }
        }
    }

    /// `layer_<index>_<path>`, the index zero-padded to the width of the
    /// layer count (at least 2), so tags sort by depth.
    /// - Parameters:
    ///   - index: the layer's 1-based position (``RunHistory/Layer/index``).
    ///   - path: its path in the model (``RunHistory/Layer/path``).
    ///   - layerCount: how many layers are monitored.
    public static func layerTag(index: Int, path: String, layerCount: Int) -> String {
        let digits = String(index), width = Swift.max(2, String(layerCount).count)
        return "layer_" + String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits + "_" + path
    }
}
