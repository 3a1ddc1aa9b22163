import Foundation
import XCTest
import AdaptIRCore

/// Every adaptation method of the registry: its parameter count at preset ipt (spec section 3), finite differences
/// of its tensors on tiny, identity at initialisation where it has one, a save/load round trip through its own
/// checkpoint part, and its hyper-parameters validated by name.
final class MethodTests: XCTestCase {
    /// Trainable parameters at preset ipt, as `inspect --preset ipt --method M` prints them.
    static let iptCounts: [String: Int] = [
        "adaptir": 697_656, "lora": 995_328, "adapter": 691_776, "adaptformer": 677_952, "ssf": 373_248,
        "vpt": 884_736, "fact": 537_600, "moe": 684_360, "full": 118_892_370, "frozen": 0,
    ]

    static func trainableCount(_ preset: Preset, _ choice: MethodChoice) throws -> Int {
        try AllreduceBenchmark.trainableFloats(preset: preset, method: choice)
    }

    /// Methods that train something (not `frozen`).
    static var trainableMethods: [String] { MethodRegistry.names.filter { $0 != FrozenBackbone.name } }
    /// Methods that add tensors of their own (not `full`, not `frozen`).
    static var addingMethods: [String] { trainableMethods.filter { $0 != FullFineTuning.name } }

    func testEveryMethodHasItsPaperCountAtIPT() throws {
        XCTAssertEqual(Set(MethodRegistry.names), Set(MethodTests.iptCounts.keys), "a method without an expected count")
        for name in MethodRegistry.names {
            XCTAssertEqual(try MethodTests.trainableCount(.ipt, MethodChoice(name)), MethodTests.iptCounts[name], name)
        }
    }

    /// Sizes scale with the preset: every method builds and trains something at small and tiny, fewer than at ipt.
    func testEveryMethodScalesToTheSmallerPresets() throws {
        for name in MethodTests.trainableMethods {
            let ipt = try MethodTests.trainableCount(.ipt, MethodChoice(name))
            let small = try MethodTests.trainableCount(.small, MethodChoice(name))
            let tiny = try MethodTests.trainableCount(.tiny, MethodChoice(name))
            XCTAssertTrue(ipt > small && small > tiny && tiny > 0, "\(name): ipt \(ipt), small \(small), tiny \(tiny)")
        }
    }

    func testHyperParametersAreCheckedByName() throws {
        XCTAssertEqual(try MethodTests.trainableCount(.ipt, MethodChoice("lora", options: ["rank": 8])), 36 * 2 * 2 * 8 * 576)
        func refused(_ c: MethodChoice, _ fragments: [String]) {
            XCTAssertThrowsError(try MethodRegistry.resolve(c, preset: .ipt)) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "'\(e)' lacks '\(f)'") }
            }
        }
        refused(MethodChoice("lora", options: ["rnk": 8]), ["lora", "rnk", "known: rank, scale"])
        refused(MethodChoice("lora", options: ["rank": 2.5]), ["rank", "whole number", "2.5"])
        refused(MethodChoice("lora", options: ["rank": 0]), ["rank", "0 outside 1...4096"])
        refused(MethodChoice("full", options: ["rank": 4]), ["full", "has no hyper-parameter 'rank'", "it has none"])
        refused(MethodChoice("lorra"), ["unknown method 'lorra'", "adaptir", "lora"])
        XCTAssertThrowsError(try MethodChoice.parseOption("rank")) { XCTAssertTrue("\($0)".contains("NAME=NUMBER")) }
        XCTAssertThrowsError(try MethodChoice.parseOption("rank=nan")) { XCTAssertTrue("\($0)".contains("rank=nan")) }
        XCTAssertEqual(try MethodChoice.parseOption(" rank = 8 ").1, 8)
    }

    /// Every tensor a method adds is owned by it (the adapter part), and no backbone key changes with the method.
    func testMethodTensorsGoToTheAdapterPartOnly() {
        let backboneKeys = AdaptedIPT.parameterSpecs(preset: .small, method: .frozen).map(\.key)
        for name in MethodTests.addingMethods {
            let specs = AdaptedIPT.parameterSpecs(preset: .small, method: MethodChoice(name))
            XCTAssertEqual(specs.filter { $0.owner == .backbone }.map(\.key), backboneKeys, name)
            let own = specs.filter { $0.owner == .method }
            XCTAssertFalse(own.isEmpty, name)
            XCTAssertTrue(own.allSatisfy { CheckpointPart.adapter.contains($0) && !CheckpointPart.backbone.contains($0) }, name)
        }
    }

    /// A method with a zero-initialised output path leaves the backbone's output unchanged before any step, in
    /// training and eval mode, for an SR task and a scale-1 task.
    func testIdentityAtInitialisation() {
        var rng = TestRNG(seed: 4)
        let x = rng.tensor([2, 3, 48, 48], 0, 1)
        let bare = AdaptedIPT(preset: .tiny, method: .frozen, seed: 5)
        var checked: [String] = []
        for t in MethodRegistry.all where t.identityAtInitialisation && t.name != FrozenBackbone.name {
            let m = AdaptedIPT(preset: .tiny, method: MethodChoice(t.name), seed: 5)
            for training in [true, false] {
                m.training = training
                for task in [2, 4] {
                    let a = Autograd.withoutGrad { m(x, task: task) }.toArray(), b = Autograd.withoutGrad { bare(x, task: task) }.toArray()
                    XCTAssertEqual(relErr(a, b), 0, accuracy: 1e-6, "\(t.name) task \(task) training \(training)")
                }
            }
            checked.append(t.name)
        }
        XCTAssertEqual(Set(checked), ["adaptir", "lora", "adapter", "adaptformer", "fact", "moe", "full"])
    }

    /// The methods without that property really change the output at initialisation (so the flag is honest).
    func testMethodsWithoutIdentityChangeTheOutput() {
        var rng = TestRNG(seed: 4)
        let x = rng.tensor([1, 3, 48, 48], 0, 1)
        let bare = AdaptedIPT(preset: .tiny, method: .frozen, seed: 5)
        let b = Autograd.withoutGrad { bare(x, task: 2) }.toArray()
        for t in MethodRegistry.all where !t.identityAtInitialisation {
            let a = Autograd.withoutGrad { AdaptedIPT(preset: .tiny, method: MethodChoice(t.name), seed: 5)(x, task: 2) }.toArray()
            XCTAssertGreaterThan(relErr(a, b), 1e-4, t.name)
        }
    }

    /// Every hook of a method at every layer, on fixed random inputs, flattened into one vector: the method's own
    /// computation without the frozen backbone around it, so Float round-off stays far below its gradients.
    static func hookOutputs(_ m: any AdaptationMethod, _ p: Preset, _ inputs: [String: Tensor]) -> Tensor {
        var outs: [Tensor] = []
        // Only what a hook changes (an identity hook returns its input): fewer outputs, less round-off in the sum.
        func keep(_ y: Tensor, _ given: Tensor) { if y !== given { outs.append(y) } }
        for site in m.sites {
            func x(_ tag: String) -> Tensor { inputs["\(site.prefix).\(tag)"]! }
            let entered = m.layerInput(x("in"), at: site)
            keep(entered, x("in"))
            keep(m.layerOutput(entered, at: site), entered)
            for i in 1...3 { keep(m.afterNorm(x("norm\(i)"), index: i, at: site), x("norm\(i)")) }
            for b in [AttentionBlock.selfAttention, .crossAttention] {
                for proj in [Projection.query(b), .key(b), .value(b), .output(b)] {
                    keep(m.afterProjection(x("y"), input: x("x"), projection: proj, at: site), x("y"))
                }
            }
            keep(m.afterProjection(x("h"), input: x("x"), projection: .mlpHidden, at: site), x("h"))
            keep(m.afterProjection(x("y"), input: x("h"), projection: .mlpOutput, at: site), x("y"))
            if let par = m.parallelToMLP(residual: x("in"), normed: x("norm2"), at: site) { outs.append(par) }
            keep(m.afterMLP(x("y"), at: site), x("y"))
        }
        return concatenate(outs.map { reshape($0, [-1]) }, axis: 0)
    }

    /// Finite differences of every method's tensors, element by element, through the method's hooks on tiny (two
    /// token maps, batch statistics on). Each tensor is checked against its own gradient scale: an element passes
    /// when |analytic - numeric| <= 2% of the larger + 1e-3 x the tensor's gradient rms + the quotient's Float
    /// round-off (estimated from the outputs), and a gradient well above that round-off must agree as a vector
    /// within 1%. A tensor with no gradient at all (a bias in front of a batch norm) is
    /// checked to have quotients at round-off level.
    func testEveryMethodsGradientsByFiniteDifferences() throws {
        let p = Preset.tiny
        for name in MethodTests.addingMethods {
            let model = AdaptedIPT(preset: p, method: MethodChoice(name))
            let m = model.method
            m.training = true
            var rng = TestRNG(seed: 9)
            let w = model.store.trainable.base
            for i in 0..<model.store.trainableCount { w[i] += rng.uniform(-0.3, 0.3) }
            var inputs: [String: Tensor] = [:]
            for site in m.sites {
                for (tag, width) in [("in", p.embed), ("norm1", p.embed), ("norm2", p.embed), ("norm3", p.embed), ("y", p.embed), ("x", p.embed), ("h", p.mlpHidden)] {
                    inputs["\(site.prefix).\(tag)"] = rng.tensor([2, p.tokens, width])
                }
            }
            model.store.zeroGrad()
            let y0 = MethodTests.hookOutputs(m, p, inputs)
            let r = (0..<y0.count).map { _ in rng.uniform() }
            y0.backward(seed: Tensor(shape: y0.shape, r))
            func loss() -> Double {
                let y = Autograd.withoutGrad { MethodTests.hookOutputs(m, p, inputs) }
                var s = 0.0
                for i in 0..<y.count { s += Double(y[flat: i]) * Double(r[i]) }
                return s
            }
            // Round-off of a quotient: each output carries ~6e-8 relative Float error, summed at random.
            let yr = (0..<y0.count).reduce(0.0) { $0 + Double(y0[flat: $1] * r[$1]) * Double(y0[flat: $1] * r[$1]) }
            let floor = 3 * 6e-8 * yr.squareRoot() / 1e-3
            for spec in model.store.specs where model.store.isTrainable(spec.key) {
                let t = model.store[spec.key], g = t.grad!
                let indices = spec.count <= 64 ? Array(0..<spec.count) : (0..<64).map { _ in Int(rng.next() % UInt64(spec.count)) }
                let rms = (indices.reduce(0.0) { $0 + Double(g[flat: $1] * g[flat: $1]) } / Double(indices.count)).squareRoot()
                var diff2 = 0.0, ref2 = 0.0, worst = "", off = 0, largestQuotient = 0.0
                for i in indices {
                    let eps: Float = 1e-3, old = t[flat: i]
                    t[flat: i] = old + eps; let lp = loss()
                    t[flat: i] = old - eps; let lm = loss()
                    t[flat: i] = old
                    let numeric = (lp - lm) / Double(2 * eps), analytic = Double(g[flat: i])
                    diff2 += (numeric - analytic) * (numeric - analytic); ref2 += analytic * analytic
                    largestQuotient = max(largestQuotient, abs(numeric))
                    if abs(numeric - analytic) > 2e-2 * max(abs(numeric), abs(analytic)) + 1e-3 * rms + floor {
                        off += 1; worst = "element \(i): analytic \(analytic) numeric \(numeric)"
                    }
                }
                if rms < floor {
                    // No gradient (a bias in front of a batch norm, a key shift under the softmax): the quotients
                    // must be round-off too (about 1e-2 at this step), not a missed gradient.
                    XCTAssertLessThan(largestQuotient, 3 * floor, "\(name) \(spec.key): analytic gradient ~0 (rms \(rms)) but a quotient of \(largestQuotient)")
                    continue
                }
                XCTAssertEqual(off, 0, "\(name) \(spec.key) (gradient rms \(rms)): \(off) of \(indices.count) off, e.g. \(worst)")
                if rms > 10 * floor { XCTAssertLessThan((diff2 / ref2).squareRoot(), 1e-2, "\(name) \(spec.key): gradients differ as vectors") }
            }
        }
    }

    /// The method wired into the whole tiny model (golden backbone): the directional derivative of the loss along a
    /// random direction of all the method's tensors matches the backward pass within 3% (the direction sums many
    /// elements, so the signal stands far above the whole model's Float round-off).
    func testEveryMethodsWholeModelDirectionalDerivative() throws {
        let f = try Golden.open("ipt_tiny.h5")
        defer { f.close() }
        let x = reshape(select(try f.readTensor("input"), index: 0), [1, 3, 48, 48])
        for name in MethodTests.addingMethods {
            let model = AdaptedIPT(preset: .tiny, method: MethodChoice(name))
            try Golden.loadBackbone(f, into: model.store)
            var rng = TestRNG(seed: 9)
            let n = model.store.trainableCount, w = model.store.trainable.base
            for i in 0..<n { w[i] += rng.uniform(-0.1, 0.1) }
            model.training = true
            model.store.zeroGrad()
            let y0 = model(x, task: 4)
            let r = (0..<y0.count).map { _ in rng.uniform(0.5, 1.5) }
            y0.backward(seed: Tensor(shape: y0.shape, r))
            func loss() -> Double {
                let y = Autograd.withoutGrad { model(x, task: 4) }
                var s = 0.0
                for i in 0..<y.count { s += Double(y[flat: i]) * Double(r[i]) }
                return s
            }
            // Direction: the gradient's sign pattern with random magnitudes (so g.v is far from 0).
            let g = model.store.trainableGrad.base
            let v = (0..<n).map { i in (g[i] >= 0 ? 1 : -1) * rng.uniform(0.5, 1.5) }
            let analytic = (0..<n).reduce(0.0) { $0 + Double(g[$1]) * Double(v[$1]) }
            let saved = (0..<n).map { w[$0] }
            let eps: Float = 1e-3
            for i in 0..<n { w[i] = saved[i] + eps * v[i] }
            let lp = loss()
            for i in 0..<n { w[i] = saved[i] - eps * v[i] }
            let lm = loss()
            for i in 0..<n { w[i] = saved[i] }
            let numeric = (lp - lm) / Double(2 * eps)
            XCTAssertEqual(numeric, analytic, accuracy: 3e-2 * abs(analytic), "\(name): directional derivative")
        }
    }

    /// Save the adapter part, load it into a fresh model rebuilt from the file's own method attributes: same output.
    func testAdapterFileRoundTripRebuildsTheMethod() throws {
        let dir = NSTemporaryDirectory() + "methods-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = TestRNG(seed: 6)
        let x = rng.tensor([1, 3, 48, 48], 0, 1)
        for name in MethodTests.addingMethods {
            let options: [String: Double] = name == "lora" ? ["rank": 2, "scale": 0.5] : [:]
            let a = AdaptedIPT(preset: .tiny, method: MethodChoice(name, options: options), seed: 1)
            let w = a.store.trainable.base
            for i in 0..<a.store.trainableCount { w[i] += rng.uniform(-0.2, 0.2) }
            a.training = false
            let path = dir + "/\(name).h5"
            try Checkpoint.save(a, part: .adapter, to: path, task: 2, step: 3)
            let f = try HDF5File.open(path)
            let meta = try Checkpoint.metadata(of: f)
            let stored = Set(try f.datasetNames(recursive: false).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 })
            f.close()
            XCTAssertEqual(stored, Set(a.store.specs.filter { $0.owner == .method }.map(\.key)), name)
            XCTAssertEqual(meta.method, name)
            XCTAssertEqual(meta.methodOptions, a.method.values, name)
            // A model of another backbone seed, rebuilt from the file: the method's tensors come from the file.
            let b = try AdaptedIPT(preset: .tiny, choice: MethodChoice(meta.method, options: meta.methodOptions), seed: 1)
            for spec in b.store.specs where spec.owner == .method { b.store[spec.key].fill(0.123) }
            try Checkpoint.load(path, into: b, part: .adapter)
            b.training = false
            let ya = Autograd.withoutGrad { a(x, task: 2) }.toArray(), yb = Autograd.withoutGrad { b(x, task: 2) }.toArray()
            XCTAssertEqual(ya, yb, name)
            // Another method's model refuses the file by name.
            let other = AdaptedIPT(preset: .tiny, method: name == "lora" ? .adaptir : MethodChoice("lora"))
            XCTAssertThrowsError(try Checkpoint.load(path, into: other, part: .adapter)) { e in
                XCTAssertTrue("\(e)".contains("adapter file is for method '\(name)'"), "\(e)")
            }
        }
    }

    /// The analytic FLOPs grow with what a method adds; methods merged into nothing (full) add none.
    func testExtraFLOPsArePositiveForAddingMethods() throws {
        for name in MethodTests.addingMethods {
            let m = try MethodRegistry.make(MethodChoice(name), preset: .ipt)
            XCTAssertGreaterThan(m.extraForwardFLOPs(), 0, name)
            XCTAssertLessThan(m.extraForwardFLOPs(), ModelCost(preset: .ipt, task: 2).forward, name)
        }
        XCTAssertEqual(try MethodRegistry.make(.full, preset: .ipt).extraForwardFLOPs(), 0)
    }
}
