import XCTest
import AdaptIRCore

final class ParameterCountTests: XCTestCase {
    private func count(_ specs: [ParameterSpec], _ roles: Set<ParameterRole>) -> Int {
        specs.filter { roles.contains($0.role) }.reduce(0) { $0 + $1.count }
    }

    func testIPTPresetCountsMatchThePaper() {
        let specs = AdaptedIPT.parameterSpecs(preset: .ipt, method: .adaptir)
        // 118,892,394 counts the 24 values of the two fixed MeanShift convs (spec 1.5).
        XCTAssertEqual(count(specs, [.backbone, .fixed]), 118_892_394)
        XCTAssertEqual(count(specs, [.adapter]), 697_656)
        XCTAssertEqual(count(AdaptedIPT.parameterSpecs(preset: .ipt, method: .full), [.backbone]), 118_892_370)
    }

    func testPerModuleCountsOfSpec2_5() {
        let specs = AdaptIRModule.parameterSpecs(prefix: "m", embed: Preset.ipt.embed, hidden: 24)
        func n(_ part: String) -> Int {
            specs.filter { $0.role == .adapter && $0.key.hasPrefix("m.\(part)") }.reduce(0) { $0 + $1.count }
        }
        XCTAssertEqual(n("head."), 13_848)
        XCTAssertEqual(n("BN."), 48)
        XCTAssertEqual(n("conv_weight_A"), 288)
        XCTAssertEqual(n("conv_weight_B"), 108)
        XCTAssertEqual(n("conv_bias"), 24)
        XCTAssertEqual(n("amp_fuse"), 48)
        XCTAssertEqual(n("pha_fuse"), 48)
        XCTAssertEqual(n("compress"), 25)
        XCTAssertEqual(n("proj"), 612)
        XCTAssertEqual(n("tail"), 13_824)
        XCTAssertEqual(n("channel_interaction"), 171)
        XCTAssertEqual(n("spatial_interaction"), 25)
        XCTAssertEqual(n(""), 29_069)
        XCTAssertEqual(specs.filter { $0.role == .buffer }.reduce(0) { $0 + $1.count }, 49)
    }

    func testPerPartCountsOfSpec1_5() {
        let specs = AdaptedIPT.parameterSpecs(preset: .ipt, method: .frozen)
        func n(_ prefix: String) -> Int { specs.filter { $0.role == .backbone && $0.key.hasPrefix(prefix) }.reduce(0) { $0 + $1.count } }
        XCTAssertEqual(n("head.0."), 411_648)
        XCTAssertEqual(n("tail.0."), 149_443)
        XCTAssertEqual(n("tail.1."), 334_083)
        XCTAssertEqual(n("tail.2."), 297_155)
        XCTAssertEqual(n("tail.3."), 1_731)
        XCTAssertEqual(n("tail."), 785_874)
        XCTAssertEqual(n("body.linear_encoding"), 332_352)
        XCTAssertEqual(n("body.mlp_head"), 2_657_088)
        XCTAssertEqual(n("body.query_embed"), 884_736)
        XCTAssertEqual(n("body.position_encoding"), 147_456)
        XCTAssertEqual(n("body.encoder.layers.0."), 3_986_496)
        XCTAssertEqual(n("body.decoder.layers.0."), 5_314_752)
        XCTAssertEqual(n("body."), 115_636_608)
    }

    /// The state_dict keys, shapes and order of the released code (spec/keys_ipt_adaptir.txt).
    func testKeysShapesAndOrderMatchTheReleasedCode() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/keys_ipt_adaptir.txt")
        let text = try String(contentsOf: url, encoding: .utf8)
        let expected = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { line -> (String, [Int], String) in
            let f = line.split(separator: "\t", omittingEmptySubsequences: false)
            return (String(f[0]), f[1].split(separator: ",").map { Int($0)! }, String(f[3]))
        }
        let specs = AdaptedIPT.parameterSpecs(preset: .ipt, method: .adaptir)
        XCTAssertEqual(specs.count, expected.count)
        for (s, e) in zip(specs, expected) {
            XCTAssertEqual(s.key, e.0)
            XCTAssertEqual(s.shape, e.1, s.key)
            let kind = s.role == .adapter ? "adapter" : s.role == .buffer ? "buffer" : "param"
            XCTAssertEqual(kind, e.2, s.key)
        }
    }
}
