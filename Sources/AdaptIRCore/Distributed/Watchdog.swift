import CMPI
import Foundation

/// A rank that did not reach a rendezvous in time: who waited, for whom, and where.
public struct StallError: Error, CustomStringConvertible {
    public let rank: Int
    public let missing: [Int]
    public let tag: Int
    public let seconds: Double
    /// Where the rank waited, when more precise than the tag (the step and the collective).
    public var place: String? = nil
    public var description: String {
        "rank \(rank) waited \(String(format: "%.0f", seconds)) s at \(place ?? "step \(tag)"): rank(s) \(missing.map(String.init).joined(separator: ", ")) did not arrive"
    }
}

extension Communicator {
    /// How long this rank waits at a watchdog rendezvous: `seconds` on rank 0, which knows exactly which ranks are
    /// late, and a grace period longer (10 %, at least 1 s) on the others, which can only name rank 0, so that with
    /// more than two ranks the report that names the late ranks comes first.
    public func watchdogDeadline(_ seconds: Double) -> Double {
        rank == 0 ? seconds : seconds + max(1, 0.1 * seconds)
    }

    /// Reports a stall on stderr ("watchdog: ...") and ends the whole job (`MPI_Abort`) instead of hanging.
    public func endJob(for stall: StallError) -> Never {
        FileHandle.standardError.write(Data("watchdog: \(stall); ending the job\n".utf8))
        abort(code: 4)
    }

    /// With `watchdogSeconds` set, called at the start of every collective: the ranks check in with rank 0
    /// (`checkIn`), which reports the ranks that do not come in time and ends the job; then the collective itself is
    /// timed (`watchdogDone` at its end), because a rank can stall after it checked in, and the others would wait
    /// inside the collective. Without it, does nothing.
    func watchdogGate(_ operation: StaticString) {
        guard watchdogSeconds > 0, size > 1 else { return }
        let limit = watchdogDeadline(watchdogSeconds)
        do {
            try checkIn(timeout: limit)
        } catch var stall as StallError {
            stall.place = "step \(watchdogStep), before \(operation)"
            endJob(for: stall)
        } catch {
            FileHandle.standardError.write(Data("watchdog: rank \(rank): \(error); ending the job\n".utf8))
            abort(code: 4)
        }
        collectiveWatch.enter(operation, rank: rank, step: watchdogStep, limit: limit)
    }

    /// The watchdog's check-in before a collective: every rank other than 0 tells rank 0 it has arrived (one small
    /// eager message) and goes straight on into the collective; rank 0 waits for all of them up to `timeout`, then
    /// throws StallError naming the missing ranks. Unlike `rendezvous` nobody waits for a release, so a rank cannot
    /// stall in between, after it checked in but before the collective: the ranks that stop are named. One message
    /// per rank on its own tag (32001, above the rendezvous tags); per sender they match in order.
    func checkIn(timeout: Double) throws {
        guard size > 1 else { return }
        let tag: Int32 = 32_001
        let start = monotonicSeconds()
        if rank == 0 {
            var arrived = [Int32](repeating: 0, count: size)
            var requests = [MPI_Request?](repeating: nil, count: size - 1)
            try arrived.withUnsafeMutableBufferPointer { buf in
                for r in 1..<size {
                    try check(MPI_Irecv(buf.baseAddress! + r, 1, swmpi_int32(), Int32(r), tag, comm, &requests[r - 1]), "MPI_Irecv")
                }
                try wait(&requests, tag: watchdogStep, start: start, timeout: timeout) { done in
                    (1..<self.size).filter { !done[$0 - 1] }
                }
            }
        } else {
            var token: Int32 = 1
            try check(MPI_Send(&token, 1, swmpi_int32(), 0, tag, comm), "MPI_Send")
        }
    }

    /// The end of a collective started with `watchdogGate`.
    func watchdogDone() {
        if watchdogSeconds > 0, size > 1 { collectiveWatch.leave() }
    }

    /// A barrier with a deadline that names the late ranks (the idea of Horovod's stall inspector).
    ///
    /// Every rank tells rank 0 it has arrived (a small non-blocking message); rank 0 waits for all of them, then
    /// releases everyone. A rank that waits longer than `timeout` throws `StallError` naming the ranks it is
    /// missing: rank 0 knows exactly which ranks are late; the others can only name rank 0. The caller reports it
    /// and ends the job (`abort`) instead of hanging in the next collective. Called once per training step, before
    /// its collectives; costs 2 (p - 1) tiny messages.
    public func rendezvous(tag: Int, timeout: Double) throws {
        guard size > 1 else { return }
        let t = Int32(tag % 32_000)
        let start = monotonicSeconds()
        // Non-blocking sends and receives need buffers that outlive the call that posts them.
        let token = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        token.initialize(repeating: 1, count: 2)
        defer { token.deallocate() }
        if rank == 0 {
            var arrived = [Int32](repeating: 0, count: size)
            var requests = [MPI_Request?](repeating: nil, count: size - 1)
            try arrived.withUnsafeMutableBufferPointer { buf in
                for r in 1..<size {
                    try check(MPI_Irecv(buf.baseAddress! + r, 1, swmpi_int32(), Int32(r), t, comm, &requests[r - 1]), "MPI_Irecv")
                }
                try wait(&requests, tag: tag, start: start, timeout: timeout) { done in
                    (1..<self.size).filter { !done[$0 - 1] }
                }
            }
            var sends = [MPI_Request?](repeating: nil, count: size - 1)
            for r in 1..<size { try check(MPI_Isend(token, 1, swmpi_int32(), Int32(r), t, comm, &sends[r - 1]), "MPI_Isend") }
            try sends.withUnsafeMutableBufferPointer { try check(MPI_Waitall(Int32($0.count), $0.baseAddress!, swmpi_statuses_ignore()), "MPI_Waitall") }
        } else {
            var send: MPI_Request?
            try check(MPI_Isend(token, 1, swmpi_int32(), 0, t, comm, &send), "MPI_Isend")
            var requests: [MPI_Request?] = [nil]
            try check(MPI_Irecv(token + 1, 1, swmpi_int32(), 0, t, comm, &requests[0]), "MPI_Irecv")
            try wait(&requests, tag: tag, start: start, timeout: timeout) { _ in [0] }
            try check(MPI_Wait(&send, swmpi_status_ignore()), "MPI_Wait")
        }
    }

    /// Polls `requests` until all complete or `timeout` passes; then throws StallError with `missing(done flags)`.
    private func wait(_ requests: inout [MPI_Request?], tag: Int, start: Double, timeout: Double,
                      missing: ([Bool]) -> [Int]) throws {
        var done = [Bool](repeating: false, count: requests.count)
        var sleep: useconds_t = 20
        while true {
            for i in requests.indices where !done[i] {
                var flag: Int32 = 0
                try check(MPI_Test(&requests[i], &flag, swmpi_status_ignore()), "MPI_Test")
                done[i] = flag != 0
            }
            if done.allSatisfy({ $0 }) { return }
            let waited = monotonicSeconds() - start
            if waited > timeout {
                // Withdraw the receives still pending, so a later rendezvous (or the late message) cannot match them.
                for i in requests.indices where !done[i] {
                    MPI_Cancel(&requests[i])
                    MPI_Wait(&requests[i], swmpi_status_ignore())
                }
                throw StallError(rank: rank, missing: missing(done), tag: tag, seconds: waited)
            }
            // With the watchdog on, a wait like this (the check-in) runs before every collective, so its wake-up
            // delay adds to every collective: the first 2 ms poll without sleeping (yielding the core, as blocking MPI
            // calls poll), then sleeps grow to at most 1 ms.
            if waited < 0.002 { sched_yield(); continue }
            usleep(sleep)
            sleep = min(sleep * 2, 1_000)
        }
    }
}

/// The watchdog of a collective in progress: every rank has checked in, but one may stall before the collective
/// completes, and then the others block inside the MPI call where no deadline applies. A thread checks
/// every 50 ms whether this rank has been inside one collective longer than the limit; if so it reports on stderr and
/// ends the process with `_exit(4)`, and mpirun then ends the job (a rank that exits without MPI_Finalize fails it).
/// It cannot see which rank stalled, nor call `MPI_Abort` (the main thread is inside MPI, which runs
/// `MPI_THREAD_SERIALIZED`), but on a rank other than 0 it can infer it: rank 0 would have named a late rank first.
final class CollectiveWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var since: Double?
    private var operation: StaticString = ""
    private var rank = 0, step = 0
    private var limit = 0.0
    private var thread: Thread?

    func enter(_ operation: StaticString, rank: Int, step: Int, limit: Double) {
        lock.lock(); defer { lock.unlock() }
        since = monotonicSeconds()
        self.operation = operation
        self.rank = rank
        self.step = step
        self.limit = limit
        if thread == nil {
            let t = Thread { [unowned self] in self.watch() }
            t.name = "collective watchdog"
            thread = t
            t.start()
        }
    }

    func leave() {
        lock.lock(); since = nil; lock.unlock()
    }

    private func watch() {
        while true {
            usleep(50_000)
            lock.lock()
            let waited = since.map { monotonicSeconds() - $0 } ?? 0
            let expired = since != nil && waited > limit
            let (op, rank, step) = (operation, self.rank, self.step)
            lock.unlock()
            if expired {
                let line = "watchdog: rank \(rank) waited \(String(format: "%.0f", waited)) s inside \(op) at step \(step): "
                    + (rank == 0 ? "every rank had checked in, one stalled before it completed"
                       // Rank 0 checks the others in with a shorter deadline and reports a late rank first; that it did
                       // not means rank 0 itself stopped (before its check-in or inside this collective).
                       : "rank 0 did not complete it and reported no late rank within its shorter deadline, so rank 0 is the one that stalled")
                    + "; ending the job\n"
                FileHandle.standardError.write(Data(line.utf8))
                _exit(4)
            }
        }
    }
}
