import Foundation
import XCTest
import AdaptIRCore

/// numpy references written by Fixtures/make_fft_fixture.py (16 x 16, complex arrays as [..., 2]).
private struct FFTFixture: Decodable {
    let H: Int, W: Int
    let x: [Float], rfft2_x: [Float]
    let X: [Float], irfft2_X: [Float]
    let g: [Float], grad_X: [Float]
    let Gc: [Float], grad_x: [Float]

    static func load() throws -> FFTFixture {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent("fft_fixture.json")
        return try JSONDecoder().decode(FFTFixture.self, from: Data(contentsOf: url))
    }
}

/// Naive double-precision references with numpy semantics.
private enum NaiveFFT {
    /// rfft2 ortho of count maps [h, w] -> [h, w/2+1, 2].
    static func rfft2(_ x: [Float], count: Int, h: Int, w: Int) -> [Float] {
        let wh = w / 2 + 1
        var out = [Float](repeating: 0, count: count * h * wh * 2)
        let s = 1 / Double(h * w).squareRoot()
        for b in 0..<count { for k in 0..<h { for l in 0..<wh {
            var re = 0.0, im = 0.0
            for r in 0..<h { for c in 0..<w {
                let t = -2 * Double.pi * (Double(k * r) / Double(h) + Double(l * c) / Double(w))
                let v = Double(x[(b * h + r) * w + c])
                re += v * cos(t); im += v * sin(t)
            } }
            out[((b * h + k) * wh + l) * 2] = Float(re * s)
            out[((b * h + k) * wh + l) * 2 + 1] = Float(im * s)
        } } }
        return out
    }

    /// irfft2 ortho, numpy semantics: ifft along H, then c2r along W with weights [1, 2, ..., 2, 1] on Re(Z e^{+i}).
    static func irfft2(_ X: [Float], count: Int, h: Int, w: Int) -> [Float] {
        let wh = w / 2 + 1
        var out = [Float](repeating: 0, count: count * h * w)
        for b in 0..<count { for r in 0..<h {
            var zre = [Double](repeating: 0, count: wh), zim = zre
            for l in 0..<wh { for k in 0..<h {
                let t = 2 * Double.pi * Double(k * r) / Double(h)
                let a = Double(X[((b * h + k) * wh + l) * 2]), bb = Double(X[((b * h + k) * wh + l) * 2 + 1])
                zre[l] += a * cos(t) - bb * sin(t); zim[l] += a * sin(t) + bb * cos(t)
            } }
            for c in 0..<w {
                var s = 0.0
                for l in 0..<wh {
                    let t = 2 * Double.pi * Double(l * c) / Double(w)
                    let wt = (l == 0 || l == w / 2) ? 1.0 : 2.0
                    s += wt * (zre[l] * cos(t) - zim[l] * sin(t))
                }
                out[(b * h + r) * w + c] = Float(s / Double(h * w).squareRoot())
            }
        } }
        return out
    }
}

final class FFTTests: XCTestCase {
    // MARK: forward values

    func testForwardMatchesNumpyFixture() throws {
        let f = try FFTFixture.load()
        let x = Tensor(shape: [f.H, f.W], f.x)
        let X = Tensor(shape: [f.H, f.W / 2 + 1, 2], f.X)
        XCTAssertEqual(rfft2(x).shape, [16, 9, 2])
        XCTAssertLessThan(relErr(rfft2(x).toArray(), f.rfft2_x), 1e-5)
        XCTAssertLessThan(relErr(irfft2(X, height: f.H, width: f.W).toArray(), f.irfft2_X), 1e-5)
        XCTAssertEqual(x.toArray(), f.x, "rfft2 must not modify its input")
        XCTAssertEqual(X.toArray(), f.X, "irfft2 must not modify its input")
    }

    func testBackwardMatchesNumpyFixture() throws {
        let f = try FFTFixture.load()
        let X = Tensor(shape: [f.H, f.W / 2 + 1, 2], f.X).requiringGrad()
        irfft2(X, height: f.H, width: f.W).backward(seed: Tensor(shape: [f.H, f.W], f.g))
        XCTAssertLessThan(relErr(X.grad!.toArray(), f.grad_X), 1e-5)
        let x = Tensor(shape: [f.H, f.W], f.x).requiringGrad()
        rfft2(x).backward(seed: Tensor(shape: [f.H, f.W / 2 + 1, 2], f.Gc))
        XCTAssertLessThan(relErr(x.grad!.toArray(), f.grad_x), 1e-5)
    }

    func testBatchedNonSquareMatchesNaive() {
        var rng = TestRNG(seed: 11)
        for (h, w) in [(6, 4), (4, 8), (5, 6), (3, 2)] {
            let x = rng.tensor([2, 3, h, w])
            XCTAssertLessThan(relErr(rfft2(x).toArray(), NaiveFFT.rfft2(x.toArray(), count: 6, h: h, w: w)), 1e-5, "\(h)x\(w)")
            let X = rng.tensor([2, 3, h, w / 2 + 1, 2])   // arbitrary, non-Hermitian
            let y = irfft2(X, height: h, width: w)
            XCTAssertEqual(y.shape, [2, 3, h, w])
            XCTAssertLessThan(relErr(y.toArray(), NaiveFFT.irfft2(X.toArray(), count: 6, h: h, w: w)), 1e-5, "\(h)x\(w)")
        }
    }

    /// FFTW's 1-D c2r must ignore the imaginary parts of bins 0 and W/2 (numpy semantics), since `irfft2` relies on it.
    func testFFTWc2rIgnoresImagOfDCAndNyquist() {
        var rng = TestRNG(seed: 12)
        for w in [2, 4, 6, 8, 16, 48] { checkC2R(&rng, width: w) }
    }

    private func checkC2R(_ rng: inout TestRNG, width w: Int) {
        let wh = w / 2 + 1, rows = 3
        let plan = FFTPlans.plan(for: .irfftRows(rows: rows, width: w))
        let a = rng.tensor([rows, wh, 2])
        let b = a.copy()
        for r in 0..<rows { b.data[(r * wh) * 2 + 1] += 5; b.data[(r * wh + wh - 1) * 2 + 1] -= 3 }
        let zeroed = a.copy()
        for r in 0..<rows { zeroed.data[(r * wh) * 2 + 1] = 0; zeroed.data[(r * wh + wh - 1) * 2 + 1] = 0 }
        let ya = Tensor(zeros: [rows, w]), yb = Tensor(zeros: [rows, w]), yz = Tensor(zeros: [rows, w])
        let ca = a.copy(), cb = b.copy(), cz = zeroed.copy()   // c2r destroys its input
        withExtendedLifetime((ca, cb, cz)) {
            plan.execute(ca.data, ya.data)
            plan.execute(cb.data, yb.data)
            plan.execute(cz.data, yz.data)
        }
        XCTAssertEqual(ya.toArray(), yb.toArray(), "W=\(w)")
        XCTAssertEqual(ya.toArray(), yz.toArray(), "W=\(w)")
        // and it is the unnormalised c2r: sum_l c_l Re(Z_l e^{+2 pi i l t / W})
        for r in 0..<rows { for t in 0..<w {
            var s = 0.0
            for l in 0..<wh {
                let ang = 2 * Double.pi * Double(l * t) / Double(w), c = (l == 0 || l == w / 2) ? 1.0 : 2.0
                s += c * (Double(a.data[(r * wh + l) * 2]) * cos(ang) - Double(a.data[(r * wh + l) * 2 + 1]) * sin(ang))
            }
            XCTAssertEqual(Double(ya.data[r * w + t]), s, accuracy: 1e-5, "W=\(w)")
        } }
    }

    // MARK: identities

    func testRoundTrip() {
        var rng = TestRNG(seed: 13)
        for shape in [[16, 16], [3, 2, 8, 6], [1, 4, 2]] {
            let x = rng.tensor(shape)
            let y = irfft2(rfft2(x), height: shape[shape.count - 2], width: shape[shape.count - 1])
            XCTAssertEqual(y.shape, shape)
            XCTAssertLessThan(relErr(y.toArray(), x.toArray()), 1e-6, "\(shape)")
        }
    }

    /// FAM at identity init: abs(irfft2(polar(|X|, angle(X)))) == |x| with X = rfft2(x) (fft_check.py, part 4).
    func testFAMIdentity() {
        var rng = TestRNG(seed: 14)
        let x = rng.tensor([2, 3, 16, 16])
        let X = rfft2(x)
        let rec = irfft2(polar(magnitude: complexAbs(X), phase: complexAngle(X)), height: 16, width: 16)
        XCTAssertLessThan(relErr(rec.toArray().map(abs), x.toArray().map(abs)), 1e-5)
    }

    func testComplexForwardValues() {
        let z = Tensor(shape: [5, 2], [3, 4, -1, 0, 0, 0, 0, -2, -1, -1])
        XCTAssertEqual(complexAbs(z).toArray(), [5, 1, 0, 2, Float(2).squareRoot()])
        let ang = complexAngle(z).toArray()
        let expected: [Float] = [atan2f(4, 3), .pi, 0, -.pi / 2, -3 * .pi / 4]
        for i in 0..<5 { XCTAssertEqual(ang[i], expected[i], accuracy: 1e-6) }
        let p = polar(magnitude: Tensor(shape: [2], [2, 3]), phase: Tensor(shape: [2], [0, .pi / 2])).toArray()
        XCTAssertEqual(p[0], 2, accuracy: 1e-6); XCTAssertEqual(p[1], 0, accuracy: 1e-6)
        XCTAssertEqual(p[2], 0, accuracy: 1e-6); XCTAssertEqual(p[3], 3, accuracy: 1e-6)
    }

    func testComplexGradientIsZeroAtZero() {
        let z = Tensor(shape: [1, 2], [0, 0]).requiringGrad()
        complexAbs(z).backward(seed: Tensor(shape: [1], [1]))
        XCTAssertEqual(z.grad!.toArray(), [0, 0])
        z.grad = nil
        complexAngle(z).backward(seed: Tensor(shape: [1], [1]))
        XCTAssertEqual(z.grad!.toArray(), [0, 0])
    }

    // MARK: gradients (finite differences, every input)

    func testRfft2Gradients() {
        var rng = TestRNG(seed: 21)
        for shape in [[4, 4], [6, 4], [2, 3, 4, 4], [2, 6, 4]] {
            checkGradients([rng.tensor(shape)]) { rfft2($0[0]) }
        }
    }

    func testIrfft2Gradients() {
        var rng = TestRNG(seed: 22)
        // Random half spectra: not Hermitian (imaginary parts of the DC/Nyquist columns included).
        checkGradients([rng.tensor([4, 3, 2])]) { irfft2($0[0], height: 4, width: 4) }
        checkGradients([rng.tensor([6, 3, 2])]) { irfft2($0[0], height: 6, width: 4) }
        checkGradients([rng.tensor([2, 3, 4, 3, 2])]) { irfft2($0[0], height: 4, width: 4) }
        checkGradients([rng.tensor([2, 6, 3, 2])]) { irfft2($0[0], height: 6, width: 4) }
    }

    /// Complex numbers with |z| in [0.5, 1] and phase in [-2.5, 2.5]: away from 0 and from angle's branch cut.
    private func awayFromZero(_ rng: inout TestRNG, _ shape: [Int]) -> Tensor {
        let n = shape.product
        var v = [Float]()
        for _ in 0..<n {
            let r = rng.uniform(0.5, 1), t = rng.uniform(-2.5, 2.5)
            v += [r * cosf(t), r * sinf(t)]
        }
        return Tensor(shape: shape + [2], v)
    }

    func testComplexAbsGradients() {
        var rng = TestRNG(seed: 23)
        checkGradients([awayFromZero(&rng, [3, 4])], eps: 1e-3) { complexAbs($0[0]) }
    }

    func testComplexAngleGradients() {
        var rng = TestRNG(seed: 24)
        checkGradients([awayFromZero(&rng, [3, 4])], eps: 1e-3) { complexAngle($0[0]) }
    }

    func testPolarGradients() {
        var rng = TestRNG(seed: 25)
        checkGradients([rng.tensor([3, 5]), rng.tensor([3, 5], -3, 3)]) { polar(magnitude: $0[0], phase: $0[1]) }
    }

    func testFAMChainGradients() {
        var rng = TestRNG(seed: 26)
        checkGradients([rng.tensor([4, 4], 0.2, 1)], eps: 1e-3) { ins in
            let X = rfft2(ins[0])
            return irfft2(polar(magnitude: complexAbs(X), phase: complexAngle(X)), height: 4, width: 4)
        }
        // free magnitude and phase: a non-Hermitian spectrum, as after FAM's phase affine
        checkGradients([rng.tensor([2, 6, 3]), rng.tensor([2, 6, 3], -3, 3)]) { ins in
            irfft2(polar(magnitude: ins[0], phase: ins[1]), height: 6, width: 4)
        }
    }

    // MARK: plan cache

    func testPlanCacheReturnsSamePlan() {
        let k1 = FFTPlanKey.rfft2(count: 3, height: 16, width: 16)
        let p1 = FFTPlans.plan(for: k1)
        XCTAssertTrue(p1 === FFTPlans.plan(for: .rfft2(count: 3, height: 16, width: 16)))
        XCTAssertFalse(p1 === FFTPlans.plan(for: .rfft2(count: 4, height: 16, width: 16)))
        XCTAssertFalse(p1 === FFTPlans.plan(for: .rfft2(count: 3, height: 8, width: 16)))
        XCTAssertFalse(FFTPlans.plan(for: .ifftColumns(count: 3, height: 16, columns: 9))
                       === FFTPlans.plan(for: .irfftRows(rows: 48, width: 16)))
        let n = FFTPlans.count
        _ = FFTPlans.plan(for: k1)
        XCTAssertEqual(FFTPlans.count, n)
    }

    func testConcurrentExecutionMatchesSerial() {
        var rng = TestRNG(seed: 31)
        let jobs = 24
        // Several batch sizes, some never planned before, so planning also happens concurrently.
        let inputs = (0..<jobs).map { j in rng.tensor([1 + j % 5 + 40, 16, 16]) }
        let serial = inputs.map { x -> (Tensor, Tensor) in
            let X = rfft2(x)
            return (X, irfft2(X, height: 16, width: 16))
        }
        let specOut = inputs.map { Tensor(zeros: [$0.dim(0), 16, 9, 2]) }
        let realOut = inputs.map { Tensor(zeros: $0.shape) }
        DispatchQueue.concurrentPerform(iterations: jobs) { j in
            let X = rfft2(inputs[j])
            specOut[j].copy(from: X)
            realOut[j].copy(from: irfft2(X, height: 16, width: 16))
        }
        for j in 0..<jobs {
            XCTAssertEqual(specOut[j].toArray(), serial[j].0.toArray(), "job \(j)")
            XCTAssertEqual(realOut[j].toArray(), serial[j].1.toArray(), "job \(j)")
        }
        // and a single plan executed concurrently on different buffers
        let key = FFTPlanKey.rfft2(count: 2, height: 16, width: 16)
        let plan = FFTPlans.plan(for: key)
        let xs = (0..<jobs).map { _ in rng.tensor([2, 16, 16]) }
        let ys = xs.map { _ in Tensor(zeros: [2, 16, 9, 2]) }
        DispatchQueue.concurrentPerform(iterations: jobs) { j in plan.execute(xs[j].data, ys[j].data) }
        for j in 0..<jobs {
            let ref = Tensor(zeros: [2, 16, 9, 2])
            plan.execute(xs[j].data, ref.data)
            XCTAssertEqual(ys[j].toArray(), ref.toArray(), "plan job \(j)")
        }
    }
}
