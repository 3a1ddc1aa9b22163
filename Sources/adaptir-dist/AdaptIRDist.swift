import AdaptIRCore
import ArgumentParser
import Foundation

@main
struct AdaptIRDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adaptir-dist",
        abstract: "Adapt a frozen IPT image-restoration transformer with AdaptIR, data-parallel over MPI.",
        discussion: """
            Run under mpirun for data parallelism (e.g. `mpirun -n 8 adaptir-dist train`); every command also \
            works as a single process.
            """,
        subcommands: [Train.self, Pretrain.self, Pack.self, Eval.self, Restore.self, Inspect.self, Bench.self, Compare.self, ScalingModelCommand.self]
    )
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: the training step (`step`), operators (`ops`), the whole model (`model`), the patch reader (`data`) and the gradient allreduce (`allreduce`).",
        subcommands: [BenchStep.self, BenchOps.self, BenchModel.self, BenchData.self, BenchAllreduce.self]
    )
}
