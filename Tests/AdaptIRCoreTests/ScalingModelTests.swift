import XCTest
import AdaptIRCore

/// The allreduce and step cost model of the scaling study (`adaptir-dist scaling-model`).
final class ScalingModelTests: XCTestCase {
    let shm = LinkCost(latency: 5e-6, secondsPerByte: 1 / 5e9)
    let net = LinkCost.network(gigabits: 1, efficiency: 0.9, latency: 50e-6)

    func testNothingMovesOnOneRank() {
        XCTAssertEqual(AllreduceCostModel.seconds(bytes: 1e9, nodes: 1, ranksPerNode: 1, intra: shm, inter: net), 0)
    }

    /// Rabenseifner with block placement: the shared-memory part depends on the ranks per node, the network part
    /// on the nodes, each with 2(p-1)/p of the bytes and 2 log2 p messages.
    func testTermsOfEachLink() {
        let n = 2.79e6
        let twoNodes = AllreduceCostModel.seconds(bytes: n, nodes: 2, ranksPerNode: 1, intra: shm, inter: net)
        XCTAssertEqual(twoNodes, 2 * 50e-6 + n * 8 / 0.9e9, accuracy: 1e-12)
        let fourByFour = AllreduceCostModel.seconds(bytes: n, nodes: 4, ranksPerNode: 4, intra: shm, inter: net)
        let expected = (4 * 5e-6 + 1.5 * n / 5e9) + (4 * 50e-6 + 1.5 * n * 8 / 0.9e9)
        XCTAssertEqual(fourByFour, expected, accuracy: 1e-12)
        XCTAssertEqual(net.bandwidth, 0.9e9 / 8, accuracy: 1)
    }

    func testFitRecoversLatencyAndBandwidth() throws {
        let truth = LinkCost(latency: 40e-6, secondsPerByte: 1 / 1.1e8)
        let samples = [3e4, 2.8e6, 7.3e6, 4.76e8].flatMap { bytes in [2, 4].map { nodes -> AllreduceCostModel.Sample in
            let t = AllreduceCostModel.terms(bytes: bytes, parts: nodes)
            return .init(latencyTerms: t.latency, byteTerms: t.bytes, seconds: t.latency * truth.latency + t.bytes * truth.secondsPerByte)
        } }
        let fit = try XCTUnwrap(AllreduceCostModel.fit(samples))
        XCTAssertEqual(fit.latency, truth.latency, accuracy: 1e-9)
        XCTAssertEqual(fit.secondsPerByte, truth.secondsPerByte, accuracy: 1e-3 * truth.secondsPerByte)
    }

    /// With the latency held, the time per byte is recovered from the large sizes alone, and a held latency that is
    /// too large is not compensated by a negative time per byte.
    func testFitBandwidthWithHeldLatency() throws {
        let truth = LinkCost(latency: 15e-6, secondsPerByte: 1 / 1.1e8)
        let samples = [2.8e6, 7.3e6, 4.76e8].map { bytes -> AllreduceCostModel.Sample in
            let t = AllreduceCostModel.terms(bytes: bytes, parts: 2)
            return .init(latencyTerms: t.latency, byteTerms: t.bytes, seconds: t.latency * truth.latency + t.bytes * truth.secondsPerByte)
        }
        let fit = try XCTUnwrap(AllreduceCostModel.fitBandwidth(samples, latency: truth.latency))
        XCTAssertEqual(fit.latency, truth.latency)
        XCTAssertEqual(fit.secondsPerByte, truth.secondsPerByte, accuracy: 1e-6 * truth.secondsPerByte)
        XCTAssertEqual(try XCTUnwrap(AllreduceCostModel.fitBandwidth(samples, latency: 10)).secondsPerByte, 0)
        XCTAssertNil(AllreduceCostModel.fitBandwidth([], latency: 0))
    }

    /// Data that would need a negative latency gets latency 0 and the best time per byte, never a negative term.
    func testFitNeverGoesNegative() throws {
        let samples: [AllreduceCostModel.Sample] = [.init(latencyTerms: 2, byteTerms: 1e3, seconds: 1e-6),
                                                    .init(latencyTerms: 2, byteTerms: 1e8, seconds: 1.0)]
        let fit = try XCTUnwrap(AllreduceCostModel.fit(samples))
        XCTAssertGreaterThanOrEqual(fit.latency, 0)
        XCTAssertGreaterThan(fit.secondsPerByte, 0)
        XCTAssertNil(AllreduceCostModel.fit([]))
    }

    func testStepPredictionAndNodesToReach() throws {
        // AdaptIR-like: 1.6 s per patch, 2.79 MB; full-like: slower and 476 MB.
        let adapter = StepCostModel(computePerPatch: 1.6, fixedSeconds: 0.01, gradientBytes: 2.79e6)
        let full = StepCostModel(computePerPatch: 2.6, fixedSeconds: 0.3, gradientBytes: 4.76e8)
        let p = adapter.predict(batchPerRank: 2, nodes: 8, ranksPerNode: 16, intra: shm, inter: net)
        XCTAssertEqual(p.stepSeconds, 3.21 + p.allreduceSeconds, accuracy: 1e-9)
        XCTAssertEqual(p.patchesPerSecond, 256 / p.stepSeconds, accuracy: 1e-9)
        XCTAssertEqual(p.efficiency, 3.21 / p.stepSeconds, accuracy: 1e-12)
        let q = full.predict(batchPerRank: 2, nodes: 8, ranksPerNode: 16, intra: shm, inter: net)
        XCTAssertLessThan(q.efficiency, p.efficiency, "476 MB over 1 Gbit/s costs more than 2.79 MB")
        XCTAssertGreaterThan(q.commFraction, 0.5)

        let n = try XCTUnwrap(adapter.nodesToReach(111, batchPerRank: 2, ranksPerNode: 16, intra: shm, inter: net))
        XCTAssertGreaterThanOrEqual(adapter.predict(batchPerRank: 2, nodes: n, ranksPerNode: 16, intra: shm, inter: net).patchesPerSecond, 111)
        XCTAssertLessThan(adapter.predict(batchPerRank: 2, nodes: n - 1, ranksPerNode: 16, intra: shm, inter: net).patchesPerSecond, 111)
        XCTAssertNil(adapter.nodesToReach(1e12, batchPerRank: 2, ranksPerNode: 16, intra: shm, inter: net, maxNodes: 64))
        XCTAssertEqual(adapter.nodesToReach(1, batchPerRank: 2, ranksPerNode: 16, intra: shm, inter: net), 1)
    }
}
