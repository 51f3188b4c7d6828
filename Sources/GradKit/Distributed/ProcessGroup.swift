// GradKit — the processes of an MPI job and the messages between them. SPDX-License-Identifier: MIT
#if MPI
import CMPI
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The processes of an Open MPI job (PyTorch's `ProcessGroup`): every process
/// started by `mpirun` runs the same program and knows its ``rank`` among
/// ``size``.
///
/// ```swift
/// let world = try ProcessGroup.world()
/// if world.rank == 0 { print("training on \(world.size) processes") }
/// ```
///
/// MPI is initialized on the first call of ``world()`` (with
/// `MPI_THREAD_SERIALIZED`: any thread may communicate, one at a time) and
/// finalized when the process exits. Every wait for other ranks polls with a
/// deadline (``timeout``) instead of blocking: a rank that stops answering makes
/// the others fail with ``DistributedError/timedOut(rank:operation:seconds:)``
/// rather than hang. After such an error the process aborts the whole job when
/// it exits (`MPI_Abort`), since the other ranks can no longer agree with it;
/// ``abort(exitCode:)`` does so at once.
///
/// Not thread-safe: use a group from one thread at a time.
public final class ProcessGroup: @unchecked Sendable {
    /// This process's number, from 0 to ``size`` - 1. Rank 0 writes files and reports.
    public let rank: Int
    /// The number of processes in the group.
    public let size: Int
    /// The processes of the group on this machine (sharing its memory and cores), this one included.
    public let localSize: Int
    /// How long a wait for the other ranks may take before it fails (default
    /// 20 s). Make it longer than the largest difference in the ranks' arrival
    /// at a common point: a step's time when they start it together.
    public var timeout: Duration = .seconds(20)

    let communicator: MPI_Comm

    private init(communicator: MPI_Comm, rank: Int, size: Int, localSize: Int) {
        self.communicator = communicator
        self.rank = rank
        self.size = size
        self.localSize = localSize
    }

    /// Whether MPI was initialized, finalized, and whether an error left the job
    /// unable to finish together.
    private struct Life {
        var world: ProcessGroup?
        var isFinalized = false
        var isBroken = false
    }

    private static let life = Mutex(Life())

    /// Every process of the job (`MPI_COMM_WORLD`), initializing MPI on first use.
    /// Outside `mpirun` this is a group of one.
    /// - Throws: ``DistributedError`` when MPI cannot start or lacks thread support.
    public static func world() throws -> ProcessGroup {
        try life.withLock { life in
            if let world = life.world { return world }
            guard !life.isFinalized else { throw DistributedError.unsupported("MPI was already finalized in this process") }
            var provided: Int32 = 0
            try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided), "MPI_Init_thread")
            atexit { ProcessGroup.finishAtExit() }
            guard provided >= Int32(MPI_THREAD_SERIALIZED) else {
                throw DistributedError.unsupported(
                    "this Open MPI offers thread level \(provided), GradKit needs MPI_THREAD_SERIALIZED (\(MPI_THREAD_SERIALIZED))")
            }
            let comm: MPI_Comm = cmpi_comm_world()
            // Errors come back as codes and become Swift errors that say which call failed.
            try check(MPI_Comm_set_errhandler(comm, cmpi_errors_return()), "MPI_Comm_set_errhandler")
            var rank: Int32 = 0, size: Int32 = 0, localSize: Int32 = 0
            try check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank")
            try check(MPI_Comm_size(comm, &size), "MPI_Comm_size")
            var local: MPI_Comm? = cmpi_comm_null()
            try check(MPI_Comm_split_type(comm, Int32(MPI_COMM_TYPE_SHARED), rank, cmpi_info_null(), &local), "MPI_Comm_split_type")
            try check(MPI_Comm_size(local, &localSize), "MPI_Comm_size")
            try check(MPI_Comm_free(&local), "MPI_Comm_free")
            let world = ProcessGroup(communicator: comm, rank: Int(rank), size: Int(size), localSize: Int(localSize))
            life.world = world
            return world
        }
    }

    /// A group of the same processes whose messages never meet this one's (`MPI_Comm_idup`),
    /// so that independent users of the group cannot receive each other's messages.
    /// Every rank must call it, in the same order.
    func duplicate() throws -> ProcessGroup {
        var copy: MPI_Comm? = cmpi_comm_null()
        var requests: [MPI_Request?] = [cmpi_request_null()]
        try Self.check(MPI_Comm_idup(communicator, &copy, &requests[0]), "MPI_Comm_idup")
        try wait(&requests, for: "duplicating the communicator")
        guard let copy else { throw DistributedError.unsupported("MPI_Comm_idup gave no communicator") }
        let group = ProcessGroup(communicator: copy, rank: rank, size: size, localSize: localSize)
        group.timeout = timeout
        return group
    }

    /// Ends the whole job at once (`MPI_Abort`): every process exits with
    /// `exitCode`. Print the reason first: the other ranks only learn that the job ended.
    public func abort(exitCode: Int32 = 1) -> Never {
        Self.abortJob(exitCode: exitCode)
    }

    private static func abortJob(exitCode: Int32) -> Never {
        fflush(nil)
        MPI_Abort(cmpi_comm_world(), exitCode)
        exit(exitCode)  // MPI_Abort does not return; if it did, leave anyway.
    }

    /// At exit: finalize, or abort the job when an error left the ranks unable to finish together.
    private static func finishAtExit() {
        let (broken, finalized) = life.withLock { life in
            defer { life.isFinalized = true }
            return (life.isBroken, life.isFinalized)
        }
        if finalized { return }
        if broken { abortJob(exitCode: 1) }
        MPI_Finalize()
    }

    /// Remembers that the ranks can no longer finish together: exiting aborts the job.
    static func markBroken() { life.withLock { $0.isBroken = true } }

    // ------------------------------------------------------------ messages

    /// Starts sending `count` floats at `base` to `destination`.
    func send(_ base: UnsafePointer<Float>, count: Int, to destination: Int, tag: Int32) throws -> MPI_Request? {
        var request: MPI_Request? = cmpi_request_null()
        try Self.check(MPI_Isend(base, Int32(count), cmpi_float(), Int32(destination), tag, communicator, &request), "MPI_Isend")
        return request
    }

    /// Starts receiving `count` floats from `source` into `base`.
    func receive(_ base: UnsafeMutablePointer<Float>, count: Int, from source: Int, tag: Int32) throws -> MPI_Request? {
        var request: MPI_Request? = cmpi_request_null()
        try Self.check(MPI_Irecv(base, Int32(count), cmpi_float(), Int32(source), tag, communicator, &request), "MPI_Irecv")
        return request
    }

    /// Whether every request has completed (completed ones become `MPI_REQUEST_NULL`).
    /// Also moves every pending message of this process along (Open MPI progresses on any test).
    func test(_ requests: inout [MPI_Request?]) throws -> Bool {
        var flag: Int32 = 0
        try Self.check(MPI_Testall(Int32(requests.count), &requests, &flag, nil), "MPI_Testall")
        return flag != 0
    }

    /// Polls `requests` until all have completed.
    /// - Throws: ``DistributedError/timedOut(rank:operation:seconds:)`` after ``timeout``.
    func wait(_ requests: inout [MPI_Request?], for operation: @autoclosure () -> String) throws {
        var poll = Poll(timeout: timeout)
        while try !test(&requests) {
            if poll.expired() { throw timedOut(operation()) }
        }
    }

    /// The error for a wait that lasted ``timeout``; the job is broken from then on.
    func timedOut(_ operation: String) -> DistributedError {
        Self.markBroken()
        return .timedOut(rank: rank, operation: operation, seconds: Double(timeout.components.seconds))
    }

    /// Rank `root`'s bytes, on every rank (`MPI_Ibcast` of the length, then of the bytes).
    func broadcast(_ bytes: inout [UInt8], from root: Int = 0, what: String) throws {
        var length = [Int64(bytes.count)]
        try length.withUnsafeMutableBytes { try broadcast($0, from: root, what: "the size of \(what)") }
        if rank != root { bytes = [UInt8](repeating: 0, count: Int(length[0])) }
        try bytes.withUnsafeMutableBytes { try broadcast($0, from: root, what: what) }
    }

    /// Rank `root`'s contents of `buffer`, on every rank, in pieces MPI's 32-bit counts can hold.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, from root: Int, what: String) throws {
        guard let base = buffer.baseAddress else { return }
        var offset = 0
        repeat {
            let piece = Swift.min(buffer.count - offset, 1 << 30)
            var requests: [MPI_Request?] = [cmpi_request_null()]
            try Self.check(MPI_Ibcast(base + offset, Int32(piece), cmpi_byte(), Int32(root), communicator, &requests[0]), "MPI_Ibcast")
            try wait(&requests, for: "receiving \(what) from rank \(root)")
            offset += piece
        } while offset < buffer.count
    }

    /// Every rank's `values`, indexed by rank (`MPI_Iallgather`): sum them in
    /// index order for a total that is the same, bit for bit, on every rank.
    /// Every rank must call it, with as many values.
    /// - Throws: ``DistributedError``.
    public func allGather(_ values: [Double]) throws -> [[Double]] {
        try allGather(values, what: "values")
    }

    /// Returns when every rank has called it (`MPI_Ibarrier`, polled).
    /// - Throws: ``DistributedError``.
    public func barrier() throws {
        var requests: [MPI_Request?] = [cmpi_request_null()]
        try Self.check(MPI_Ibarrier(communicator, &requests[0]), "MPI_Ibarrier")
        try wait(&requests, for: "waiting at a barrier")
    }

    /// ``allGather(_:)``, naming `what` is gathered in a timeout's message.
    func allGather(_ values: [Double], what: String) throws -> [[Double]] {
        var gathered = [Double](repeating: 0, count: values.count * size)
        guard !values.isEmpty else { return Array(repeating: [], count: size) }
        var requests: [MPI_Request?] = [cmpi_request_null()]
        try values.withUnsafeBufferPointer { send in
            try gathered.withUnsafeMutableBufferPointer { receive in
                try Self.check(
                    MPI_Iallgather(
                        send.baseAddress, Int32(values.count), cmpi_double(), receive.baseAddress, Int32(values.count), cmpi_double(),
                        communicator, &requests[0]),
                    "MPI_Iallgather")
                try wait(&requests, for: "gathering \(what) from every rank")
            }
        }
        return (0..<size).map { Array(gathered[($0 * values.count)..<(($0 + 1) * values.count)]) }
    }

    /// Throws when an MPI call did not succeed, with Open MPI's message; the job is broken then.
    static func check(_ code: Int32, _ function: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(code, &text, &length)
        markBroken()
        throw DistributedError.mpi(
            function: function, code: code, message: String(decoding: text.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
}

/// Polling with a deadline: spins for the first 200 µs (a peer about to
/// answer is answered fastest so), then sleeps between polls, from 20 µs
/// growing to 200 µs, so that a rank waiting for one that shares its core
/// leaves it the core.
struct Poll {
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant
    private let deadline: ContinuousClock.Instant
    private var polls = 0
    private var spinning = true
    private var pause = 20_000  // ns

    init(timeout: Duration) {
        start = clock.now
        deadline = start + timeout
    }

    /// Call after each unsuccessful poll: pauses as described, and says whether the deadline has passed.
    mutating func expired() -> Bool {
        polls += 1
        if spinning, polls & 63 != 0 { return false }
        let now = clock.now
        if now > deadline { return true }
        if now - start > .microseconds(200) {
            spinning = false
            var request = timespec(tv_sec: 0, tv_nsec: pause)
            nanosleep(&request, nil)
            pause = Swift.min(pause * 2, 200_000)
        }
        return false
    }
}

/// What went wrong between the processes of a data-parallel job.
public enum DistributedError: Error, Equatable, CustomStringConvertible {
    /// An MPI call failed: the function, its error code and Open MPI's message.
    case mpi(function: String, code: Int32, message: String)
    /// This rank waited longer than ``ProcessGroup/timeout`` for the others in an operation.
    case timedOut(rank: Int, operation: String, seconds: Double)
    /// The ranks do not train the same thing (parameter counts or shapes differ).
    case mismatch(String)
    /// MPI cannot do what GradKit needs here.
    case unsupported(String)

    public var description: String {
        switch self {
        case .mpi(let function, let code, let message): "\(function) failed (error \(code)): \(message)"
        case .timedOut(_, let operation, let seconds):
            "no answer from the other ranks within \(Int(seconds)) s while \(operation); a rank has stopped or hangs"
        case .mismatch(let what): "the ranks disagree: \(what)"
        case .unsupported(let what): what
        }
    }
}
#endif
