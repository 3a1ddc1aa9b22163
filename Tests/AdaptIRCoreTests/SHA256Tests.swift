import AdaptIRCore
import Foundation
import XCTest

/// SHA-256 against Python's hashlib: FIPS 180-4 example messages and 209 generated messages (Fixtures/
/// make_sha256_vectors.py) covering every padding length, hashed whole and fed in uneven pieces.
final class SHA256Tests: XCTestCase {
    func testKnownAnswers() {
        XCTAssertEqual(SHA256.hex(of: []), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hex(of: Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var h = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { h.update(chunk) }
        XCTAssertEqual(h.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testHashlibVectorsWholeAndInPieces() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/sha256_vectors.txt")
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 209)
        for line in lines {
            let parts = line.split(separator: " ")
            let n = Int(parts[0])!, expected = String(parts[1])
            let msg = (0..<n).map { UInt8(($0 * 7 + n) % 256) }
            XCTAssertEqual(SHA256.hex(of: msg), expected, "length \(n)")
            // Uneven pieces: 1, 2, 3, ... bytes, crossing block boundaries at every offset.
            var h = SHA256()
            var i = 0, step = 1
            while i < n {
                let j = min(n, i + step)
                h.update(Array(msg[i..<j]))
                i = j
                step = step % 70 + 1
            }
            XCTAssertEqual(h.finalizeHex(), expected, "length \(n) in pieces")
        }
    }
}
