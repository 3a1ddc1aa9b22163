import Foundation

/// Training checkpoints: the trainable part of the model (the adapter, or everything for full fine-tuning) in the
/// model checkpoint format, plus group `optimizer` (AdamW's `exp_avg`, `exp_avg_sq` over the flat trainable buffer,
/// attribute `step_count`) and group `trainer` (attributes `step`, `config`, `data_seed`). The data order is a
/// function of (seed, epoch, global index), so (step, seed) is the whole RNG state: resuming continues to the same
/// weights, bit for bit, as a run that was never stopped. Written by rank 0 only, to a temporary name then renamed.
public enum TrainingCheckpoint {
    public static func save(_ trainer: Trainer, to path: String, config: String = "", dataSeed: UInt64 = 0) throws {
        let opt = trainer.optimizer
        try Checkpoint.save(trainer.model, part: trainer.model.trainedPart, to: path, task: trainer.task,
                            step: trainer.step) { f in
            testOnlyWriteDelay()
            try f.write("optimizer/exp_avg", tensor: opt.expAvg)
            try f.write("optimizer/exp_avg_sq", tensor: opt.expAvgSq)
            try f.setAttribute("step_count", opt.stepCount, on: "optimizer")
            try f.write("trainer/global_batch", floats: [Float(trainer.globalBatch)], shape: [])
            try f.setAttribute("step", trainer.step, on: "trainer")
            try f.setAttribute("config", config, on: "trainer")
            try f.setAttribute("data_seed", String(dataSeed), on: "trainer")
        }
    }

    /// TEST ONLY: `ADAPTIR_TEST_CHECKPOINT_DELAY_MS=N` sleeps N ms in the middle of writing a checkpoint (the model
    /// tensors are in the temporary file, the optimizer state is not, nothing is renamed yet), so that
    /// scripts/test-process.sh can kill the job while a half-written temporary file exists and check that the
    /// previous checkpoint survives. Unset (the normal case) it does nothing; never set it for real runs.
    static func testOnlyWriteDelay() {
        guard let v = getenv("ADAPTIR_TEST_CHECKPOINT_DELAY_MS"), let ms = Int(String(cString: v)), ms > 0 else { return }
        usleep(useconds_t(min(ms, 600_000)) * 1000)
    }

    /// Restores weights, running statistics, optimizer state and step into `trainer` (on this rank; broadcast
    /// afterwards with `Trainer.broadcastState`). Returns the stored config text.
    @discardableResult
    public static func load(_ path: String, into trainer: Trainer) throws -> (config: String, dataSeed: UInt64) {
        let model = trainer.model
        try Checkpoint.load(path, into: model, part: model.trainedPart)
        let f = try HDF5File.open(path)
        defer { f.close() }
        let n = trainer.optimizer.count
        let m = try f.readTensor("optimizer/exp_avg", expectedShape: [n])
        let v = try f.readTensor("optimizer/exp_avg_sq", expectedShape: [n])
        guard let stepCount = try f.attributeInt("step_count", on: "optimizer"),
              let step = try f.attributeInt("step", on: "trainer") else {
            throw HDF5Error(file: path, message: "not a training checkpoint: optimizer/trainer state missing")
        }
        let batch = Int(try f.readTensor("trainer/global_batch").item)
        guard batch == trainer.globalBatch else {
            throw HDF5Error(file: path, object: "trainer/global_batch",
                            message: "checkpoint was trained with global batch \(batch), this run uses \(trainer.globalBatch)")
        }
        trainer.optimizer.expAvg.copy(from: m)
        trainer.optimizer.expAvgSq.copy(from: v)
        trainer.optimizer.stepCount = stepCount
        trainer.step = step
        let config = try f.attributeString("config", on: "trainer") ?? ""
        let seed = UInt64(try f.attributeString("data_seed", on: "trainer") ?? "0") ?? 0
        return (config, seed)
    }
}
