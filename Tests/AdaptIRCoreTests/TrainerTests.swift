import Foundation
import XCTest
import AdaptIRCore

/// Deterministic synthetic samples keyed by their global index, so every rank count sees the same data.
enum SyntheticSamples {
    static func sample(_ index: Int, scale: Int) -> (lq: [Float], gt: [Float]) {
        var rng = SplitMix64(seed: 1000 + UInt64(index))
        let side = 48 * scale
        let gt = (0..<(3 * side * side)).map { _ in rng.unitFloat() }
        var lq = [Float](repeating: 0, count: 3 * 48 * 48)
        for c in 0..<3 { for y in 0..<48 { for x in 0..<48 {
            lq[(c * 48 + y) * 48 + x] = gt[(c * side + y * scale) * side + x * scale] * 0.8 + 0.1 * rng.unitFloat()
        } } }
        return (lq, gt)
    }

    /// The samples `indices`, stacked.
    static func batch(_ indices: [Int], scale: Int) -> (Tensor, Tensor) {
        let side = 48 * scale
        var lq: [Float] = [], gt: [Float] = []
        for i in indices { let s = sample(i, scale: scale); lq += s.lq; gt += s.gt }
        return (Tensor(shape: [indices.count, 3, 48, 48], lq), Tensor(shape: [indices.count, 3, side, side], gt))
    }

    /// Rank `rank` of `ranks` takes positions rank, rank + p, ... of global batch `step` (DistributedSampler order).
    static func localIndices(step: Int, globalBatch: Int, rank: Int, ranks: Int) -> [Int] {
        stride(from: rank, to: globalBatch, by: ranks).map { step * globalBatch + $0 }
    }
}

func perturbedTinyModel(method: MethodChoice = .adaptir) -> AdaptedIPT {
    let m = AdaptedIPT(preset: .tiny, method: method, seed: 3)
    var rng = SplitMix64(seed: 77)
    let w = m.store.trainable.base
    for i in 0..<m.store.trainableCount { w[i] += 0.05 * rng.uniform(1) }
    return m
}

/// Runs `steps` steps of `trainer` on the synthetic data.
func runSteps(_ trainer: Trainer, steps: Int) throws -> [StepStats] {
    let comm = trainer.comm
    return try (0..<steps).map { _ in
        let idx = SyntheticSamples.localIndices(step: trainer.step, globalBatch: trainer.globalBatch, rank: comm.rank, ranks: comm.size)
        let (lq, gt) = SyntheticSamples.batch(idx, scale: trainer.model.preset.scales[trainer.task])
        return try trainer.trainStep(lq: lq, gt: gt)
    }
}

/// Data-parallel equivalence. Runs in `swift test` (1 rank) and under mpirun on 2 and 4 ranks
/// (scripts/test-multirank.sh): p ranks with synchronised batch norm give the same weights as one rank with the
/// same global batch, and the backbone never changes.
final class TrainerMultiRankTests: XCTestCase {
    /// Every method that trains (AdaptIR, the PETL baselines, full fine-tuning), 3 steps each on `tiny`.
    func testRanksMatchOneRankWithTheSameGlobalBatch() throws {
        let names = MethodRegistry.names.filter { name in
            guard let m = try? MethodRegistry.make(MethodChoice(name), preset: .tiny) else { return false }
            return AdaptedIPT.parameterSpecs(preset: .tiny, method: m).contains(where: m.trainsTensor)
        }
        XCTAssertGreaterThanOrEqual(names.count, 9, "methods that train: \(names)")
        for name in names { try checkRanksMatchOneRank(MethodChoice(name)) }
    }

    /// The validation loss does not depend on the number of ranks: every patch counts once.
    func testValidationLossMatchesOneRank() throws {
        let world = Communicator.world
        let path = NSTemporaryDirectory() + "val-rank\(world.rank)-\(getpid()).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeValidationPatches(path, n: 7)
        let model = perturbedTinyModel()
        let all = try Validator(path: path, comm: world, batchSize: 2).loss(model: model, task: 0)
        let one = try Validator(path: path, comm: .solo).loss(model: model, task: 0)
        XCTAssertEqual(all, one, accuracy: 1e-6 * one)
        print("TrainerMultiRankTests: rank \(world.rank) of \(world.size) ok: validation loss \(all) vs \(one) on one rank")
    }

    /// `--grad-dtype fp16|bf16`: half the bytes per step, and weights within AdamW's per-step bound of the fp32 run
    /// (each element's update is at most about lr per step, so a wrong decoding or a lost rank shows as more).
    func testHalfPrecisionGradientsTrackFP32() throws {
        let world = Communicator.world
        let steps = 3, lr: Float = 1e-3
        func run(_ wire: GradientWireType) throws -> (AdaptedIPT, [StepStats]) {
            let m = perturbedTinyModel(method: .adaptir)
            let t = try Trainer(model: m, comm: world, task: 2, globalBatch: 4, totalSteps: steps, lr: lr)
            t.gradWire = wire
            try t.broadcastState()
            return (m, try runSteps(t, steps: steps))
        }
        let (reference, refStats) = try run(.fp32)
        for wire in [GradientWireType.fp16, .bf16] {
            let (m, stats) = try run(wire)
            XCTAssertEqual(stats[0].bytesReduced, 2 * m.store.trainableCount)
            XCTAssertEqual(stats[0].loss, refStats[0].loss, accuracy: 1e-6, "the first forward does not depend on the wire")
            var worst: Float = 0
            for i in 0..<m.store.trainableCount { worst = max(worst, abs(m.store.trainable.base[i] - reference.store.trainable.base[i])) }
            XCTAssertLessThanOrEqual(worst, 2 * lr * Float(steps), "\(wire)")
            print("TrainerMultiRankTests: rank \(world.rank) of \(world.size) ok: \(wire) gradients, largest weight difference from fp32 \(worst) after \(steps) steps (lr \(lr))")
        }
    }

    /// `--bucket-mb`: the allreduce in small buckets overlapped with the backward gives the weights of the one
    /// blocking allreduce (per tensor, within float rounding), for methods with per-layer tensors, shared ones
    /// (FacT's factors), prompts (VPT) and every backbone tensor (full).
    func testBucketedOverlapMatchesOneAllreduce() throws {
        let world = Communicator.world
        for name in ["adaptir", "fact", "vpt", "full"] {
            func run(bucketBytes: Int) throws -> AdaptedIPT {
                let m = perturbedTinyModel(method: MethodChoice(name))
                let t = try Trainer(model: m, comm: world, task: 2, globalBatch: 4, totalSteps: 3)
                t.bucketBytes = bucketBytes
                try t.broadcastState()
                _ = try runSteps(t, steps: 3)
                return m
            }
            let one = try run(bucketBytes: 0), bucketed = try run(bucketBytes: 2048)
            var worst: Float = 0
            for spec in one.store.specs where one.store.isTrainable(spec.key) {
                let a = bucketed.store[spec.key], b = one.store[spec.key]
                var diff: Float = 0, scale: Float = 0
                for i in 0..<b.count { diff = max(diff, abs(a.data[i] - b.data[i])); scale = max(scale, abs(b.data[i])) }
                worst = max(worst, diff / max(scale, 1e-6))
            }
            XCTAssertLessThanOrEqual(worst, 1e-4, "\(name): bucketed vs one allreduce on \(world.size) ranks")
            print("TrainerMultiRankTests: rank \(world.rank) of \(world.size) ok: \(name) with 2 KiB buckets, worst relative weight difference \(worst)")
        }
    }

    private func checkRanksMatchOneRank(_ method: MethodChoice) throws {
        let world = Communicator.world
        let steps = 3, globalBatch = 4, task = 2
        let distributed = perturbedTinyModel(method: method)
        let backboneBefore = distributed.store.frozen.base.withMemoryRebound(to: UInt32.self, capacity: distributed.store.frozen.count) {
            Array(UnsafeBufferPointer(start: $0, count: distributed.store.frozen.count))
        }
        let t = try Trainer(model: distributed, comm: world, task: task, globalBatch: globalBatch, totalSteps: steps)
        try t.broadcastState()
        let stats = try runSteps(t, steps: steps)
        XCTAssertEqual(stats.map(\.floatsReduced), [Int](repeating: distributed.store.trainableCount, count: steps), "\(method)")

        // Reference: this process alone, the whole global batch.
        let reference = perturbedTinyModel(method: method)
        let r = try Trainer(model: reference, comm: .solo, task: task, globalBatch: globalBatch, totalSteps: steps)
        let refStats = try runSteps(r, steps: steps)

        // Per tensor, relative to that tensor's own scale (a small method tensor is not judged by the largest one).
        var worst: (key: String, ratio: Float) = ("", 0)
        for spec in distributed.store.specs where distributed.store.isTrainable(spec.key) {
            let ta = distributed.store[spec.key], tb = reference.store[spec.key]
            let a = ta.data, b = tb.data
            var diff: Float = 0, scale: Float = 0
            for i in 0..<tb.count { diff = max(diff, abs(a[i] - b[i])); scale = max(scale, abs(b[i])) }
            let ratio = diff / max(scale, 1e-6)
            if ratio > worst.ratio { worst = (spec.key, ratio) }
        }
        // 1e-4 of the tensor's scale: AdamW normalises every element's update to about lr (1e-4 here), so the float
        // order of the rank sum can move an element whose gradient is near zero by a fraction of lr; a wrong
        // reduction (a missing 1/p, a rank's part dropped, unsynchronised batch norm) moves weights by whole lr steps.
        XCTAssertLessThanOrEqual(worst.ratio, 1e-4, "\(method): \(worst.key) after \(steps) steps on \(world.size) ranks vs 1")
        for (x, y) in zip(stats, refStats) { XCTAssertEqual(x.loss, y.loss, accuracy: 1e-5 * max(1, abs(y.loss)), "\(method)") }
        // Running statistics are synchronised too.
        let ra = UnsafeBufferPointer(start: distributed.store.buffers.base, count: distributed.store.buffers.count)
        let rb = UnsafeBufferPointer(start: reference.store.buffers.base, count: reference.store.buffers.count)
        for i in 0..<ra.count { XCTAssertEqual(ra[i], rb[i], accuracy: 1e-4 * max(1, abs(rb[i])), "\(method) buffer \(i)") }

        let backboneAfter = distributed.store.frozen.base.withMemoryRebound(to: UInt32.self, capacity: distributed.store.frozen.count) {
            Array(UnsafeBufferPointer(start: $0, count: distributed.store.frozen.count))
        }
        XCTAssertTrue(backboneAfter == backboneBefore, "\(method): the frozen backbone changed")
        print("TrainerMultiRankTests: rank \(world.rank) of \(world.size) ok: \(method) (\(steps) steps, worst relative weight diff \(worst.ratio) in \(worst.key.isEmpty ? "-" : worst.key) vs 1 rank, \(stats[0].floatsReduced) floats reduced per step)")
    }
}

final class TrainerTests: XCTestCase {
    /// The buckets cover the flat gradient buffer exactly, whole tensors each, the first at most 1 MiB, in reverse
    /// parameter order (the order a backward finishes them).
    func testBucketsPartitionTheGradientBuffer() {
        let m = AdaptedIPT(preset: .tiny, method: .full, seed: 1)
        let r = BucketedReducer(store: m.store, comm: .solo, wire: .fp32, capBytes: 40_000, firstCapBytes: 8_000)
        XCTAssertGreaterThan(r.buckets.count, 2)
        var covered = [Bool](repeating: false, count: m.store.trainableCount)
        for (i, b) in r.buckets.enumerated() {
            for j in b.range { XCTAssertFalse(covered[j]); covered[j] = true }
            XCTAssertEqual(b.tensors.first?.range.lowerBound, b.range.lowerBound)
            XCTAssertEqual(b.tensors.last?.range.upperBound, b.range.upperBound)
            if i > 0 { XCTAssertEqual(b.range.upperBound, r.buckets[i - 1].range.lowerBound, "reverse order, contiguous") }
            if b.tensors.count > 1 { XCTAssertLessThanOrEqual(4 * b.range.count, i == 0 ? 8_000 : 40_000) }
        }
        XCTAssertTrue(covered.allSatisfy { $0 })
    }

    /// `Autograd.backward(leafReady:)` reports every trainable tensor once, and only when its gradient is final.
    func testLeafReadyComesOncePerTensorWithTheFinalGradient() {
        for method in [MethodChoice.adaptir, .full, MethodChoice("fact")] {
            let m = perturbedTinyModel(method: method)
            m.training = true
            m.store.zeroGrad()
            let (lq, gt) = SyntheticSamples.batch([0, 1], scale: 1)
            var atReady: [String: [Float]] = [:]
            l1Loss(m(lq, task: 4), gt).backward(leafReady: { t in
                XCTAssertNil(atReady[t.name ?? "?"], "\(t.name ?? "?") reported twice")
                atReady[t.name ?? "?"] = Array(UnsafeBufferPointer(start: t.grad!.data, count: t.count))
            })
            for spec in m.store.specs where m.store.isTrainable(spec.key) {
                let t = m.store[spec.key]
                let final = Array(UnsafeBufferPointer(start: t.grad!.data, count: t.count))
                if let seen = atReady[spec.key] { XCTAssertEqual(seen, final, "\(method): \(spec.key) changed after it was reported ready") }
                else { XCTAssertTrue(final.allSatisfy { $0 == 0 }, "\(method): \(spec.key) has a gradient but was never reported") }
            }
            XCTAssertGreaterThan(atReady.count, 0)
        }
    }

    func testFloatsReducedEqualTrainableCountForFullFineTuning() throws {
        let m = perturbedTinyModel(method: .full)
        let t = try Trainer(model: m, comm: .solo, task: 4, globalBatch: 2, totalSteps: 1)
        let s = try runSteps(t, steps: 1)[0]
        let backbone = AdaptedIPT.parameterSpecs(preset: .tiny, method: .full).filter { $0.role == .backbone }.reduce(0) { $0 + $1.count }
        XCTAssertEqual(s.floatsReduced, backbone)
        XCTAssertEqual(s.bytesReduced, 4 * backbone)
    }

    /// Fitting one fixed batch: full fine-tuning moves the loss a lot; the tiny adapter (hidden width 2 on a random
    /// backbone) moves it a little, but every step must lower it.
    func testLossDecreasesOnAFixedBatch() throws {
        for (method, steps) in [(MethodChoice.full, 20), (.adaptir, 10)] {
            let t = try Trainer(model: perturbedTinyModel(method: method), comm: .solo, task: 4, globalBatch: 2,
                                totalSteps: 1000, lr: 1e-3)
            var losses: [Double] = []
            for _ in 0..<steps {
                let (lq, gt) = SyntheticSamples.batch([0, 1], scale: 1)
                losses.append(try t.trainStep(lq: lq, gt: gt).loss)
            }
            XCTAssertTrue(zip(losses, losses.dropFirst()).allSatisfy { $1 < $0 }, "\(method): \(losses)")
            if method == .full { XCTAssertLessThan(losses.last!, 0.8 * losses.first!, "\(losses)") }
        }
    }

    func testNonFiniteLossStopsWithStepRankAndTensor() throws {
        let m = perturbedTinyModel()
        let t = try Trainer(model: m, comm: .solo, task: 4, globalBatch: 2, totalSteps: 2)
        var (lq, gt) = SyntheticSamples.batch([0, 1], scale: 1)
        _ = try t.trainStep(lq: lq, gt: gt)
        (lq, gt) = SyntheticSamples.batch([2, 3], scale: 1)
        gt[flat: 5] = .nan
        XCTAssertThrowsError(try t.trainStep(lq: lq, gt: gt)) { error in
            XCTAssertEqual("\(error)", "step 1: non-finite values on rank(s) 0 in rank 0: loss (nan)")
        }
    }

    func testGlobalBatchMustDivideAmongRanks() {
        XCTAssertThrowsError(try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 0, totalSteps: 1))
        XCTAssertThrowsError(try Trainer(model: AdaptedIPT(preset: .tiny, method: .frozen), comm: .solo, task: 2, globalBatch: 2, totalSteps: 1))
    }

    func testMultiStepScheduleHalvesAtTheRecipeFractions() {
        let s = MultiStepLR(base: 1e-4, totalSteps: 100)
        XCTAssertEqual(s.milestones, [50, 80, 90, 95])
        XCTAssertEqual(s.rate(at: 0), 1e-4)
        XCTAssertEqual(s.rate(at: 49), 1e-4)
        XCTAssertEqual(s.rate(at: 50), 5e-5)
        XCTAssertEqual(s.rate(at: 85), 2.5e-5)
        XCTAssertEqual(s.rate(at: 94), 1.25e-5)
        XCTAssertEqual(s.rate(at: 99), 6.25e-6)
    }
}

final class TrainingCheckpointTests: XCTestCase {
    /// 2k steps straight equal k steps, a checkpoint, a fresh process state loaded from it, and k more steps.
    func testResumeIsBitIdentical() throws {
        let path = NSTemporaryDirectory() + "resume-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let k = 3
        let straight = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 2, totalSteps: 2 * k)
        _ = try runSteps(straight, steps: 2 * k)

        let first = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 2, totalSteps: 2 * k)
        _ = try runSteps(first, steps: k)
        try TrainingCheckpoint.save(first, to: path, config: "steps: 6", dataSeed: 9)

        // A new model whose adapter starts elsewhere: everything must come from the file.
        let fresh = AdaptedIPT(preset: .tiny, method: .adaptir, seed: 3)
        let resumed = try Trainer(model: fresh, comm: .solo, task: 2, globalBatch: 2, totalSteps: 2 * k)
        let (config, seed) = try TrainingCheckpoint.load(path, into: resumed)
        XCTAssertEqual(config, "steps: 6")
        XCTAssertEqual(seed, 9)
        XCTAssertEqual(resumed.step, k)
        _ = try runSteps(resumed, steps: k)

        func bits(_ b: Buffer) -> [UInt32] { (0..<b.count).map { b.base[$0].bitPattern } }
        XCTAssertEqual(bits(resumed.model.store.trainable), bits(straight.model.store.trainable))
        XCTAssertEqual(bits(resumed.model.store.buffers), bits(straight.model.store.buffers))
        XCTAssertEqual(resumed.optimizer.expAvgSq.toArray(), straight.optimizer.expAvgSq.toArray())
    }

    func testResumeRefusesADifferentGlobalBatch() throws {
        let path = NSTemporaryDirectory() + "batch-\(UUID().uuidString).h5"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let t = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 2, totalSteps: 2)
        try TrainingCheckpoint.save(t, to: path)
        let other = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 4, totalSteps: 2)
        XCTAssertThrowsError(try TrainingCheckpoint.load(path, into: other)) { error in
            XCTAssertTrue("\(error)".contains("global batch 2"), "\(error)")
        }
    }
}

/// Synthetic data as a BatchSource (this rank's share of each global batch).
final class SyntheticSource: BatchSource {
    let trainer: Trainer
    init(_ trainer: Trainer) { self.trainer = trainer }
    func batch(forStep step: Int) throws -> (lq: Tensor, gt: Tensor) {
        let idx = SyntheticSamples.localIndices(step: step, globalBatch: trainer.globalBatch, rank: trainer.comm.rank, ranks: trainer.comm.size)
        return SyntheticSamples.batch(idx, scale: trainer.model.preset.scales[trainer.task])
    }
}

final class TrainingRunTests: XCTestCase {
    private func options(_ dir: String, steps: Int, every: Int) -> TrainingRunOptions {
        TrainingRunOptions(steps: steps, checkpointEvery: every, outputDirectory: dir)
    }

    func testRunWritesCSVAndCheckpointsAndResumesToTheSameWeights() throws {
        let dir = NSTemporaryDirectory() + "run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Uninterrupted reference.
        let straight = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 2, totalSteps: 4)
        XCTAssertEqual(try TrainingRun(trainer: straight, source: SyntheticSource(straight), options: options(dir + "/a", steps: 4, every: 2)).run(), .finished)
        let csv = try String(contentsOfFile: dir + "/a/train.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.first.map(String.init), TrainingRun.csvHeader)
        // wait, scan and allreduce are separate columns (issue 13): every row has the header's fields, and one
        // process has no gradient allreduce at all while it still scans the gradients.
        let header = TrainingRun.csvHeader.split(separator: ",").map(String.init)
        XCTAssertEqual(Array(header[6...8]), ["wait_ms", "scan_ms", "allreduce_ms"])
        for row in csv.dropFirst() {
            let f = row.split(separator: ",")
            XCTAssertEqual(f.count, header.count, "\(row)")
            XCTAssertEqual(Double(f[8]), 0, "no gradient allreduce on one rank: \(row)")
        }
        XCTAssertEqual(csv.count, 5)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/a/checkpoint.h5"))

        // Stopped by a request after step 2 (as SIGTERM would), then resumed from its checkpoint.
        let first = try Trainer(model: perturbedTinyModel(), comm: .solo, task: 2, globalBatch: 2, totalSteps: 4)
        var opts = options(dir + "/b", steps: 4, every: 0)
        opts.onStep = { s in if s.step == 1 { StopRequest.shared.request() } }
        XCTAssertEqual(try TrainingRun(trainer: first, source: SyntheticSource(first), options: opts).run(), .stopped(atStep: 2))
        StopRequest.shared.reset()
        // A row for a step the stopped run finished after its checkpoint (a crash between the two): it is run again.
        let extra = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/b/train.csv"))
        try extra.seekToEnd(); try extra.write(contentsOf: Data("2,9.5,0,0,0,0,0,0,0,0,0\n".utf8)); try extra.close()
        let second = try Trainer(model: AdaptedIPT(preset: .tiny, method: .adaptir, seed: 3), comm: .solo, task: 2, globalBatch: 2, totalSteps: 4)
        try TrainingCheckpoint.load(dir + "/b/checkpoint.h5", into: second)
        XCTAssertEqual(second.step, 2)
        XCTAssertEqual(try TrainingRun(trainer: second, source: SyntheticSource(second), options: options(dir + "/b", steps: 4, every: 0)).run(), .finished)
        let a = (0..<straight.model.store.trainableCount).map { straight.model.store.trainable.base[$0].bitPattern }
        let b = (0..<second.model.store.trainableCount).map { second.model.store.trainable.base[$0].bitPattern }
        XCTAssertEqual(a, b)
        let rows = try String(contentsOfFile: dir + "/b/train.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.count, 5, "the resumed run appends to the CSV")
        XCTAssertEqual(rows.dropFirst().map { $0.split(separator: ",")[0] }, ["0", "1", "2", "3"], "one row per step")
        XCTAssertFalse(rows.contains { $0.hasPrefix("2,9.5,") }, "the stale row of step 2 is dropped")
    }
}
