import Foundation
import XCTest
import AdaptIRCore

/// Nearest-neighbour upsampling of windows [B, C, 48, 48] by s (np.kron(p, ones(s, s))): a position-independent
/// linear "model" for which the chop must be a partition of unity.
func kronUpsample(_ x: Tensor, _ s: Int) -> Tensor {
    let B = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    let y = Tensor(uninitialized: [B, C, H * s, W * s])
    let xp = x.data, yp = y.data
    for bc in 0..<(B * C) { for r in 0..<(H * s) { for q in 0..<(W * s) {
        yp[(bc * H * s + r) * W * s + q] = xp[(bc * H + r / s) * W + q / s]
    } } }
    return y
}

/// The fixture model of make_eval_fixtures.py, per window p [C, 48, 48]:
/// y[c, R, Q] = p[c, R/s, Q/s] (1 + 0.01 R - 0.004 Q) + 0.1 mean(p[c]) + 0.05 mean(p) + 0.001 Q.
func fixtureModel(_ x: Tensor, _ s: Int) -> Tensor {
    let B = x.shape[0], C = x.shape[1], P = x.shape[2]
    let up = kronUpsample(x, s)
    let Ps = P * s
    let xp = x.data, yp = up.data
    for b in 0..<B {
        var chMean = [Double](repeating: 0, count: C)
        for c in 0..<C {
            var t = 0.0
            for i in 0..<(P * P) { t += Double(xp[(b * C + c) * P * P + i]) }
            chMean[c] = t / Double(P * P)
        }
        let all = chMean.reduce(0, +) / Double(C)
        for c in 0..<C {
            let add = 0.1 * chMean[c] + 0.05 * all
            for R in 0..<Ps { for Q in 0..<Ps {
                let k = ((b * C + c) * Ps + R) * Ps + Q
                yp[k] = Float(Double(yp[k]) * (1 + 0.01 * Double(R) - 0.004 * Double(Q)) + add + 0.001 * Double(Q))
            } }
        }
    }
    return up
}

/// x[c, i, j] = Float(0.5 + 0.4 sin(0.37 i + 0.011 j^2 + 0.05 i j + 1.3 c)), as `chop_input` in the generator.
func chopInput(_ h: Int, _ w: Int, channels C: Int = 3) -> Tensor {
    let t = Tensor(uninitialized: [C, h, w])
    for c in 0..<C { for i in 0..<h { for j in 0..<w {
        let (di, dj, dc) = (Double(i), Double(j), Double(c))
        t.data[(c * h + i) * w + j] = Float(0.5 + 0.4 * sin(0.37 * di + 0.011 * dj * dj + 0.05 * di * dj + 1.3 * dc))
    } } }
    return t
}

final class ChopTests: XCTestCase {
    /// Identity (kron-upsample) model: the chop returns exactly the upsampled input (partition of unity), for sizes
    /// whose (h-48), (w-48) are and are not multiples of 12, and s = 1...4.
    func testIdentityModelIsExact() {
        var rng = TestRNG(seed: 11)
        for (h, w) in [(61, 75), (100, 77), (49, 61), (48, 48), (125, 120), (60, 72)] {
            let x = rng.tensor([3, h, w])
            for s in 1...4 {
                let y = forwardChop(x, scale: s) { kronUpsample($0, s) }
                XCTAssertEqual(y.shape, [3, h * s, w * s])
                let ref = kronUpsample(Tensor(shape: [1, 3, h, w], x.toArray()), s)
                XCTAssertEqual(y.toArray(), ref.toArray(), "(\(h), \(w), s=\(s))")
            }
        }
    }

    /// Non-trivial, position- and content-dependent model against the numpy port of chop_check.py: every row sum,
    /// every column sum and ~200 sampled pixels per case, relative tolerance 1e-5.
    func testAgainstNumpyFixtures() throws {
        let fx = try loadEvalFixtures()
        let cases = try XCTUnwrap(fx["chop"] as? [[String: Any]])
        XCTAssertEqual(cases.count, 4)
        for c in cases {
            let h = c["h"] as! Int, w = c["w"] as! Int, s = c["s"] as! Int
            let label = "(\(h), \(w), s=\(s))"
            let y = forwardChop(chopInput(h, w), scale: s, batchSize: 7) { fixtureModel($0, s) }
            XCTAssertEqual(y.shape, [3, h * s, w * s], label)
            let oh = h * s, ow = w * s, p = y.data
            let rows = (c["rowsum"] as! [Any]).map { doubles($0) }, cols = (c["colsum"] as! [Any]).map { doubles($0) }
            for ch in 0..<3 {
                XCTAssertEqual(rows[ch].count, oh)
                XCTAssertEqual(cols[ch].count, ow)
                for r in 0..<oh {
                    var t = 0.0
                    for q in 0..<ow { t += Double(p[(ch * oh + r) * ow + q]) }
                    XCTAssertEqual(t, rows[ch][r], accuracy: 1e-5 * abs(rows[ch][r]), "\(label) row \(r)")
                }
                for q in 0..<ow {
                    var t = 0.0
                    for r in 0..<oh { t += Double(p[(ch * oh + r) * ow + q]) }
                    XCTAssertEqual(t, cols[ch][q], accuracy: 1e-5 * abs(cols[ch][q]), "\(label) col \(q)")
                }
            }
            for smp in c["samples"] as! [[NSNumber]] {
                let ch = smp[0].intValue, r = smp[1].intValue, q = smp[2].intValue, v = smp[3].doubleValue
                XCTAssertEqual(Double(p[(ch * oh + r) * ow + q]), v, accuracy: 1e-5 * abs(v), "\(label) [\(ch), \(r), \(q)]")
            }
        }
    }

    /// The batch size only changes how windows are grouped into model calls.
    func testBatchSizeDoesNotChangeOutput() {
        for (h, w, s) in [(61, 75, 2), (100, 77, 1)] {
            let x = chopInput(h, w)
            var calls = 0
            let a = forwardChop(x, scale: s, batchSize: 1) { calls += 1; return fixtureModel($0, s) }
            let b = forwardChop(x, scale: s, batchSize: 64) { fixtureModel($0, s) }
            XCTAssertEqual(a.toArray(), b.toArray())
            // distinct windows: main grid plus bottom/right strips and corner when not on the grid
            let nH = (h - 48 - (h - 48) % 12) / 12 + 1, nW = (w - 48 - (w - 48) % 12) / 12 + 1
            let hc = (h - 48) % 12 != 0, wc = (w - 48) % 12 != 0
            let expected = nH * nW + (hc ? nW : 0) + (wc ? nH : 0) + (hc || wc ? 1 : 0)
            XCTAssertEqual(calls, expected)
        }
    }

    /// Windows go to the model in [B, C, 48, 48] batches of at most batchSize.
    func testBatchShapes() {
        let x = chopInput(70, 90, channels: 1)
        var sizes: [Int] = []
        _ = forwardChop(x, scale: 1, batchSize: 5) { t in
            XCTAssertEqual(Array(t.shape[1...]), [1, 48, 48])
            sizes.append(t.shape[0])
            return t.copy()
        }
        XCTAssertTrue(sizes.dropLast().allSatisfy { $0 == 5 })
        XCTAssertTrue(sizes.last! >= 1 && sizes.last! <= 5)
    }
}
