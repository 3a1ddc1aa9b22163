import AdaptIRCore
import Foundation
import XCTest

final class DegradationTests: XCTestCase {
    // ---- MATLAB bicubic against the numpy MATLAB-imresize port (cross-checked with resize-right) ----

    private func checkBicubic(_ s: Int, line: UInt = #line) throws {
        let input = try readImage(ImageFixtures.path("bicubic_input.png"))
        let want = try ImageFixtures.expected("bicubic_x\(s)")
        let got = matlabBicubicDownscale(input, by: s)
        XCTAssertEqual(got.width, (input.width + s - 1) / s, line: line)   // ceil, as MATLAB
        XCTAssertEqual(got.height, (input.height + s - 1) / s, line: line)
        XCTAssertEqual(got.width, want.width, line: line)
        XCTAssertEqual(got.height, want.height, line: line)
        XCTAssertLessThanOrEqual(maxAbsDiff(got, want), 1, "x\(s): more than 1/255 from the fixture", line: line)
        let exact = zip(got.pixels, want.pixels).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(exact) / Double(got.pixels.count), 0.99, "x\(s): \(exact) exact", line: line)
    }

    func testBicubicX2() throws { try checkBicubic(2) }
    func testBicubicX3() throws { try checkBicubic(3) }
    func testBicubicX4() throws { try checkBicubic(4) }

    func testBicubicFlatImageStaysFlat() {
        let flat = RGBImage(width: 24, height: 20, pixels: [UInt8](repeating: 77, count: 24 * 20 * 3))
        for s in 2...4 {
            let out = matlabBicubicDownscale(flat, by: s)
            XCTAssertTrue(out.pixels.allSatisfy { $0 == 77 }, "x\(s)")
        }
    }

    // ---- Gaussian noise ----

    func testNoiseStatisticsOnFlatGrey() {
        let n = 256 * 256
        let grey = RGBImage(width: 256, height: 256, pixels: [UInt8](repeating: 128, count: n * 3))
        var rng = SplitMix64(seed: 42)
        let noisy = addGaussianNoise(grey, sigma: 30, rng: &rng)
        // Truncation maps x + e to floor(x + e) for in-range values: E[floor(128 + e)] = 128 - 1/2 and the
        // rounding adds 1/12 to the variance; clipping at 0/255 (4.2 sigma away) is negligible.
        var sum = 0.0, sq = 0.0
        for v in noisy.pixels { let d = Double(v) - 128; sum += d; sq += d * d }
        let count = Double(noisy.pixels.count)
        let mean = sum / count
        let std = (sq / count - mean * mean).squareRoot()
        XCTAssertEqual(mean, -0.5, accuracy: 0.2, "mean of noisy - 128 (truncation bias -0.5)")
        XCTAssertEqual(std, (900 + 1.0 / 12).squareRoot(), accuracy: 0.02 * 30, "std within 2% of sigma")
        // The underlying normals themselves.
        var r2 = SplitMix64(seed: 1)
        let z = gaussianSamples(200_001, rng: &r2)
        let zm = z.reduce(0, +) / Double(z.count)
        let zs = (z.map { ($0 - zm) * ($0 - zm) }.reduce(0, +) / Double(z.count)).squareRoot()
        XCTAssertEqual(zm, 0, accuracy: 0.01)
        XCTAssertEqual(zs, 1, accuracy: 0.01)
    }

    func testNoiseTruncatesAndClips() {
        let img = RGBImage(width: 2, height: 1, pixels: [100, 100, 100, 250, 3, 0])
        let out = addNoiseTruncating(img, noise: [0.7, -0.3, 0.999, 10.4, -9.5, 254.99])
        XCTAssertEqual(out.pixels, [100, 99, 100, 255, 0, 254])
    }

    func testNoiseIsDeterministicForASeed() {
        let img = RGBImage(width: 9, height: 7, pixels: (0..<189).map { UInt8($0) })
        var a = SplitMix64(seed: 5), b = SplitMix64(seed: 5), c = SplitMix64(seed: 6)
        let x = addGaussianNoise(img, sigma: 50, rng: &a)
        XCTAssertEqual(x, addGaussianNoise(img, sigma: 50, rng: &b))
        XCTAssertNotEqual(x, addGaussianNoise(img, sigma: 50, rng: &c))
        var z = SplitMix64(seed: 5)
        XCTAssertEqual(addGaussianNoise(img, sigma: 0, rng: &z), img)
    }

    // ---- Degradation enum ----

    func testTaskNames() {
        XCTAssertEqual(Degradation.forTask("sr_2"), .bicubic(scale: 2))
        XCTAssertEqual(Degradation.forTask("sr_4"), .bicubic(scale: 4))
        XCTAssertEqual(Degradation.forTask("denoise_30"), .noise(sigma: 30))
        XCTAssertEqual(Degradation.forTask("denoise_50"), .noise(sigma: 50))
        XCTAssertEqual(Degradation.forTask("jpeg_30"), .jpeg(quality: 30))
        XCTAssertEqual(Degradation.forTask("lr4_noise30"), .chain([.bicubic(scale: 4), .noise(sigma: 30)]))
        XCTAssertEqual(Degradation.forTask("lr4_jpeg30"), .chain([.bicubic(scale: 4), .jpeg(quality: 30)]))
        for bad in ["sr_5", "sr_", "derain_l", "low_light", "denoise_x", "jpeg_0", "jpeg_101", "lr4_blur3", ""] {
            XCTAssertNil(Degradation.forTask(bad), bad)
        }
        XCTAssertEqual(Degradation.forTask("lr4_noise30")!.scale, 4)
        XCTAssertEqual(Degradation.forTask("denoise_30")!.scale, 1)
        XCTAssertEqual(Degradation.forTask("lr4_noise30")!.parametersJSON,
                       "{\"resize\":\"matlab_bicubic\",\"scale\":4,\"noise_sigma\":30,\"noise\":\"uint8_trunc\"}")
    }

    func testHybridNoiseIsDownsampleThenNoise() throws {
        let hr = try readImage(ImageFixtures.path("bicubic_input.png")).modCropped(4)
        var a = SplitMix64(seed: 9), b = SplitMix64(seed: 9)
        let got = try Degradation.forTask("lr4_noise30")!.apply(hr, rng: &a)
        let want = addGaussianNoise(matlabBicubicDownscale(hr, by: 4), sigma: 30, rng: &b)
        XCTAssertEqual(got, want)
        XCTAssertEqual(got.width, hr.width / 4)
    }

    func testHybridJPEGIsDownsampleThenJPEG() throws {
        let hr = try readImage(ImageFixtures.path("bicubic_input.png")).modCropped(4)
        var rng = SplitMix64(seed: 1)
        let got = try Degradation.forTask("lr4_jpeg30")!.apply(hr, rng: &rng)
        let want = try jpegRoundTrip(matlabBicubicDownscale(hr, by: 4), quality: 30, swapRedBlue: true)
        XCTAssertEqual(got, want)
        XCTAssertNotEqual(got, matlabBicubicDownscale(hr, by: 4))
    }

    func testModCrop() {
        let img = RGBImage(width: 10, height: 7, pixels: (0..<210).map { UInt8($0) })
        let c = img.modCropped(4)
        XCTAssertEqual(c.width, 8)
        XCTAssertEqual(c.height, 4)
        XCTAssertEqual(c[1, 2, 0], img[1, 2, 0])
        XCTAssertEqual(c[3, 7, 2], img[3, 7, 2])
    }
}
