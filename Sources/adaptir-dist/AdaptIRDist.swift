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

    /// OpenBLAS picks its kernels when the process loads it, before any Swift code runs; when it picked a family
    /// older than the CPU (a CPU its tables do not know), or its AVX-512 kernels on a Zen 4 (slower there than its
    /// Haswell ones), the process starts itself again, before MPI_Init, with OPENBLAS_CORETYPE naming the right one
    /// (`BLAS.coreTypeOverride`). A user's own OPENBLAS_CORETYPE is always kept.
    static func main() {
        if let (core, fallback) = BLAS.coreTypeOverride {
            let was = BLAS.coreName
            setenv("OPENBLAS_CORETYPE", core, 1)
            let env = ProcessInfo.processInfo.environment
            if fallback && (env["OMPI_COMM_WORLD_RANK"] ?? env["PMI_RANK"] ?? "0") == "0" {
                FileHandle.standardError.write(Data(("adaptir-dist: OpenBLAS chose its \(was) kernels, older than this CPU's "
                    + "vector units; running with OPENBLAS_CORETYPE=\(core) (set OPENBLAS_CORETYPE to choose)\n").utf8))
            }
            execv("/proc/self/exe", CommandLine.unsafeArgv)
            // Not reached unless exec failed: go on with the kernels OpenBLAS chose.
        }
        main(nil)
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: the training step (`step`), operators (`ops`), the whole model (`model`), the patch reader (`data`) and the gradient allreduce (`allreduce`).",
        subcommands: [BenchStep.self, BenchOps.self, BenchModel.self, BenchData.self, BenchAllreduce.self]
    )
}
