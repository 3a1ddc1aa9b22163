import XCTest
import AdaptIRCore
import Foundation

/// Augmentation modes against numpy (Fixtures/augment/gen_augment.py: the paper's data_augmentation on a 3x4x3
/// image; non-square so a swapped axis or a rotation in the wrong sense shows up).
final class AugmentTests: XCTestCase {
    struct Entry: Decodable { let shape: [Int]; let values: [UInt8] }

    func fixture() throws -> [String: Entry] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/augment/augment_modes.json")
        return try JSONDecoder().decode([String: Entry].self, from: Data(contentsOf: url))
    }

    func testEveryModeMatchesNumpy() throws {
        let f = try fixture()
        let input = f["input"]!
        for mode in 0...7 {
            let want = f[String(mode)]!
            let got = Augment.apply(mode: mode, input.values, height: input.shape[0], width: input.shape[1], channels: 3)
            XCTAssertEqual([got.height, got.width, 3], want.shape, "mode \(mode) shape")
            XCTAssertEqual(got.pixels, want.values, "mode \(mode) pixels")
        }
    }

    func testModesAreDistinctAndRandomModeCoversOneToSeven() throws {
        let input = try fixture()["input"]!
        var seen = Set<[UInt8]>()
        for mode in 0...7 { seen.insert(Augment.apply(mode: mode, input.values, height: 3, width: 4).pixels) }
        XCTAssertEqual(seen.count, 8, "the 8 dihedral transforms are distinct on a generic image")
        var counts = [Int](repeating: 0, count: 8)
        for i in 0..<7000 {
            var rng = SampleRNG(seed: 5, epoch: 0, index: i, stream: .augment)
            counts[Augment.randomMode(&rng)] += 1
        }
        XCTAssertEqual(counts[0], 0, "identity is never drawn (paper's code)")
        for m in 1...7 { XCTAssert((850...1150).contains(counts[m]), "mode \(m) drawn \(counts[m]) / 7000 times") }
    }
}
