import AdaptIRCore
import CMPI
import Foundation
import XCTest

/// Collective tests that pass on any number of ranks: `swift test --filter MultiRankTests` runs them on 1 rank, and
/// `scripts/test-multirank.sh` runs the test bundle under `mpirun -n 2` and `-n 4`. Every rank checks its own results
/// against closed forms, so a wrong value on any rank fails that rank (and mpirun exits non-zero).
final class MultiRankTests: XCTestCase {
    let comm = Communicator.world

    /// Under mpirun, a rank that exits without MPI_Finalize counts as an abnormal termination and fails the job, so
    /// MPI is finalised once after the whole bundle has run (never between tests: MPI cannot be re-initialised).
    override class func setUp() {
        super.setUp()
        MPIFinalizeObserver.install()
    }

    /// Prints the per-rank summary line that shows in the test log which rank counts actually ran.
    private func report(_ what: String) {
        let failed = (testRun?.failureCount ?? 0) + (testRun?.unexpectedExceptionCount ?? 0)
        print("MultiRankTests: rank \(comm.rank) of \(comm.size) \(failed == 0 ? "ok" : "FAILED") (\(what))")
        fflush(nil)
    }

    /// Σ_{r<p} (r+1) = p(p+1)/2.
    private var rankWeightSum: Int { comm.size * (comm.size + 1) / 2 }

    func testIdentity() throws {
        XCTAssertGreaterThanOrEqual(comm.size, 1)
        XCTAssert((0..<comm.size).contains(comm.rank))
        XCTAssertEqual(comm.isRoot, comm.rank == 0)
        XCTAssert((0..<comm.localSize).contains(comm.localRank), "local rank \(comm.localRank) of \(comm.localSize)")
        XCTAssertLessThanOrEqual(comm.localSize, comm.size)
        XCTAssertFalse(comm.processorName.isEmpty)
        XCTAssertGreaterThanOrEqual(comm.threadLevel, Int32(MPI_THREAD_SERIALIZED))
        if let s = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init) {
            XCTAssertEqual(comm.size, s)
        }
        // Every rank must see a distinct rank id, and the local ranks on this single node must be 0..<size.
        let ranks = try comm.allgather(UInt64(comm.rank))
        XCTAssertEqual(ranks, (0..<comm.size).map(UInt64.init))
        let locals = try comm.allgather(Int64(comm.localRank))
        XCTAssertEqual(Set(locals).count, comm.size, "local ranks \(locals) not distinct on one node")
        XCTAssertFalse(Communicator.errorString(Int32(MPI_ERR_COUNT)).isEmpty)
        report("identity, local rank \(comm.localRank) of \(comm.localSize) on \(comm.processorName)")
    }

    func testAllreduceBenchmarkChecksTheSumAndAgreesOnRepeats() throws {
        // `bench allreduce` checks its first call on every rank and all ranks must run the same number of calls
        // (rank 0 decides); the times are the slowest rank's, so every rank reports the same ones. No timing asserted.
        let r = try AllreduceBenchmark.measure(comm: comm, size: .init(label: "t", floats: 1001), warmup: 2, repeats: 3,
                                               maxSeconds: 600)
        XCTAssertEqual(r.warmups, 2)
        XCTAssertEqual(r.repeats, 3)
        XCTAssertEqual(r.ranks, comm.size)
        let medians = try comm.allgather(r.medianSeconds)
        XCTAssertEqual(Set(medians).count, 1, "ranks report different medians \(medians)")
        report("allreduce benchmark, 3 repeats of 1001 floats")
    }

    func testAllreduceSumFloat() throws {
        // Rank r contributes (r+1)·[1..n]; the sum is p(p+1)/2·[1..n] (small integers, exact in Float).
        let n = 1000
        var buf = (0..<n).map { Float((comm.rank + 1) * ($0 + 1)) }
        try buf.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        let w = rankWeightSum
        for i in 0..<n where buf[i] != Float(w * (i + 1)) {
            XCTFail("allreduce float [\(i)] = \(buf[i]), want \(w * (i + 1))"); break
        }
        report("allreduce sum Float n=\(n)")
    }

    /// The gradient mean in fp16/bf16 (`train --grad-dtype`): every rank ends with bit-identical values, within the
    /// format's rounding of the exact fp32 mean (one rounding per encoding and per addition, each relative to at most
    /// the sum of the magnitudes); an fp16 overflow is reported on every rank.
    func testAllreduceMeanInHalfPrecision() throws {
        let n = 5000, p = comm.size
        func contribution(_ r: Int) -> [Float] {
            var rng = SplitMix64(seed: 50 + UInt64(r))
            return (0..<n).map { _ in (rng.unitFloat() - 0.5) * powf(10, -3 * rng.unitFloat()) }
        }
        var exact = [Double](repeating: 0, count: n), magnitude = [Double](repeating: 0, count: n)
        for r in 0..<p {
            let c = contribution(r)
            for i in 0..<n { exact[i] += Double(c[i]) / Double(p); magnitude[i] += Double(abs(c[i])) / Double(p) }
        }
        for (wire, eps, tiny) in [(GradientWireType.fp32, 1e-7, 0.0), (.fp16, 1.0 / 2048, 6e-8), (.bf16, 1.0 / 256, 0.0)] {
            var buf = contribution(comm.rank), scratch: [UInt16] = []
            let finite = try buf.withUnsafeMutableBufferPointer { try comm.allreduceMean($0, wire: wire, scratch: &scratch) }
            XCTAssertTrue(finite, "\(wire)")
            var worst = 0.0
            for i in 0..<n {
                let err = abs(Double(buf[i]) - exact[i]), bound = Double(2 * p) * eps * magnitude[i] + Double(2 * p) * tiny
                worst = max(worst, err / max(bound, 1e-30))
                if err > bound { XCTFail("\(wire) [\(i)] = \(buf[i]), exact mean \(exact[i]), bound \(bound)"); break }
            }
            let hash = buf.reduce(UInt64(1469598103934665603)) { ($0 ^ UInt64($1.bitPattern)) &* 1099511628211 }
            XCTAssertEqual(try comm.ranksDiffering(hash), [], "\(wire): ranks hold different means")
            report("allreduce mean \(wire.rawValue) n=\(n), worst error \(String(format: "%.2f", worst)) of its bound")
        }
        guard p > 1 else { return }
        var big = [Float](repeating: 1e5, count: 10), scratch: [UInt16] = []
        let finite = try big.withUnsafeMutableBufferPointer { try comm.allreduceMean($0, wire: .fp16, scratch: &scratch) }
        XCTAssertFalse(finite, "a mean of 1e5 overflows fp16 (max 65504) and must be reported")
        let bfOK = try big.withUnsafeMutableBufferPointer { b -> Bool in
            for i in b.indices { b[i] = 1e5 }
            return try comm.allreduceMean(b, wire: .bf16, scratch: &scratch)
        }
        XCTAssertTrue(bfOK)
        XCTAssertEqual(big[0], 99840, "bf16 of 1e5 (8-bit mantissa)")
    }

    func testAllreduceSumDouble() throws {
        // Rank r contributes (r+1)·(i+0.5) + 1e-3·r: sum = w·(i+0.5) + 1e-3·p(p-1)/2.
        let n = 777
        var buf = (0..<n).map { Double(comm.rank + 1) * (Double($0) + 0.5) + 1e-3 * Double(comm.rank) }
        try buf.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        let w = Double(rankWeightSum), extra = 1e-3 * Double(comm.size * (comm.size - 1) / 2)
        for i in 0..<n {
            let want = w * (Double(i) + 0.5) + extra
            if abs(buf[i] - want) > 1e-9 * max(1, abs(want)) { XCTFail("allreduce double [\(i)] = \(buf[i]), want \(want)"); break }
        }
        XCTAssertEqual(try comm.allreduceSum(Double(comm.rank) + 0.25), Double(comm.size * (comm.size - 1) / 2) + 0.25 * Double(comm.size))
        report("allreduce sum Double n=\(n)")
    }

    func testAllreduceLargeTensor() throws {
        // About the AdaptIR gradient size: 700_001 floats in one Tensor. Values (r+1)·(i mod 1021) stay exact.
        let n = 700_001
        let t = Tensor(uninitialized: [n])
        let p = t.data
        for i in 0..<n { p[i] = Float((comm.rank + 1) * (i % 1021)) }
        try comm.allreduceSum(t)
        let w = rankWeightSum
        var bad = 0
        for i in 0..<n where p[i] != Float(w * (i % 1021)) {
            if bad == 0 { XCTFail("large allreduce [\(i)] = \(p[i]), want \(w * (i % 1021))") }
            bad += 1
        }
        XCTAssertEqual(bad, 0)
        report("allreduce sum Tensor n=\(n)")
    }

    func testChunkedCalls() throws {
        // Force several MPI calls per buffer (as for counts above Int32.max) and check the seams.
        let saved = comm.maxCountPerCall
        comm.maxCountPerCall = 7
        defer { comm.maxCountPerCall = saved }
        let n = 100
        var buf = (0..<n).map { Double((comm.rank + 1) * ($0 + 1)) }
        try buf.withUnsafeMutableBufferPointer { try comm.allreduceSum($0) }
        XCTAssertEqual(buf, (0..<n).map { Double(rankWeightSum * ($0 + 1)) })
        let root = comm.size - 1
        var fb = (0..<n).map { Float(comm.rank == root ? $0 * 3 : -1) }
        try fb.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
        XCTAssertEqual(fb, (0..<n).map { Float($0 * 3) })
        let s = try comm.broadcast(comm.rank == root ? String(repeating: "chunk-", count: 9) : "", root: root)
        XCTAssertEqual(s, String(repeating: "chunk-", count: 9))
        report("chunked allreduce/broadcast, 7 per call")
    }

    func testBroadcast() throws {
        for root in Set([0, comm.size - 1]).sorted() {
            // Float buffer: only root holds the payload, others hold garbage.
            let n = 4099
            var buf = (0..<n).map { comm.rank == root ? Float($0) * 0.5 + Float(root) : Float.nan }
            try buf.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
            XCTAssertEqual(buf, (0..<n).map { Float($0) * 0.5 + Float(root) }, "float broadcast from \(root)")

            let t = Tensor(shape: [2, 3], comm.rank == root ? [1, 2, 3, 4, 5, Float(root)] : [Float](repeating: 0, count: 6))
            try comm.broadcast(t, root: root)
            XCTAssertEqual(t.toArray(), [1, 2, 3, 4, 5, Float(root)])

            XCTAssertEqual(try comm.broadcast(UInt64(1000 + comm.rank), root: root), UInt64(1000 + root))
            XCTAssertEqual(try comm.broadcast(Int64(-5 - comm.rank), root: root), Int64(-5 - root))

            // Strings, bytes and Data of a length only root knows (non-ASCII to check UTF-8 handling).
            let msg = "config from rank \(root): λ=0.5, backbone=ipt_sr_x2 ✓"
            XCTAssertEqual(try comm.broadcast(comm.rank == root ? msg : "other \(comm.rank)", root: root), msg)
            XCTAssertEqual(try comm.broadcast(comm.rank == root ? "" : "nonempty", root: root), "")
            let bytes: [UInt8] = (0..<300).map { UInt8(($0 * 7 + root) & 0xff) }
            XCTAssertEqual(try comm.broadcast(comm.rank == root ? bytes : [], root: root), bytes)
            let data = Data(bytes.reversed())
            XCTAssertEqual(try comm.broadcast(comm.rank == root ? data : Data([1, 2]), root: root), data)
        }
        report("broadcast from roots \(Set([0, comm.size - 1]).sorted())")
    }

    func testAllgather() throws {
        let values = try comm.allgather(UInt64(comm.rank) &* 0x9E37_79B9_7F4A_7C15 &+ 7)
        XCTAssertEqual(values, (0..<comm.size).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 &+ 7 })
        XCTAssertEqual(try comm.allgather(Double(comm.rank) * 1.5), (0..<comm.size).map { Double($0) * 1.5 })

        // Strings of different lengths per rank, rank 0's empty.
        let mine = comm.rank == 0 ? "" : String(repeating: "r\(comm.rank)é", count: comm.rank * 3)
        let all = try comm.allgather(mine)
        XCTAssertEqual(all, (0..<comm.size).map { $0 == 0 ? "" : String(repeating: "r\($0)é", count: $0 * 3) })

        // Agreement checks name the ranks that differ from rank 0.
        XCTAssertEqual(try comm.ranksDiffering(UInt64(42)), [])
        XCTAssertEqual(try comm.ranksDiffering("same-hash"), [])
        let odd = comm.rank % 2 == 1
        XCTAssertEqual(try comm.ranksDiffering(UInt64(odd ? 1 : 0)), (0..<comm.size).filter { $0 % 2 == 1 })
        XCTAssertEqual(try comm.ranksDiffering(odd ? "b" : "a"), (0..<comm.size).filter { $0 % 2 == 1 })
        report("allgather UInt64/Double/String, ranksDiffering")
    }

    func testMaxMin() throws {
        let p = comm.size, r = comm.rank
        // Rank r holds 10 - 3r: max 10 (rank 0), min 10 - 3(p-1).
        XCTAssertEqual(try comm.allreduceMax(Int64(10 - 3 * r)), 10)
        XCTAssertEqual(try comm.allreduceMin(Int64(10 - 3 * r)), Int64(10 - 3 * (p - 1)))
        XCTAssertEqual(try comm.allreduceMax(Double(r) * 0.25 - 1), Double(p - 1) * 0.25 - 1)
        XCTAssertEqual(try comm.allreduceMin(Double(r) * 0.25 - 1), -1)
        // Element-wise on buffers: element i is (i + r) mod p.
        let n = 64
        var mx = (0..<n).map { Int64(($0 + r) % p) }, mn = mx
        try mx.withUnsafeMutableBufferPointer { try comm.allreduceMax($0) }
        try mn.withUnsafeMutableBufferPointer { try comm.allreduceMin($0) }
        XCTAssertEqual(mx, [Int64](repeating: Int64(p - 1), count: n))
        XCTAssertEqual(mn, [Int64](repeating: 0, count: n))
        try comm.barrier()
        report("allreduce max/min Int64/Double, barrier")
    }
}

/// Calls `Communicator.finalize()` when the test bundle finishes (after every test class has run).
final class MPIFinalizeObserver: NSObject, XCTestObservation, @unchecked Sendable {
    private nonisolated(unsafe) static var installed = false

    /// Registers the observer once (called from the main thread by XCTest's class setUp).
    static func install() {
        guard !installed else { return }
        installed = true
        XCTestObservationCenter.shared.addTestObserver(MPIFinalizeObserver())
    }

    func testBundleDidFinish(_ testBundle: Bundle) {
        Communicator.finalize()
    }
}

/// The watchdog's rendezvous: with all ranks on time it passes; when one rank comes late, rank 0 names it and the
/// ranks waiting to be released name rank 0 (in a job, the first report ends the job with MPI_Abort).
final class WatchdogMultiRankTests: XCTestCase {
    func testRendezvousNamesTheLateRank() throws {
        let comm = Communicator.world
        try comm.rendezvous(tag: 1, timeout: 10)
        guard comm.size > 1 else {
            print("WatchdogMultiRankTests: rank 0 of 1 ok (single process: rendezvous is a no-op)")
            return
        }
        let late = comm.size - 1
        if comm.rank == late { usleep(1_500_000) }
        let timeout = comm.rank == 0 ? 0.5 : 1.0
        XCTAssertThrowsError(try comm.rendezvous(tag: 2, timeout: timeout)) { error in
            guard let stall = error as? StallError else { return XCTFail("\(error)") }
            XCTAssertEqual(stall.missing, comm.rank == 0 ? [late] : [0])
            XCTAssertEqual(stall.rank, comm.rank)
        }
        try comm.barrier()
        print("WatchdogMultiRankTests: rank \(comm.rank) of \(comm.size) ok (late rank \(late) named by rank 0)")
    }
}
