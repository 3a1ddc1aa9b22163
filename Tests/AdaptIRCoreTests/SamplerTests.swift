import XCTest
import AdaptIRCore

final class SamplerTests: XCTestCase {
    func shards(_ n: Int, _ p: Int, dropLast: Bool = false, shuffle: Bool = true, epoch: Int = 0) -> [[Int]] {
        (0..<p).map { DistributedSampler(count: n, ranks: p, rank: $0, shuffle: shuffle, seed: 42, dropLast: dropLast)
            .indices(epoch: epoch) }
    }

    func testPermutationIsAPermutation() {
        let s = DistributedSampler(count: 101, ranks: 1, rank: 0, seed: 3)
        XCTAssertEqual(s.permutation(epoch: 4).sorted(), Array(0..<101))
        XCTAssertNotEqual(s.permutation(epoch: 4), Array(0..<101))
        let plain = DistributedSampler(count: 10, ranks: 3, rank: 1, shuffle: false, seed: 3)
        // torch: range(10) padded with [0, 1] to 12, rank 1 takes positions 1, 4, 7, 10.
        XCTAssertEqual(plain.indices(epoch: 0), [1, 4, 7, 0])
        XCTAssertEqual(plain.padding, 2)
    }

    /// Disjoint strided shards whose union (in position order) is the padded permutation, equal counts per rank.
    func testShardsPartitionThePaddedPermutation() {
        for (n, p) in [(10, 3), (12, 4), (7, 2), (2, 4), (1000, 8)] {
            let sh = shards(n, p, epoch: 1)
            let s0 = DistributedSampler(count: n, ranks: p, rank: 0, seed: 42)
            XCTAssertEqual(s0.samplesPerRank, (n + p - 1) / p)
            XCTAssertEqual(s0.totalSize, s0.samplesPerRank * p)
            XCTAssertEqual(s0.padding, s0.totalSize - n)
            for r in 0..<p { XCTAssertEqual(sh[r].count, s0.samplesPerRank, "n \(n) p \(p) rank \(r)") }
            var interleaved: [Int] = []
            for k in 0..<s0.samplesPerRank { for r in 0..<p { interleaved.append(sh[r][k]) } }
            let perm = s0.permutation(epoch: 1)
            XCTAssertEqual(interleaved, s0.paddedPermutation(epoch: 1))
            XCTAssertEqual(Array(interleaved.prefix(n)), perm, "union is the permutation")
            // padding repeats the first indices of the permutation (cyclically if it is longer than n)
            let pad = Array(interleaved.dropFirst(n))
            XCTAssertEqual(pad, (0..<s0.padding).map { perm[$0 % n] })
            // without the padding the shards are disjoint
            XCTAssertEqual(Set(interleaved.prefix(n)).count, n)
        }
    }

    func testEpochsDifferAndRanksAgree() {
        let a = DistributedSampler(count: 50, ranks: 2, rank: 0, seed: 42)
        let b = DistributedSampler(count: 50, ranks: 2, rank: 1, seed: 42)
        XCTAssertNotEqual(a.permutation(epoch: 0), a.permutation(epoch: 1))
        XCTAssertEqual(a.permutation(epoch: 5), b.permutation(epoch: 5))
        XCTAssertEqual(a.indices(epoch: 5), a.indices(epoch: 5))
        XCTAssertNotEqual(DistributedSampler(count: 50, ranks: 2, rank: 0, seed: 43).permutation(epoch: 0),
                          a.permutation(epoch: 0))
    }

    func testDropLast() {
        let n = 10, p = 3
        let sh = shards(n, p, dropLast: true)
        let s0 = DistributedSampler(count: n, ranks: p, rank: 0, seed: 42, dropLast: true)
        XCTAssertEqual(s0.samplesPerRank, 3)  // torch: ceil((10 - 3) / 3) = 3
        XCTAssertEqual(s0.padding, 0)
        XCTAssertEqual(s0.dropped, 1)
        let all = sh.flatMap { $0 }
        XCTAssertEqual(Set(all).count, 9)
        XCTAssertEqual(Set(all), Set(s0.permutation(epoch: 0).prefix(9)))
        for r in 0..<p { XCTAssertEqual(sh[r].count, 3) }
        // divisible: no drop
        XCTAssertEqual(DistributedSampler(count: 12, ranks: 3, rank: 0, seed: 1, dropLast: true).samplesPerRank, 4)
    }
}
