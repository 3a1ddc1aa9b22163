import CMPI
import Foundation

/// An MPI call that returned an error code (the communicator uses `MPI_ERRORS_RETURN`, so failures are reported
/// here instead of aborting the job silently).
public struct CommunicatorError: Error, CustomStringConvertible {
    /// The operation that failed, e.g. "MPI_Allreduce".
    public let operation: String
    /// The MPI error code.
    public let code: Int32
    /// The text from `MPI_Error_string`.
    public let message: String

    public var description: String { "\(operation) failed (MPI error \(code)): \(message)" }
}

/// Element types that the communicator can move: each maps to one predefined MPI datatype.
public enum CommType: Sendable { case float32, float64, int64, uint64, uint8 }

/// A scalar with a predefined MPI datatype.
public protocol CommScalar { static var commType: CommType { get } }
extension Float: CommScalar { public static var commType: CommType { .float32 } }
extension Double: CommScalar { public static var commType: CommType { .float64 } }
extension Int64: CommScalar { public static var commType: CommType { .int64 } }
extension UInt64: CommScalar { public static var commType: CommType { .uint64 } }
extension UInt8: CommScalar { public static var commType: CommType { .uint8 } }

/// Reduction operators for `allreduce`.
public enum ReduceOp: Sendable { case sum, max, min }

/// A thin wrapper over an MPI communicator (`MPI_COMM_WORLD`). It also works as a single process without mpirun
/// (MPI singleton init: rank 0 of 1). Every collective must be called by all ranks in the same order with the same
/// counts. Calls must not run concurrently from several threads (MPI_THREAD_SERIALIZED).
public final class Communicator: @unchecked Sendable {
    /// The world communicator. First access initialises MPI (once per process, `MPI_Init_thread` requesting
    /// `MPI_THREAD_SERIALIZED`; skipped if MPI is already initialised) and sets `MPI_ERRORS_RETURN`.
    public static let world = Communicator(solo: false)

    /// This process alone (`MPI_COMM_SELF`, size 1): a reference run inside a multi-rank job, or work that must
    /// not involve the other ranks.
    public static let solo = Communicator(solo: true)

    let comm: MPI_Comm
    /// This process's rank in 0..<size.
    public let rank: Int
    /// Number of ranks.
    public let size: Int
    /// Rank among the ranks on this node (from `OMPI_COMM_WORLD_LOCAL_RANK` / `MPI_LOCALRANKID`, else from an
    /// `MPI_COMM_TYPE_SHARED` split).
    public let localRank: Int
    /// Number of ranks on this node.
    public let localSize: Int
    /// `MPI_Get_processor_name` (usually the host name).
    public let processorName: String
    /// The thread support level MPI granted (compare with `MPI_THREAD_SERIALIZED` etc.).
    public let threadLevel: Int32
    /// Largest element count per MPI call (MPI counts are Int32). Larger buffers go in several calls. Tests lower it
    /// to exercise the chunking.
    public var maxCountPerCall: Int = Int(Int32.max)

    /// The watchdog of collectives, in seconds (0, the default: off). When set, every collective first checks the
    /// ranks in with rank 0 under a deadline (`watchdogGate`): a rank that stops anywhere (inside a forward pass, in a
    /// checkpoint write, SIGSTOP) cannot hang the others inside the collective; rank 0 reports the missing ranks on
    /// stderr and ends the job with `MPI_Abort`, and a collective that does not complete in time ends it too.
    /// `TrainingRun` sets it for its loop.
    public var watchdogSeconds: Double = 0
    /// The training step the next collectives belong to, for the watchdog's report.
    public var watchdogStep = 0
    /// Ends the job if this rank stays too long inside one guarded collective.
    let collectiveWatch = CollectiveWatch()

    /// True on rank 0, the rank that logs and writes checkpoints.
    public var isRoot: Bool { rank == 0 }

    private init(solo: Bool) {
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        precondition(finalized == 0, "Communicator.world: MPI was already finalized in this process")
        var initialized: Int32 = 0
        MPI_Initialized(&initialized)
        var provided: Int32 = 0
        if initialized == 0 {
            let rc = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_SERIALIZED), &provided)
            precondition(rc == MPI_SUCCESS, "MPI_Init_thread failed: \(Communicator.errorString(rc))")
        } else {
            MPI_Query_thread(&provided)
        }
        threadLevel = provided
        comm = solo ? swmpi_comm_self() : swmpi_comm_world()
        MPI_Comm_set_errhandler(comm, swmpi_errors_return())
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)

        var name = [CChar](repeating: 0, count: Int(MPI_MAX_PROCESSOR_NAME) + 1)
        var len: Int32 = 0
        MPI_Get_processor_name(&name, &len)
        processorName = String(decoding: name.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)

        let env = ProcessInfo.processInfo.environment
        if solo {
            localRank = 0; localSize = 1
        } else if let lr = env["OMPI_COMM_WORLD_LOCAL_RANK"].flatMap(Int.init),
           let ls = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init) {
            localRank = lr; localSize = ls
        } else if let lr = env["MPI_LOCALRANKID"].flatMap(Int.init),
                  let ls = env["MPI_LOCALNRANKS"].flatMap(Int.init) {
            localRank = lr; localSize = ls
        } else {
            // Collective, but every rank takes this branch together (same launcher, same environment).
            var local: MPI_Comm? = nil
            MPI_Comm_split_type(comm, swmpi_comm_type_shared(), r, swmpi_info_null(), &local)
            var lr: Int32 = 0, ls: Int32 = 1
            MPI_Comm_rank(local, &lr)
            MPI_Comm_size(local, &ls)
            MPI_Comm_free(&local)
            localRank = Int(lr); localSize = Int(ls)
        }
    }

    /// Calls `MPI_Finalize` if MPI is initialised and not yet finalised. Only for the CLI's normal exit: MPI cannot be
    /// used (or re-initialised) afterwards, so tests never call it.
    public static func finalize() {
        var initialized: Int32 = 0, finalized: Int32 = 0
        MPI_Initialized(&initialized)
        MPI_Finalized(&finalized)
        if initialized != 0 && finalized == 0 { MPI_Finalize() }
    }

    /// The message text for an MPI error code (`MPI_Error_string`).
    public static func errorString(_ code: Int32) -> String {
        var buf = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var len: Int32 = 0
        guard MPI_Error_string(code, &buf, &len) == MPI_SUCCESS else { return "unknown MPI error \(code)" }
        return String(decoding: buf.prefix(Int(len)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Plumbing

    func check(_ rc: Int32, _ op: String) throws {
        if rc != MPI_SUCCESS {
            throw CommunicatorError(operation: op, code: rc, message: Communicator.errorString(rc))
        }
    }

    private static func datatype(_ t: CommType) -> MPI_Datatype {
        switch t {
        case .float32: return swmpi_float()
        case .float64: return swmpi_double()
        case .int64: return swmpi_int64()
        case .uint64: return swmpi_uint64()
        case .uint8: return swmpi_uint8()
        }
    }

    private static func mpiOp(_ op: ReduceOp) -> MPI_Op {
        switch op {
        case .sum: return swmpi_sum()
        case .max: return swmpi_max()
        case .min: return swmpi_min()
        }
    }

    /// Runs `body(offset, n)` over consecutive chunks of at most `maxCountPerCall` elements.
    func chunked(_ count: Int, _ op: String, _ body: (Int, Int32) -> Int32) throws {
        let limit = max(1, min(maxCountPerCall, Int(Int32.max)))
        var offset = 0
        while offset < count {
            let n = min(limit, count - offset)
            try check(body(offset, Int32(n)), op)
            offset += n
        }
    }

    private func checkRoot(_ root: Int) {
        precondition(root >= 0 && root < size, "broadcast: root \(root) out of range for \(size) ranks")
    }

    // MARK: - Allreduce

    /// In-place allreduce: on return `buf[i] = op over ranks r of buf_r[i]` on every rank (`MPI_IN_PLACE`).
    /// Counts above Int32.max go in several calls.
    public func allreduce<T: CommScalar>(_ buf: UnsafeMutableBufferPointer<T>, op: ReduceOp) throws {
        guard let base = buf.baseAddress else { return }
        watchdogGate("MPI_Allreduce"); defer { watchdogDone() }
        let type = Communicator.datatype(T.commType), mop = Communicator.mpiOp(op)
        try chunked(buf.count, "MPI_Allreduce") { off, n in
            MPI_Allreduce(UnsafeRawPointer(swmpi_in_place()), UnsafeMutableRawPointer(base + off), n, type, mop, comm)
        }
    }

    /// In-place sum over ranks: `buf[i] = Σ_r buf_r[i]` (Float or Double gradients).
    public func allreduceSum<T: CommScalar>(_ buf: UnsafeMutableBufferPointer<T>) throws {
        try allreduce(buf, op: .sum)
    }

    /// In-place sum of a tensor's storage over ranks: `t[i] = Σ_r t_r[i]`.
    public func allreduceSum(_ t: Tensor) throws {
        try allreduceSum(UnsafeMutableBufferPointer(start: t.data, count: t.count))
    }

    /// Reduces one scalar over ranks and returns the result on every rank.
    public func allreduce<T: CommScalar>(_ value: T, op: ReduceOp) throws -> T {
        var v = value
        try withUnsafeMutablePointer(to: &v) { try allreduce(UnsafeMutableBufferPointer(start: $0, count: 1), op: op) }
        return v
    }

    /// `Σ_r value_r` on every rank.
    public func allreduceSum<T: CommScalar>(_ value: T) throws -> T { try allreduce(value, op: .sum) }
    /// `max_r value_r` on every rank.
    public func allreduceMax<T: CommScalar>(_ value: T) throws -> T { try allreduce(value, op: .max) }
    /// `min_r value_r` on every rank.
    public func allreduceMin<T: CommScalar>(_ value: T) throws -> T { try allreduce(value, op: .min) }
    /// In-place element-wise max over ranks.
    public func allreduceMax<T: CommScalar>(_ buf: UnsafeMutableBufferPointer<T>) throws { try allreduce(buf, op: .max) }
    /// In-place element-wise min over ranks.
    public func allreduceMin<T: CommScalar>(_ buf: UnsafeMutableBufferPointer<T>) throws { try allreduce(buf, op: .min) }

    // MARK: - Broadcast

    /// Copies `root`'s buffer into `buf` on every rank (`MPI_Bcast`). All ranks pass the same count.
    public func broadcast<T: CommScalar>(_ buf: UnsafeMutableBufferPointer<T>, root: Int) throws {
        checkRoot(root)
        guard let base = buf.baseAddress else { return }
        watchdogGate("MPI_Bcast"); defer { watchdogDone() }
        let type = Communicator.datatype(T.commType)
        try chunked(buf.count, "MPI_Bcast") { off, n in
            MPI_Bcast(UnsafeMutableRawPointer(base + off), n, type, Int32(root), comm)
        }
    }

    /// Copies `root`'s tensor values into `t` on every rank (same shape on all ranks).
    public func broadcast(_ t: Tensor, root: Int) throws {
        try broadcast(UnsafeMutableBufferPointer(start: t.data, count: t.count), root: root)
    }

    /// Returns `root`'s `value` on every rank.
    public func broadcast<T: CommScalar>(_ value: T, root: Int) throws -> T {
        var v = value
        try withUnsafeMutablePointer(to: &v) { try broadcast(UnsafeMutableBufferPointer(start: $0, count: 1), root: root) }
        return v
    }

    /// Returns `root`'s bytes on every rank (the length is broadcast first, so other ranks may pass anything).
    public func broadcast(_ bytes: [UInt8], root: Int) throws -> [UInt8] {
        let n = try broadcast(Int64(bytes.count), root: root)
        var out = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n))
        try out.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        return out
    }

    /// Returns `root`'s data on every rank.
    public func broadcast(_ data: Data, root: Int) throws -> Data {
        Data(try broadcast([UInt8](data), root: root))
    }

    /// Returns `root`'s string on every rank (UTF-8 bytes).
    public func broadcast(_ string: String, root: Int) throws -> String {
        String(decoding: try broadcast(Array(string.utf8), root: root), as: UTF8.self)
    }

    // MARK: - Allgather

    /// `result[r]` = rank r's `value`, on every rank (`MPI_Allgather`).
    public func allgather<T: CommScalar>(_ value: T) throws -> [T] {
        watchdogGate("MPI_Allgather"); defer { watchdogDone() }
        var mine = value
        var out = [T](repeating: value, count: size)
        let type = Communicator.datatype(T.commType)
        try withUnsafeMutablePointer(to: &mine) { p in
            try out.withUnsafeMutableBufferPointer { o in
                try check(MPI_Allgather(UnsafeRawPointer(p), 1, type, UnsafeMutableRawPointer(o.baseAddress!), 1, type, comm),
                          "MPI_Allgather")
            }
        }
        return out
    }

    /// `result[r]` = rank r's bytes, on every rank: lengths are gathered first, then the bytes (`MPI_Allgatherv`).
    /// The total must fit in Int32.
    public func allgather(_ bytes: [UInt8]) throws -> [[UInt8]] {
        let lengths = try allgather(Int64(bytes.count)).map(Int.init)
        let total = lengths.reduce(0, +)
        guard total <= Int(Int32.max) else {
            throw CommunicatorError(operation: "MPI_Allgatherv", code: -1,
                                    message: "total of \(total) bytes exceeds Int32.max")
        }
        var displs = [Int32](repeating: 0, count: size)
        for r in 1..<max(size, 1) { displs[r] = displs[r - 1] + Int32(lengths[r - 1]) }
        let counts = lengths.map { Int32($0) }
        var recv = [UInt8](repeating: 0, count: max(total, 1))
        let send = bytes.isEmpty ? [0] : bytes
        let byte = swmpi_byte()
        watchdogGate("MPI_Allgatherv"); defer { watchdogDone() }
        try send.withUnsafeBufferPointer { s in
            try recv.withUnsafeMutableBufferPointer { rb in
                try check(MPI_Allgatherv(UnsafeRawPointer(s.baseAddress!), Int32(bytes.count), byte,
                                         UnsafeMutableRawPointer(rb.baseAddress!), counts, displs, byte, comm),
                          "MPI_Allgatherv")
            }
        }
        return (0..<size).map { r in Array(recv[Int(displs[r])..<(Int(displs[r]) + lengths[r])]) }
    }

    /// `result[r]` = rank r's string, on every rank.
    public func allgather(_ string: String) throws -> [String] {
        try allgather(Array(string.utf8)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The ranks whose `value` differs from rank 0's (empty when all agree), on every rank. For startup checks of
    /// config or backbone hashes: `if !diff.isEmpty { fail naming diff }`.
    public func ranksDiffering<T: CommScalar & Equatable>(_ value: T) throws -> [Int] {
        let all = try allgather(value)
        return all.indices.filter { all[$0] != all[0] }
    }

    /// The ranks whose `string` differs from rank 0's, on every rank.
    public func ranksDiffering(_ string: String) throws -> [Int] {
        let all = try allgather(string)
        return all.indices.filter { all[$0] != all[0] }
    }

    // MARK: - Control

    /// Blocks until every rank has called it (`MPI_Barrier`).
    public func barrier() throws {
        watchdogGate("MPI_Barrier"); defer { watchdogDone() }
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    /// Ends the whole job (`MPI_Abort` on all ranks), for a fatal error on one rank, so the others do not hang in a
    /// collective. Falls back to `exit` if MPI_Abort returns.
    public func abort(code: Int32 = 1) -> Never {
        MPI_Abort(comm, code)
        exit(code)
    }
}
