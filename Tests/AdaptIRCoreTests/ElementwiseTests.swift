import XCTest
import AdaptIRCore

/// Naive numpy-style broadcast of a binary function, one multi-index at a time.
private func naiveBroadcast(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> (shape: [Int], values: [Float]) {
    let r = max(a.rank, b.rank)
    let ad = [Int](repeating: 1, count: r - a.rank) + a.shape
    let bd = [Int](repeating: 1, count: r - b.rank) + b.shape
    let od = (0..<r).map { max(ad[$0], bd[$0]) }
    var values: [Float] = []
    for flat in 0..<od.product {
        var rem = flat, ai = 0, bi = 0, am = 1, bm = 1
        for k in stride(from: r - 1, through: 0, by: -1) {
            let i = rem % od[k]; rem /= od[k]
            ai += (ad[k] == 1 ? 0 : i) * am; am *= ad[k]
            bi += (bd[k] == 1 ? 0 : i) * bm; bm *= bd[k]
        }
        values.append(f(a.data[ai], b.data[bi]))
    }
    return (od, values)
}

final class ElementwiseTests: XCTestCase {
    /// Broadcasting patterns the models use, plus a few general ones (a broadcast on both sides, scalar-like).
    let patterns: [([Int], [Int])] = [
        ([2, 3, 4], [2, 3, 4]),          // same shape
        ([2, 5, 3], [5, 3]),             // suffix: tokens [N, L, d] + pos [L, d]
        ([5, 3], [2, 5, 3]),             // suffix on the left operand
        ([2, 3, 4, 5], [2, 3, 1, 1]),    // per-channel [N, C, 1, 1]
        ([2, 1, 4, 5], [2, 3, 4, 5]),    // spatial gate [N, 1, H, W]
        ([3, 1, 1], [2, 3, 4, 5]),       // rank mismatch [C, 1, 1] vs [N, C, H, W]
        ([4, 1], [1, 5]),                // both sides broadcast
        ([1], [3, 4]),                   // scalar-like
        ([2, 1, 3], [4, 1]),             // interleaved
    ]

    func testForwardMatchesNaive() {
        var rng = TestRNG(seed: 11)
        for (sa, sb) in patterns {
            let a = rng.tensor(sa), b = rng.tensor(sb)
            for (name, op, f) in [("add", add, { (x: Float, y: Float) in x + y }),
                                  ("sub", sub, { (x: Float, y: Float) in x - y }),
                                  ("mul", mul, { (x: Float, y: Float) in x * y })] as [(String, (Tensor, Tensor) -> Tensor, (Float, Float) -> Float)] {
                let y = op(a, b)
                let ref = naiveBroadcast(a, b, f)
                XCTAssertEqual(y.shape, ref.shape, "\(name) \(sa) \(sb)")
                XCTAssertEqual(y.toArray(), ref.values, "\(name) \(sa) \(sb)")
            }
        }
    }

    func testOperators() {
        let a = Tensor(shape: [2, 2], [1, 2, 3, 4]), b = Tensor(shape: [2], [10, 20])
        XCTAssertEqual((a + b).toArray(), [11, 22, 13, 24])
        XCTAssertEqual((a - b).toArray(), [-9, -18, -7, -16])
        XCTAssertEqual((a * b).toArray(), [10, 40, 30, 80])
    }

    func testGradientsEveryPattern() {
        var rng = TestRNG(seed: 12)
        for (sa, sb) in patterns {
            checkGradients([rng.tensor(sa), rng.tensor(sb)]) { add($0[0], $0[1]) }
            checkGradients([rng.tensor(sa), rng.tensor(sb)]) { sub($0[0], $0[1]) }
            checkGradients([rng.tensor(sa), rng.tensor(sb)]) { mul($0[0], $0[1]) }
        }
    }

    func testSameTensorBothOperands() {
        var rng = TestRNG(seed: 13)
        let x = rng.tensor([3, 4])
        checkGradients([x]) { mul($0[0], $0[0]) }
        checkGradients([x]) { add($0[0], $0[0]) }
    }

    func testFrozenOperandGetsNoGradient() {
        var rng = TestRNG(seed: 14)
        let a = rng.tensor([2, 3], requiresGrad: true), b = rng.tensor([3])
        mul(a, b).backward(seed: Tensor(shape: [2, 3], repeating: 1))
        XCTAssertNil(b.grad)
        XCTAssertEqual(a.grad!.toArray(), b.toArray() + b.toArray())
    }

    func testScalarOps() {
        let a = Tensor(shape: [3], [1, -2, 3])
        XCTAssertEqual(scale(a, 2.5).toArray(), [2.5, -5, 7.5])
        XCTAssertEqual(addScalar(a, -1).toArray(), [0, -3, 2])
        var rng = TestRNG(seed: 15)
        checkGradients([rng.tensor([2, 3])]) { scale($0[0], -1.7) }
        checkGradients([rng.tensor([2, 3])]) { addScalar($0[0], 0.3) }
    }
}
