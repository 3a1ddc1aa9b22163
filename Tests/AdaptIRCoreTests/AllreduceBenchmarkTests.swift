import AdaptIRCore
import XCTest

/// The untimed parts of `adaptir-dist bench allreduce`: sizes, their parsing, the bandwidth formulas and the table.
final class AllreduceBenchmarkTests: XCTestCase {
    func testDefaultSizesAreTheTrainersAllreduceSizes() {
        let sizes = AllreduceBenchmark.defaultSizes
        XCTAssertEqual(sizes.map(\.label), ["small adaptir", "ipt adaptir", "small full", "ipt full"])
        // AdaptIR: 697,656 floats = 2.79 MB at ipt. Full fine-tuning reduces the backbone role only: the 24 values of
        // the fixed MeanShift convs are counted in the 118,892,394 parameters but never trained.
        XCTAssertEqual(sizes.map(\.floats), [7_596, 697_656, 1_820_514, 118_892_370])
        XCTAssertEqual(sizes[1].bytes, 2_790_624)
        XCTAssertEqual(sizes[3].bytes, 475_569_480)
    }

    func testParseSizes() throws {
        let s = try AllreduceBenchmark.parseSizes("7596, 697_656,ipt-full,Small-Adaptir,ipt full")
        XCTAssertEqual(s.map(\.floats), [7_596, 697_656, 118_892_370, 7_596, 118_892_370])
        XCTAssertEqual(s.map(\.label), ["7596", "697656", "ipt full", "small adaptir", "ipt full"])
        for bad in ["", "0", "-5", "+5", "12,", "abc", "1.5", "ipt-frozen", "7596,,1"] {
            XCTAssertThrowsError(try AllreduceBenchmark.parseSizes(bad), "'\(bad)' was accepted")
        }
    }

    func testBusBandwidthIsTwoTimesPMinusOneOverPOfAlgorithmicBandwidth() {
        XCTAssertEqual(AllreduceBenchmark.busBandwidthFactor(ranks: 1), 0)
        XCTAssertEqual(AllreduceBenchmark.busBandwidthFactor(ranks: 2), 1)
        XCTAssertEqual(AllreduceBenchmark.busBandwidthFactor(ranks: 4), 1.5)
        XCTAssertEqual(AllreduceBenchmark.busBandwidthFactor(ranks: 8), 1.75)
        XCTAssertEqual(AllreduceBenchmark.algorithmicBandwidth(bytes: 2_790_624, seconds: 0.001), 2_790_624_000, accuracy: 1e-3)
        XCTAssertEqual(AllreduceBenchmark.busBandwidth(bytes: 1_000_000, seconds: 0.5, ranks: 8), 3_500_000, accuracy: 1e-6)
        XCTAssertEqual(AllreduceBenchmark.algorithmicBandwidth(bytes: 10, seconds: 0), 0)
    }

    func testMedianAndResult() {
        XCTAssertEqual(AllreduceBenchmark.median([]), 0)
        XCTAssertEqual(AllreduceBenchmark.median([3, 1, 2]), 2)
        XCTAssertEqual(AllreduceBenchmark.median([4, 1, 3, 2]), 2.5)
        let r = AllreduceBenchmark.Result(size: .init(label: "x", floats: 250_000), ranks: 4, warmups: 1, times: [0.004, 0.001, 0.002])
        XCTAssertEqual(r.repeats, 3)
        XCTAssertEqual(r.bestSeconds, 0.001)
        XCTAssertEqual(r.medianSeconds, 0.002)
        XCTAssertEqual(r.algorithmicBandwidth, 5e8, accuracy: 1e-3)
        XCTAssertEqual(r.busBandwidth, 7.5e8, accuracy: 1e-3)
        let table = AllreduceBenchmark.markdownTable([r])
        XCTAssert(table.contains("| x | 250,000 | 1,000,000 | 4 | 3 | 2.000 | 1.000 | 0.500 | 0.750 |"), table)
        let solo = AllreduceBenchmark.Result(size: .init(label: "y", floats: 1), ranks: 1, warmups: 1, times: [1e-6])
        XCTAssert(AllreduceBenchmark.markdownTable([solo]).contains("| n/a | n/a |"))
    }

    func testGrouped() {
        XCTAssertEqual(0.grouped, "0")
        XCTAssertEqual(999.grouped, "999")
        XCTAssertEqual(1000.grouped, "1,000")
        XCTAssertEqual(118_892_370.grouped, "118,892,370")
        XCTAssertEqual((-1234).grouped, "-1,234")
    }
}
