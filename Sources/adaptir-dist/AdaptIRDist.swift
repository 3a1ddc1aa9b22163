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
        subcommands: [Train.self, Pretrain.self, Pack.self, Eval.self, Restore.self, Inspect.self, Bench.self]
    )
}

/// Commands whose implementation lands with a later issue: they state what they will do and exit non-zero,
/// so no script mistakes them for a finished run.
protocol PlannedCommand: ParsableCommand {
    static var plannedIn: String { get }
}

extension PlannedCommand {
    func run() throws {
        let name = Self.configuration.commandName ?? "command"
        FileHandle.standardError.write(Data(
            "adaptir-dist \(name): not available in this build yet (\(Self.plannedIn)). It will: \(Self.configuration.abstract)\n".utf8))
        throw ExitCode(2)
    }
}

struct Eval: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore a test set with IPT's sliding-window chop and report PSNR/SSIM per spec 5.2.")
    static let plannedIn = "issue #5, the distributed trainer"
}

struct Restore: PlannedCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restore one image with a backbone file and an adapter file, writing a PNG.")
    static let plannedIn = "issue #5, the distributed trainer"
}


struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks: achieved GFLOP/s of the operators (`ops`); model and data benchmarks follow.",
        subcommands: [BenchOps.self, BenchModel.self, BenchData.self]
    )
}
