import Foundation
import XCTest
import AdaptIRCore

/// `Fixtures/eval_fixtures.json`, written by `Fixtures/make_eval_fixtures.py`.
func loadEvalFixtures(file: StaticString = #filePath) throws -> [String: Any] {
    let url = URL(fileURLWithPath: "\(file)").deletingLastPathComponent()
        .appendingPathComponent("Fixtures/eval_fixtures.json")
    let data = try Data(contentsOf: url)
    return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
}

func doubles(_ any: Any?) -> [Double] { (any as? [NSNumber])?.map(\.doubleValue) ?? [] }

final class MetricsTests: XCTestCase {
    static let combos: [(String, Bool, Int)] = [("rgb_border0", false, 0), ("y_border0", true, 0), ("y_border4", true, 4)]

    private func check(_ out: Tensor, _ gt: Tensor, _ results: [String: Any], _ label: String) throws {
        for (key, y, bd) in Self.combos {
            let exp = doubles(results[key])
            XCTAssertEqual(exp.count, 2)
            let q = psnrSSIM(output: out, target: gt, yChannel: y, border: bd)
            XCTAssertEqual(q.psnr, exp[0], accuracy: 1e-9 * abs(exp[0]), "\(label) \(key) psnr")
            XCTAssertEqual(q.ssim, exp[1], accuracy: 1e-9, "\(label) \(key) ssim")
        }
    }

    /// Integer-coded images (value k / 4096, exact in Float) with values outside [0, 1], plus overrides by Float
    /// values with x*255 = n + 0.5 exactly (n even), which only round-half-to-even reproduces.
    func testAgainstNumpyFixtures() throws {
        let fx = try loadEvalFixtures()
        let cases = try XCTUnwrap(fx["metrics"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 2)
        for c in cases {
            let h = c["h"] as! Int, w = c["w"] as! Int, scale = Float(c["scale"] as! Int)
            let gt = Tensor(shape: [h, w, 3], doubles(c["gt"]).map { Float($0) / scale })
            let out = Tensor(shape: [h, w, 3], doubles(c["out"]).map { Float($0) / scale })
            for (key, img) in [("gt_ties", gt), ("out_ties", out)] {
                let ties = try XCTUnwrap(c[key] as? [[NSNumber]])
                XCTAssertFalse(ties.isEmpty)
                for t in ties { img.data[t[0].intValue] = Float(bitPattern: t[1].uint32Value) }
            }
            try check(out, gt, c["results"] as! [String: Any], "\(h)x\(w)")
        }
    }

    /// The independent PyTorch fixture `/work/shared/fixtures/metrics.h5` (copied into the JSON by the generator).
    func testAgainstPyTorchFixture() throws {
        let fx = try loadEvalFixtures()
        guard let c = fx["metrics_h5"] as? [String: Any] else { throw XCTSkip("metrics.h5 was not copied") }
        let h = c["h"] as! Int, w = c["w"] as! Int
        func bits(_ key: String) -> [Float] { (c[key] as! [NSNumber]).map { Float(bitPattern: $0.uint32Value) } }
        let gt = Tensor(shape: [h, w, 3], bits("gt_bits")), out = Tensor(shape: [h, w, 3], bits("out_bits"))
        try check(out, gt, c["results"] as! [String: Any], "metrics.h5")
    }

    func testIdenticalImages() {
        var rng = TestRNG(seed: 7)
        let img = rng.tensor([23, 31, 3])
        for i in 0..<img.count { img.data[i] = 0.5 + 0.5 * img.data[i] }
        for (_, y, bd) in Self.combos {
            let q = psnrSSIM(output: img, target: img.copy(), yChannel: y, border: bd)
            XCTAssertEqual(q.psnr, .infinity)
            XCTAssertEqual(q.ssim, 1, accuracy: 1e-12)
        }
    }

    /// Hand-checked quantisation: an exact Float tie x*255 = n + 0.5 with n even rounds to n (half to even),
    /// values outside [0, 1] clamp, and the BT.601 Y value.
    func testQuantisationAndY() throws {
        var tie: Float?
        search: for n in stride(from: 0, to: 255, by: 2) {
            var x = Float((Double(n) + 0.5) / 255).nextDown.nextDown.nextDown
            for _ in 0..<7 {
                if x * 255 == Float(n) + 0.5 { tie = x; break search }
                x = x.nextUp
            }
        }
        let x = try XCTUnwrap(tie)
        let n = Double((x * 255).rounded(.down))
        XCTAssertEqual(n.truncatingRemainder(dividingBy: 2), 0)
        let img = Tensor(shape: [1, 1, 3], [x, -0.3, 1.7])
        let m = metricImage(img, yChannel: false, border: 0)
        XCTAssertEqual(m.planes.map { $0[0] }, [n, 0, 255])
        let yImg = metricImage(img, yChannel: true, border: 0)
        XCTAssertEqual(yImg.planes.count, 1)
        XCTAssertEqual(yImg.planes[0][0], 16 + (65.481 * n + 24.966 * 255) / 255, accuracy: 1e-12)
    }

    func testPSNRFormula() {
        // Constant difference of one grey level on every value: MSE = 1 -> PSNR = 20 log10(255).
        let a = Tensor(shape: [12, 12, 3], repeating: 100 / 255), b = Tensor(shape: [12, 12, 3], repeating: 101 / 255)
        let q = psnrSSIM(output: a, target: b, yChannel: false, border: 0)
        XCTAssertEqual(q.psnr, 20 * log10(255.0), accuracy: 1e-12)
        let c = chwToHWC(Tensor(shape: [3, 1, 2], [1, 2, 3, 4, 5, 6]))
        XCTAssertEqual(c.shape, [1, 2, 3])
        XCTAssertEqual(c.toArray(), [1, 3, 5, 2, 4, 6])
    }
}
