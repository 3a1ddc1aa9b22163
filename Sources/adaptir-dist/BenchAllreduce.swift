import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist bench allreduce`: under mpirun, times the trainer's gradient allreduce (`Communicator.allreduceSum`,
/// in place, one flat Float buffer) at the AdaptIR and full fine-tuning gradient sizes, with warm-up and best/median
/// of repeats, and prints bytes, ranks, times and the algorithmic and bus bandwidths (nccl-tests' definitions).
struct BenchAllreduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "Time the trainer's in-place float allreduce at the AdaptIR and full fine-tuning gradient sizes (run under mpirun).",
        discussion: """
            Default sizes: the trainable floats of presets small and ipt with methods adaptir and full \
            (7,596; 697,656 = 2.79 MB; 1,820,514; 118,892,370 = 476 MB). Each rank needs one buffer of the largest \
            size (476 MB). Every repeat starts with a barrier and counts the slowest rank's time; the bandwidths use \
            the median: algbw = bytes / time, busbw = 2(p-1)/p * algbw (n/a on one rank, where nothing moves). \
            The first call of each size is checked (every rank must hold the sum over ranks).
            """)

    @Option(help: "Comma-separated float counts or names (small-adaptir, ipt-adaptir, small-full, ipt-full); default: all four.")
    var sizes: String?

    @Option(help: "Timed repeats per size (fewer when --max-seconds runs out first).")
    var repeats: Int = 20

    @Option(help: "Untimed warm-up calls per size (the first is checked).")
    var warmup: Int = 2

    @Option(name: .customLong("max-seconds"), help: "Time budget per size, warm-up included; at least one warm-up and one timed call always run.")
    var maxSeconds: Double = 10

    @Option(help: "Time with the trainer's collective watchdog check-in on (seconds, as `train --watchdog`, whose default is 300); 0: off.")
    var watchdog: Double = 0

    @Option(name: .customLong("grad-dtype"), help: "fp32 (the buffer sum), or fp16/bf16: the trainer's half-precision mean (`train --grad-dtype`), conversions included.")
    var gradDtype: GradientWireType = .fp32

    @Option(help: "Also write the results as CSV to this file (rank 0).") var csv: String?

    func validate() throws {
        guard repeats >= 1 else { throw ValidationError("--repeats must be >= 1, got \(repeats)") }
        guard warmup >= 1 else { throw ValidationError("--warmup must be >= 1, got \(warmup)") }
        guard maxSeconds > 0 else { throw ValidationError("--max-seconds must be > 0, got \(maxSeconds)") }
        guard watchdog >= 0 else { throw ValidationError("--watchdog must be >= 0, got \(watchdog)") }
        if let sizes {
            do { _ = try AllreduceBenchmark.parseSizes(sizes) } catch { throw ValidationError("--sizes: \(error)") }
        }
    }

    func run() throws {
        let list = try sizes.map(AllreduceBenchmark.parseSizes) ?? AllreduceBenchmark.defaultSizes
        let comm = Communicator.world
        defer { Communicator.finalize() }
        comm.watchdogSeconds = watchdog
        let hosts = try comm.allgather(comm.processorName)
        if comm.isRoot {
            var distinct: [String] = []
            for h in hosts where !distinct.contains(h) { distinct.append(h) }
            let placement = distinct.map { h in "\(h): ranks \(hosts.indices.filter { hosts[$0] == h }.map(String.init).joined(separator: ","))" }
            print("\(comm.size) rank(s) on \(distinct.count) host(s) (\(placement.joined(separator: "; "))); "
                  + "\(ProcessInfo.processInfo.activeProcessorCount) cores here; watchdog \(watchdog > 0 ? "on" : "off")")
            print("per size: \(warmup) warm-up call(s), up to \(repeats) timed repeats within \(maxSeconds) s; "
                  + "largest buffer \((list.map(\.bytes).max() ?? 0).grouped) bytes per rank")
            fflush(nil)
        }
        var results: [AllreduceBenchmark.Result] = []
        for size in list {
            let r = try AllreduceBenchmark.measure(comm: comm, size: size, warmup: warmup, repeats: repeats, maxSeconds: maxSeconds, wire: gradDtype)
            results.append(r)
            if comm.isRoot {
                print("  \(size.label): \(r.warmups) warm-up, \(r.repeats) repeats, median \(AllreduceBenchmark.milliseconds(r.medianSeconds)) ms, "
                      + "best \(AllreduceBenchmark.milliseconds(r.bestSeconds)) ms")
                fflush(nil)
            }
        }
        guard comm.isRoot else { return }
        if let csv {
            do { try Data(AllreduceBenchmark.csv(results, hosts: Set(hosts).count).utf8).write(to: URL(fileURLWithPath: csv), options: .atomic) } catch {
                throw ValidationError("--csv \(csv): cannot write (\(error.localizedDescription))")
            }
        }
        print("")
        print(AllreduceBenchmark.markdownTable(results), terminator: "")
        // The PETL argument in one line: the full gradient's allreduce against the adapter's, per preset.
        for preset in ["small", "ipt"] {
            if let a = results.first(where: { $0.size.label == "\(preset) adaptir" }),
               let f = results.first(where: { $0.size.label == "\(preset) full" }), a.medianSeconds > 0 {
                print(String(format: "%@: full / adaptir = %.0fx the bytes, %.0fx the time (median)", preset,
                             Double(f.size.bytes) / Double(a.size.bytes), f.medianSeconds / a.medianSeconds))
            }
        }
    }
}
