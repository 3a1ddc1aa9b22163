import XCTest
import AdaptIRCore

final class SampleRNGTests: XCTestCase {
    /// Random123's published known-answer vectors for Philox4x32-10 (tests/kat_vectors).
    func testPhiloxKnownAnswers() {
        let cases: [((UInt32, UInt32, UInt32, UInt32), (UInt32, UInt32), [UInt32])] = [
            ((0, 0, 0, 0), (0, 0), [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8]),
            ((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), (0xffff_ffff, 0xffff_ffff),
             [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd]),
            ((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), (0xa409_3822, 0x299f_31d0),
             [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1]),
        ]
        for (ctr, key, want) in cases {
            let o = Philox4x32.block(ctr, key: key)
            XCTAssertEqual([o.0, o.1, o.2, o.3], want)
        }
    }

    /// The stream is Philox at counter (block, stream, index, epoch), key (seed lo, seed hi).
    func testStreamLayout() {
        let seed: UInt64 = 0x0123_4567_89ab_cdef
        var r = SampleRNG(seed: seed, epoch: 3, index: 41, stream: .augment)
        let words = (0..<8).map { _ in r.next32() }
        let b0 = Philox4x32.block((0, 1, 41, 3), key: (0x89ab_cdef, 0x0123_4567))
        let b1 = Philox4x32.block((1, 1, 41, 3), key: (0x89ab_cdef, 0x0123_4567))
        XCTAssertEqual(words, [b0.0, b0.1, b0.2, b0.3, b1.0, b1.1, b1.2, b1.3])
    }

    /// A sample's draws depend only on (seed, epoch, index, stream): not on what was drawn before, or for whom.
    func testIndependenceOfOrder() {
        func draws(_ i: Int, _ e: Int) -> [UInt64] {
            var r = SampleRNG(seed: 9, epoch: e, index: i, stream: .crop)
            return (0..<5).map { _ in r.next() }
        }
        let forward = (0..<50).map { draws($0, 2) }
        let backward = (0..<50).reversed().map { draws($0, 2) }.reversed()
        XCTAssertEqual(forward, Array(backward))
        // Neighbouring indices, epochs, streams and seeds give different draws.
        XCTAssertNotEqual(draws(0, 2), draws(1, 2))
        XCTAssertNotEqual(draws(0, 2), draws(0, 3))
        var a = SampleRNG(seed: 9, epoch: 2, index: 0, stream: .augment)
        var b = SampleRNG(seed: 10, epoch: 2, index: 0, stream: .crop)
        XCTAssertNotEqual(a.next(), draws(0, 2)[0])
        XCTAssertNotEqual(b.next(), draws(0, 2)[0])
    }

    func testDistributions() {
        var r = SampleRNG(seed: 1, epoch: 0, index: 0, stream: .degrade)
        var s = 0.0, s2 = 0.0
        let n = 20000
        for _ in 0..<n { let x = r.normal(); s += x; s2 += x * x }
        XCTAssertEqual(s / Double(n), 0, accuracy: 0.03)
        XCTAssertEqual(s2 / Double(n), 1, accuracy: 0.04)
        var hist = [Int](repeating: 0, count: 5)
        for _ in 0..<10000 { hist[r.below(5)] += 1 }
        for h in hist { XCTAssert((1850...2150).contains(h), "below(5) histogram \(hist)") }
        for _ in 0..<1000 { let u = r.unitFloat(); XCTAssert(u >= 0 && u < 1) }
    }
}
