import CRuntime
import Foundation
import Synchronization

/// Intra-op parallelism of one rank (`--threads`), as PyTorch's intra-op thread pool.
///
/// With T > 1 threads, OpenBLAS runs single-threaded and every large GEMM is split by `BLAS.gemm` into T disjoint
/// blocks of C (rows, or columns when C is wide), one per thread; operators with independent work items (attention's
/// sample x head loop, convolution's images, rows of softmax and norms, elementwise chunks) split them the same way.
/// One pool serves both, so OpenBLAS's own worker threads never spin on a core the pool needs (they busy-wait after
/// each call). The operators' splits never change a sum's order; a split GEMM can differ from the whole call in the
/// last bits, because OpenBLAS's Haswell kernels are not bit-stable under a change of m or n (measured: a 512 x 512 x
/// 300 product computed as two 256-row halves differs in 7 % of its elements by a few ulps), as with OpenBLAS's own
/// threading. For a given thread count, results are deterministic.
///
/// Regions are started from one thread (the one running the model); a region started inside a region runs inline
/// on the calling thread.
public enum Parallel {
    /// Threads per rank (1: everything runs on the calling thread).
    nonisolated(unsafe) public private(set) static var threads = 1
    /// True while a region runs: nested regions and GEMMs then run inline.
    nonisolated(unsafe) static var inRegion = false

    /// Sets the threads of this rank; OpenBLAS is then used single-threaded (the pool splits GEMMs itself).
    public static func configure(threads t: Int) {
        threads = max(1, t)
        BLAS.threads = 1
        if threads > 1 && (pool?.workers ?? 0) < threads - 1 { pool = WorkerPool(workers: threads - 1) }
    }

    /// The threads beside the caller (made on the first `configure` above 1; they live as long as the process).
    nonisolated(unsafe) private static var pool: WorkerPool?

    /// Whether a new region would actually run on several threads.
    @inline(__always)
    static var available: Bool { threads > 1 && !inRegion }

    /// Elements per part below which a pointwise loop is not split (a part of a region costs about 5-20 us to hand
    /// to another thread; 32K floats of the cheapest loops take about that).
    public static let elementGrain = 1 << 15

    /// body(range) over contiguous chunks of 0..<count elements (pointwise loops), 16-float aligned.
    @inline(__always)
    public static func forChunks(_ count: Int, grain: Int = elementGrain, _ body: (Range<Int>) -> Void) {
        forRanges(count, grain: grain, align: 16, body)
    }

    /// body(range) over contiguous ranges of `rows` rows of `rowLength` elements each, split when the whole is
    /// worth it (at least `elementGrain` elements per part).
    @inline(__always)
    public static func forRows(_ rows: Int, rowLength: Int, _ body: (Range<Int>) -> Void) {
        forRanges(rows, grain: max(1, elementGrain / max(rowLength, 1)), body)
    }

    /// body(part) for part in 0..<parts, on up to `threads` threads (inline when one thread, one part, or nested).
    public static func forEach(_ parts: Int, _ body: (Int) -> Void) {
        if parts <= 1 || !available {
            for p in 0..<parts { body(p) }
            return
        }
        inRegion = true
        defer { inRegion = false }
        pool!.run(parts: parts, helpers: min(threads, parts) - 1, body)
    }

    /// body(range) over at most `threads` contiguous, nearly equal ranges covering 0..<count, each of at least
    /// `grain` items (one range: inline), with range bounds multiples of `align` except the last.
    public static func forRanges(_ count: Int, grain: Int, align: Int = 1, _ body: (Range<Int>) -> Void) {
        let parts = available ? min(threads, count / max(grain, 1)) : 1
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        forEach(parts) { p in
            let lo = p == 0 ? 0 : min(count, (count * p / parts + align / 2) / align * align)
            let hi = p == parts - 1 ? count : min(count, (count * (p + 1) / parts + align / 2) / align * align)
            if lo < hi { body(lo..<hi) }
        }
    }
}

/// Fixed worker threads that take parts of one job at a time with the calling thread.
///
/// A job is published under a lock with a new generation number; idle workers spin on the generation for a short
/// while (a region follows the previous one within microseconds in a training step) and then sleep on a condition.
/// Parts are claimed from the job's own counter, so a late worker can never take a part of a later job; `run`
/// returns once every part is done and no worker still holds the job (its closure does not escape). The threads are
/// fixed: a worker's scratch (attention's scores, im2col bands) comes from its own malloc arena, reused from step to
/// step. (GCD's `concurrentPerform`, tried first, grew the resident set of a small-preset step from 0.55 to 1.5 GiB
/// and ran slower.)
final class WorkerPool: @unchecked Sendable {
    final class Job {
        let body: (Int) -> Void
        let parts: Int
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        init(body: @escaping (Int) -> Void, parts: Int) { self.body = body; self.parts = parts }

        /// Runs parts until none is left.
        func work() {
            while true {
                let p = next.wrappingAdd(1, ordering: .relaxed).oldValue
                if p >= parts { return }
                body(p)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    let workers: Int
    private let lock = NSCondition()
    private let generation = Atomic<Int>(0)
    /// Workers holding the current job (counted under `lock`).
    private let attached = Atomic<Int>(0)
    private var job: Job?
    /// How many workers may join the current job.
    private var seats = 0

    init(workers: Int) {
        self.workers = workers
        for w in 0..<workers {
            let t = Thread { [unowned self] in self.loop() }
            t.name = "adaptir-pool-\(w + 1)"
            t.stackSize = 8 << 20
            t.start()
        }
    }

    func run(parts: Int, helpers: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { body in
            let job = Job(body: body, parts: parts)
            lock.lock()
            self.job = job
            seats = helpers
            generation.wrappingAdd(1, ordering: .releasing)
            lock.broadcast()
            lock.unlock()
            job.work()
            spinThenYield { job.done.load(ordering: .acquiring) >= parts }
            lock.lock()
            self.job = nil
            lock.unlock()
            spinThenYield { attached.load(ordering: .acquiring) == 0 }
        }
    }

    private func loop() {
        Runtime.flushDenormalsOnThisThread()
        var seen = 0
        while true {
            // Spin a little (about 50-100 us), then sleep until a new generation.
            var spins = 0
            while generation.load(ordering: .acquiring) == seen && spins < 20_000 { spinPause(); spins += 1 }
            if join(after: &seen) {
                // The job's reference is dropped with the function's frame, before the caller may return.
                attached.wrappingSubtract(1, ordering: .releasing)
            }
        }
    }

    /// Waits for a generation after `seen`; takes a seat in its job if one is left and works on it. Returns whether
    /// it did (then `attached` counts this worker).
    private func join(after seen: inout Int) -> Bool {
        lock.lock()
        while generation.load(ordering: .acquiring) == seen { lock.wait() }
        seen = generation.load(ordering: .acquiring)
        guard seats > 0, let current = job else { lock.unlock(); return false }
        seats -= 1
        attached.wrappingAdd(1, ordering: .relaxed)
        lock.unlock()
        current.work()
        return true
    }
}

@inline(__always)
private func spinPause() { swrt_cpu_relax() }

/// The caller's wait for the workers still inside a job: spins (a part usually ends within microseconds), then
/// gives its core away on every check, so that on an oversubscribed machine (more ranks x threads than cores) a
/// worker that the scheduler descheduled mid-part gets the core instead of the caller spinning out its time slice.
/// With a core per thread, `sched_yield` returns at once (nothing else is runnable).
@inline(__always)
private func spinThenYield(_ ready: () -> Bool) {
    var spins = 0
    while !ready() {
        if spins < 4_000 { spinPause(); spins += 1 } else { sched_yield() }
    }
}
