import Foundation
import XCTest
import AdaptIRCore

/// The 16-bit gradient formats of `train --grad-dtype`: encodings and the reduction MPI applies.
final class HalfPrecisionTests: XCTestCase {
    func testFP16Encoding() {
        XCTAssertEqual(HalfCodec.fp16(1), 0x3C00)
        XCTAssertEqual(HalfCodec.fp16(-2), 0xC000)
        XCTAssertEqual(HalfCodec.fp16(65504), 0x7BFF, "largest finite fp16")
        XCTAssertEqual(HalfCodec.fp16(65520), 0x7C00, "rounds to +inf")
        XCTAssertEqual(HalfCodec.fromFP16(0x0001), Float(5.9604645e-8), "smallest subnormal")
        XCTAssertEqual(HalfCodec.fp16(1 + 1.0 / 2048), 0x3C00, "a tie rounds to even")
    }

    func testBF16EncodingRoundsToNearestEven() {
        XCTAssertEqual(HalfCodec.bf16(1), 0x3F80)
        XCTAssertEqual(HalfCodec.bf16(-1), 0xBF80)
        XCTAssertEqual(HalfCodec.bf16(Float(bitPattern: 0x3F80_8000)), 0x3F80, "tie, even below")
        XCTAssertEqual(HalfCodec.bf16(Float(bitPattern: 0x3F81_8000)), 0x3F82, "tie, odd below: up")
        XCTAssertEqual(HalfCodec.bf16(Float(bitPattern: 0x3F80_8001)), 0x3F81, "above the tie: up")
        XCTAssertEqual(HalfCodec.bf16(.infinity), 0x7F80)
        XCTAssertTrue(HalfCodec.fromBF16(HalfCodec.bf16(.nan)).isNaN)
        XCTAssertEqual(HalfCodec.fromBF16(HalfCodec.bf16(3e38)), 3e38, accuracy: 3e38 / 256, "fp32's range, 8-bit mantissa")
        for h: UInt16 in [0x0000, 0x3F80, 0x4049, 0xC2F7, 0x0080] {
            XCTAssertEqual(HalfCodec.bf16(HalfCodec.fromBF16(h)), h, "representable values round-trip")
        }
    }

    /// The user op adds in fp32 and rounds the sum once.
    func testSumIntoAddsInFloatAndRoundsOnce() {
        var rng = SplitMix64(seed: 4)
        let xs = (0..<1000).map { _ in rng.unitFloat() - 0.5 }, ys = (0..<1000).map { _ in 1e-3 * (rng.unitFloat() - 0.5) }
        for wire in [GradientWireType.fp16, .bf16] {
            let enc = { (x: Float) -> UInt16 in wire == .fp16 ? HalfCodec.fp16(x) : HalfCodec.bf16(x) }
            let dec = { (h: UInt16) -> Float in wire == .fp16 ? HalfCodec.fromFP16(h) : HalfCodec.fromBF16(h) }
            var acc = xs.map(enc)
            let add = ys.map(enc)
            add.withUnsafeBufferPointer { a in acc.withUnsafeMutableBufferPointer { HalfCodec.sumInto($0.baseAddress!, a.baseAddress!, count: 1000, wire) } }
            for i in 0..<1000 { XCTAssertEqual(acc[i], enc(dec(enc(xs[i])) + dec(enc(ys[i]))), "\(wire) [\(i)]") }
        }
    }

    /// One rank: nothing to reduce, the buffer is untouched in every format.
    func testOneRankLeavesTheBufferAlone() throws {
        for wire in GradientWireType.allCases {
            var buf: [Float] = [1e-9, 3, 1e5], scratch: [UInt16] = []
            let ok = try buf.withUnsafeMutableBufferPointer { try Communicator.solo.allreduceMean($0, wire: wire, scratch: &scratch) }
            XCTAssertTrue(ok)
            XCTAssertEqual(buf, [1e-9, 3, 1e5])
        }
    }

    func testConfigKeyIsValidated() throws {
        func decode(_ json: String) throws -> TrainConfig { try JSONDecoder().decode(TrainConfig.self, from: Data(json.utf8)) }
        XCTAssertEqual(try decode(#"{"grad_dtype": "bf16"}"#).gradDtype, .bf16)
        XCTAssertEqual(try decode("{}").gradDtype, .fp32)
        XCTAssertThrowsError(try decode(#"{"grad_dtype": "fp8"}"#)) { XCTAssertTrue("\($0)".contains("unknown gradient type 'fp8'"), "\($0)") }
    }
}
