import Foundation
import XCTest
import AdaptIRCore

/// The golden fixtures of an independent PyTorch implementation (copied from shared/fixtures; README there).
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden")
    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    static func open(_ name: String) throws -> HDF5File { try HDF5File.open(path(name)) }

    /// Copies every `weights/<key>` of the file into the tensor `prefix + key` of the store (shapes must match).
    static func loadWeights(_ f: HDF5File, into store: ParameterStore, prefix: String = "") throws {
        for name in try f.datasetNames(under: "weights") {
            let key = prefix + String(name.dropFirst(name.hasPrefix("/weights/") ? 9 : 8))
            guard let t = store.tensor(key) else { throw HDF5Error(file: f.path, object: name, message: "no model tensor \(key)") }
            t.copy(from: try f.readTensor(name, expectedShape: t.shape))
        }
    }

    /// Loads only the backbone tensors of a golden model file (its AdaptIR tensors are skipped), into a model of any
    /// method.
    static func loadBackbone(_ f: HDF5File, into store: ParameterStore) throws {
        for name in try f.datasetNames(under: "weights") {
            let key = String(name.dropFirst(name.hasPrefix("/weights/") ? 9 : 8))
            guard !key.contains(".adaptir.") else { continue }
            guard let t = store.tensor(key) else { throw HDF5Error(file: f.path, object: name, message: "no model tensor \(key)") }
            t.copy(from: try f.readTensor(name, expectedShape: t.shape))
        }
    }

    /// Reads every dataset under `group` (name -> tensor) and the largest magnitude among them.
    static func readGroup(_ f: HDF5File, _ group: String) throws -> (tensors: [String: Tensor], maxAbs: Float) {
        var out: [String: Tensor] = [:]
        var m: Float = 0
        for name in try f.datasetNames(under: group) {
            let t = try f.readTensor(name)
            out[String(name.split(separator: "/").last!)] = t
            m = max(m, t.maxAbs())
        }
        return (out, m)
    }

    /// Compares within `rtol` of the reference's largest magnitude (fixtures README: ~1e-4 outputs, 1e-3 grads).
    /// `floor` is a lower bound on the scale, for tensors whose exact value is 0 and whose reference is round-off
    /// (e.g. the gradient of a bias in front of a batch norm or a softmax).
    static func assertClose(_ actual: Tensor, _ expected: Tensor, rtol: Float, floor: Float = 1e-12, _ what: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.shape.product, expected.shape.product, "\(what): size", file: file, line: line)
        guard actual.count == expected.count else { return }
        let a = actual.toArray(), e = expected.toArray()
        let scale = max(e.map { abs($0) }.max() ?? 0, floor)
        var worst: Float = 0, at = 0
        for i in 0..<a.count where abs(a[i] - e[i]) > worst { worst = abs(a[i] - e[i]); at = i }
        XCTAssertLessThanOrEqual(worst / scale, rtol, "\(what): max |diff| \(worst) at \(at) (ref scale \(scale)): \(a[at]) vs \(e[at])", file: file, line: line)
    }
}
