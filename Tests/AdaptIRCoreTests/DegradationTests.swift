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

/// MATLAB-style bicubic enlargement (the "Bicubic" baseline row of every quality table).
final class BicubicUpscaleTests: XCTestCase {
    /// A 5x4 RGB image enlarged x2, against an independent numpy port of MATLAB's imresize
    /// (scripts/reference/imresize_upscale.py prints both arrays).
    func testBicubicUpscaleMatchesAnIndependentPort() {
        let input: [UInt8] = [168, 229, 184, 171, 238, 171, 20, 206, 245, 153, 204, 5, 37, 53, 213, 206, 192, 173, 6, 120, 63, 96, 236, 131, 118, 4, 87, 161, 124, 71, 42, 73, 237, 16, 194, 250, 10, 103, 206, 13, 143, 2, 38, 71, 133, 118, 36, 98, 196, 35, 57, 146, 50, 179, 145, 104, 206, 53, 141, 33]
        let expected: [UInt8] = [162, 230, 185, 173, 237, 182, 194, 249, 177, 149, 240, 202, 39, 211, 255, 33, 208, 203, 132, 230, 38, 139, 188, 28, 55, 82, 174, 13, 29, 247, 184, 225, 183, 174, 221, 171, 153, 214, 147, 111, 213, 162, 49, 218, 218, 54, 206, 182, 129, 178, 54, 139, 138, 43, 84, 86, 146, 57, 60, 198, 226, 214, 180, 174, 192, 149, 70, 146, 87, 36, 159, 82, 70, 231, 136, 99, 203, 139, 123, 73, 91, 138, 37, 75, 143, 92, 89, 145, 120, 97, 190, 169, 196, 137, 157, 169, 30, 132, 113, 4, 149, 102, 60, 208, 133, 87, 176, 128, 87, 53, 85, 102, 25, 67, 133, 93, 73, 149, 126, 76, 78, 91, 235, 56, 118, 233, 13, 173, 228, 0, 183, 220, 14, 148, 209, 21, 127, 148, 21, 118, 35, 33, 105, 18, 57, 85, 96, 69, 76, 135, 45, 47, 212, 48, 81, 216, 53, 151, 223, 49, 156, 225, 36, 98, 222, 31, 91, 169, 32, 135, 65, 32, 136, 41, 32, 95, 97, 32, 75, 125, 93, 38, 131, 112, 47, 121, 151, 64, 101, 155, 67, 117, 126, 57, 170, 115, 69, 190, 120, 102, 177, 102, 121, 139, 61, 125, 76, 41, 127, 45, 117, 34, 89, 144, 30, 72, 199, 21, 39, 208, 23, 62, 172, 36, 144, 157, 57, 200, 163, 86, 232, 136, 114, 188, 75, 140, 66, 44, 153, 5]
        let up = matlabBicubicUpscale(RGBImage(width: 5, height: 4, pixels: input), by: 2)
        XCTAssertEqual(up.width, 10)
        XCTAssertEqual(up.height, 8)
        XCTAssertEqual(up.pixels, expected)
    }

    /// Cubic convolution reproduces constants everywhere and linear ramps away from the mirrored borders.
    func testConstantsAndRampsAreKept() {
        let flat = RGBImage(width: 7, height: 6, pixels: [UInt8](repeating: 93, count: 7 * 6 * 3))
        for s in [2, 3, 4] { XCTAssertTrue(matlabBicubicUpscale(flat, by: s).pixels.allSatisfy { $0 == 93 }, "x\(s)") }
        // Ramp along x: value 20 + 16 * x at pixel centres; at x4 output column o sits at input x = (o + 0.5) / 4 - 0.5.
        let w = 12, h = 5
        var ramp = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 { ramp[(y * w + x) * 3 + c] = UInt8(20 + 16 * x) } } }
        let up = matlabBicubicUpscale(RGBImage(width: w, height: h, pixels: ramp), by: 4)
        for o in 12..<(4 * w - 12) {
            let x = (Double(o) + 0.5) / 4 - 0.5
            XCTAssertEqual(Double(up.pixels[(2 * 4 * w + o) * 3]), 20 + 16 * x, accuracy: 0.5001, "column \(o)")
        }
        XCTAssertEqual(matlabBicubicUpscale(flat, by: 1), flat)
    }
}
