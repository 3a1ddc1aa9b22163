import XCTest
import AdaptIRCore

/// Naive 6-loop reference of a stride-1, same-padded (k/2) convolution with `groups` groups.
private func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, groups: Int = 1) -> [Float] {
    let (n, cin, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
    let cout = w.shape[0], cpg = w.shape[1], k = w.shape[2], pad = k / 2
    let outPerGroup = cout / groups
    var y = [Float](repeating: 0, count: n * cout * h * wd)
    for s in 0..<n { for o in 0..<cout { for i in 0..<h { for j in 0..<wd {
        var acc: Float = b?.data[o] ?? 0
        let g = o / outPerGroup
        for cl in 0..<cpg { for ki in 0..<k { for kj in 0..<k {
            let ii = i + ki - pad, jj = j + kj - pad
            if ii < 0 || ii >= h || jj < 0 || jj >= wd { continue }
            let c = g * cpg + cl
            acc += w.data[((o * cpg + cl) * k + ki) * k + kj] * x.data[((s * cin + c) * h + ii) * wd + jj]
        } } }
        y[((s * cout + o) * h + i) * wd + j] = acc
    } } } }
    _ = cin
    return y
}

final class ConvTests: XCTestCase {
    func testConv2dForwardMatchesNaive() {
        var rng = TestRNG(seed: 11)
        // Up to 16 output channels the direct kernel (groups of 4; (4, 6, ...) ends in a half group; (16, 3, 3, 7, 50):
        // two 24-pixel chunks and a partial one per row), above it im2col + GEMM.
        for (cin, cout, k, h, w) in [(3, 4, 3, 5, 5), (3, 2, 5, 5, 6), (4, 3, 1, 5, 4), (2, 3, 5, 3, 2), (2, 2, 7, 4, 3),
                                     (16, 3, 3, 7, 50), (5, 3, 3, 3, 24), (4, 6, 5, 6, 30), (3, 20, 3, 5, 7),
                                     (2, 17, 5, 4, 9)] {
            let x = rng.tensor([2, cin, h, w]), wt = rng.tensor([cout, cin, k, k]), b = rng.tensor([cout])
            let y = conv2d(x, wt, b)
            XCTAssertEqual(y.shape, [2, cout, h, w])
            XCTAssertLessThan(relErr(y.toArray(), naiveConv(x, wt, b)), 1e-5, "k=\(k) \(cin)->\(cout) \(h)x\(w)")
            let y0 = conv2d(x, wt, nil)
            XCTAssertLessThan(relErr(y0.toArray(), naiveConv(x, wt, nil)), 1e-5, "no bias, k=\(k)")
        }
    }

    func testConv2dGradients() {
        var rng = TestRNG(seed: 12)
        checkGradients([rng.tensor([2, 3, 5, 5]), rng.tensor([4, 3, 3, 3]), rng.tensor([4])]) { conv2d($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 5, 5]), rng.tensor([2, 3, 5, 5]), rng.tensor([2])]) { conv2d($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 5, 4]), rng.tensor([5, 3, 1, 1]), rng.tensor([5])]) { conv2d($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 4, 5]), rng.tensor([2, 3, 3, 3])]) { conv2d($0[0], $0[1]) }
        // To 3 channels (the direct kernels, forward and dW): a row of one 8-pixel vector and a 3-pixel tail.
        checkGradients([rng.tensor([2, 4, 5, 11]), rng.tensor([3, 4, 3, 3]), rng.tensor([3])]) { conv2d($0[0], $0[1], $0[2]) }
    }

    /// Large enough that im2col works in several row bands (Cin*k*k ~ 600, W = 16: bands of 32 rows, H = 40), too big
    /// for a finite-difference check: forward, dX and dW against naive loops (dX and dW of L = sum(y * r)).
    /// With Cout < Cin (all cases here) dX is the convolution of dY with the flipped kernel; the frozen-weight case
    /// is the adapter-only backward's path (dX through a weight that gets no gradient).
    func testConv2dMultiBandMatchesNaiveForwardAndBackward() {
        var rng = TestRNG(seed: 17)
        for (cin, k, trainW) in [(64, 3, true), (24, 5, true), (64, 3, false), (16, 5, false)] {
            let (n, cout, h, w) = (2, 3, 40, 16), pad = k / 2
            let x = rng.tensor([n, cin, h, w], requiresGrad: true), wt = rng.tensor([cout, cin, k, k], requiresGrad: trainW)
            let b = rng.tensor([cout], requiresGrad: true)
            let y = conv2d(x, wt, b)
            XCTAssertLessThan(relErr(y.toArray(), naiveConv(x, wt, b)), 1e-5, "forward k=\(k)")
            let r = rng.tensor(y.shape)
            y.backward(seed: r)
            var gx = [Float](repeating: 0, count: x.count), gw = [Float](repeating: 0, count: wt.count)
            var gb = [Float](repeating: 0, count: cout)
            let xp = x.data, wp = wt.data, rp = r.data
            for s in 0..<n { for o in 0..<cout { for i in 0..<h { for j in 0..<w {
                let g = rp[((s * cout + o) * h + i) * w + j]
                gb[o] += g
                for c in 0..<cin { for ki in 0..<k { for kj in 0..<k {
                    let ii = i + ki - pad, jj = j + kj - pad
                    if ii < 0 || ii >= h || jj < 0 || jj >= w { continue }
                    let xi = ((s * cin + c) * h + ii) * w + jj, wi = ((o * cin + c) * k + ki) * k + kj
                    gx[xi] += wp[wi] * g
                    gw[wi] += xp[xi] * g
                } } }
            } } } }
            XCTAssertLessThan(relErr(x.grad!.toArray(), gx), 1e-4, "dX k=\(k)")
            if trainW { XCTAssertLessThan(relErr(wt.grad!.toArray(), gw), 1e-4, "dW k=\(k)") } else { XCTAssertNil(wt.grad) }
            XCTAssertLessThan(relErr(b.grad!.toArray(), gb), 1e-4, "db k=\(k)")
        }
    }

    func testConv2dFrozenWeightGetsNoGradient() {
        var rng = TestRNG(seed: 13)
        for k in [1, 3] {
            let x = rng.tensor([2, 3, 5, 5], requiresGrad: true), w = rng.tensor([4, 3, k, k]), b = rng.tensor([4])
            let y = conv2d(x, w, b)
            y.backward(seed: Tensor(shape: y.shape, repeating: 1))
            XCTAssertNil(w.grad)
            XCTAssertNil(b.grad)
            XCTAssertNotNil(x.grad)
            // Only the weight trains: no input gradient is allocated.
            let x2 = rng.tensor([2, 3, 5, 5]), w2 = rng.tensor([4, 3, k, k], requiresGrad: true)
            let y2 = conv2d(x2, w2)
            y2.backward(seed: Tensor(shape: y2.shape, repeating: 1))
            XCTAssertNil(x2.grad)
            XCTAssertNotNil(w2.grad)
        }
    }

    func testDepthwiseForwardMatchesNaive() {
        var rng = TestRNG(seed: 14)
        for (c, k, h, w) in [(3, 3, 5, 5), (4, 5, 5, 6), (2, 1, 3, 4), (2, 5, 3, 2)] {
            let x = rng.tensor([2, c, h, w]), wt = rng.tensor([c, 1, k, k]), b = rng.tensor([c])
            let y = depthwiseConv2d(x, wt, b)
            XCTAssertEqual(y.shape, x.shape)
            XCTAssertLessThan(relErr(y.toArray(), naiveConv(x, wt, b, groups: c)), 1e-5, "c=\(c) k=\(k)")
            XCTAssertLessThan(relErr(depthwiseConv2d(x, wt, nil).toArray(), naiveConv(x, wt, nil, groups: c)), 1e-5)
        }
    }

    func testDepthwiseGradients() {
        var rng = TestRNG(seed: 15)
        checkGradients([rng.tensor([2, 3, 5, 5]), rng.tensor([3, 1, 3, 3]), rng.tensor([3])]) { depthwiseConv2d($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 5, 4]), rng.tensor([3, 1, 5, 5]), rng.tensor([3])]) { depthwiseConv2d($0[0], $0[1], $0[2]) }
        checkGradients([rng.tensor([2, 3, 4, 5]), rng.tensor([3, 1, 3, 3])]) { depthwiseConv2d($0[0], $0[1]) }
    }

    func testDepthwiseFrozenWeightGetsNoGradient() {
        var rng = TestRNG(seed: 16)
        let x = rng.tensor([2, 3, 5, 5], requiresGrad: true), w = rng.tensor([3, 1, 3, 3]), b = rng.tensor([3])
        let y = depthwiseConv2d(x, w, b)
        y.backward(seed: Tensor(shape: y.shape, repeating: 1))
        XCTAssertNil(w.grad)
        XCTAssertNil(b.grad)
        XCTAssertNotNil(x.grad)
    }
}
