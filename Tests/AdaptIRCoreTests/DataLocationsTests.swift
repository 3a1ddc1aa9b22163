import AdaptIRCore
import Foundation
import XCTest

/// `DataLocations`: the bundled data is found through $ADAPTIR_DATA, ./datasets, <prefix>/share/adaptir-dist/datasets
/// and the executable's checkout, in that order, item by item; a missing item's error lists every place.
final class DataLocationsTests: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "datalocations-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        for d in ["env", "cwd/datasets", "prefix/bin", "prefix/share/adaptir-dist/datasets", "checkout/.build/x86_64/release",
                  "checkout/datasets"] {
            try FileManager.default.createDirectory(atPath: p(d), withIntermediateDirectories: true)
        }
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    func p(_ s: String) -> String { (root as NSString).appendingPathComponent(s) }

    func put(_ item: String, in folder: String) throws {
        let path = (p(folder) as NSString).appendingPathComponent(item)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: path))
    }

    func testOrderEnvironmentThenCurrentDirectoryThenPrefixThenCheckout() throws {
        let installed = DataLocations(environment: ["ADAPTIR_DATA": p("env")], currentDirectory: p("cwd"),
                                      executable: p("prefix/bin/adaptir-dist"))
        let built = DataLocations(environment: [:], currentDirectory: p("cwd"),
                                  executable: p("checkout/.build/x86_64/release/adaptir-dist"))
        XCTAssertNil(installed.find("samples/train"))
        try put("samples/train/a.png", in: "checkout/datasets")
        XCTAssertNil(installed.find("samples/train"), "the checkout is looked in only for an executable under .build")
        XCTAssertEqual(built.find("samples/train"), p("checkout/datasets/samples/train"))
        try put("samples/train/a.png", in: "prefix/share/adaptir-dist/datasets")
        XCTAssertEqual(installed.find("samples/train"), p("prefix/share/adaptir-dist/datasets/samples/train"))
        try put("samples/train/a.png", in: "cwd/datasets")
        XCTAssertEqual(installed.find("samples/train"), p("cwd/datasets/samples/train"))
        XCTAssertEqual(built.find("samples/train"), p("cwd/datasets/samples/train"))
        try put("samples/train/a.png", in: "env")
        XCTAssertEqual(installed.find("samples/train"), p("env/samples/train"))
        // Item by item: the backbone comes from the first place that has it, even when that is another place.
        try put("ipt_small_backbone.h5", in: "prefix/share/adaptir-dist/datasets")
        XCTAssertEqual(installed.find("ipt_small_backbone.h5"), p("prefix/share/adaptir-dist/datasets/ipt_small_backbone.h5"))
        // A relative $ADAPTIR_DATA is taken from the current directory.
        let relative = DataLocations(environment: ["ADAPTIR_DATA": "../env"], currentDirectory: p("cwd"), executable: "/usr/bin/adaptir-dist")
        XCTAssertEqual(relative.find("samples/train"), p("env/samples/train"))
    }

    func testMissingItemListsEveryPlaceInOneLine() throws {
        let l = DataLocations(environment: ["ADAPTIR_DATA": p("env")], currentDirectory: p("cwd"), executable: p("prefix/bin/adaptir-dist"))
        XCTAssertThrowsError(try l.locate("samples/train")) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.hasPrefix("samples/train: bundled data not found; looked in "), text)
            for place in [p("env/samples/train") + " ($ADAPTIR_DATA)", p("cwd/datasets/samples/train") + " (the current directory)",
                          p("prefix/share/adaptir-dist/datasets/samples/train") + " (the install prefix of ",
                          "the checkout of the executable (none: " + p("prefix/bin/adaptir-dist") + " is not under a .build folder)"] {
                XCTAssertTrue(text.contains(place), "\(text) lacks \(place)")
            }
        }
        let unset = DataLocations(environment: [:], currentDirectory: p("cwd"), executable: p("checkout/.build/x86_64/release/adaptir-dist"))
        let text = unset.searched("samples/test")
        XCTAssertTrue(text.contains("$ADAPTIR_DATA (not set)"), text)
        XCTAssertTrue(text.contains(p("checkout/datasets/samples/test") + " (the checkout of "), text)
    }

    /// The test binary itself runs from this checkout's .build: the bundled samples are found through it from
    /// any working directory.
    func testCurrentProcessFindsTheCheckoutsSamplesFromElsewhere() throws {
        let here = DataLocations(environment: [:], currentDirectory: p("cwd"), executable: DataLocations.executablePath)
        let expected = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("datasets/samples/train").path
        XCTAssertEqual(here.find("samples/train"), expected)
    }
}
