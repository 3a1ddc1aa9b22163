import AdaptIRCore
import ArgumentParser
import Foundation

/// `adaptir-dist scaling-model`: the analysis half of `cluster/scaling/run`. Reads the raw measurements the script
/// wrote (DIR/steps.csv: one row per training run; DIR/allreduce.csv: one row per `bench allreduce` size and
/// setting), derives patches/s, efficiency and the exposed communication fraction, fits the allreduce cost model
/// (`AllreduceCostModel`) on the 2-node measurements, checks it against every other simulated-node measurement, and
/// predicts large clusters. Writes DIR/scaling.csv, validation.csv, prediction.csv, model.md and the SVG plots.
struct ScalingModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scaling-model",
        abstract: "Analyse a cluster/scaling/run directory: efficiency, plots, the calibrated allreduce model, its validation and its predictions.",
        discussion: """
            Fit: the shared-memory link on the one-node allreduce benchmark, each network rate's link on the \
            2-node benchmark; every other simulated-node measurement (benchmark sizes at more nodes, training steps) \
            is predicted and compared. Prediction: weak scaling at NODES x --ranks-per-node ranks (one core each, one \
            OpenBLAS thread), --batch-per-rank patches per rank, with the compute per patch of the calibration runs \
            (preset ipt when DIR/steps.csv has them, else the one-node single-rank runs), the blocking allreduce of the \
            trainer, links at 1, 10 and 100 Gbit/s with the line-rate efficiency and latency fitted at 1 Gbit/s, fp32 \
            and fp16 gradients; and the nodes needed to match --target patches/s (one H100 running PyTorch: 111).
            """)

    @Option(help: "The output folder of cluster/scaling/run (holds steps.csv and allreduce.csv).") var dir: String
    @Option(name: .customLong("batch-per-rank"), help: "Patches per rank per step in the prediction.") var batchPerRank = 2
    @Option(name: .customLong("ranks-per-node"), help: "Ranks (cores) per node in the prediction.") var ranksPerNode = 16
    @Option(help: "Patches/s to match (one H100 running PyTorch at preset ipt, adapter step, fp32, batch 16: 111).") var target = 111.0
    @Option(help: "Cores of the machine the measurements ran on (for per-core efficiency; default: this machine's).") var cores: Int?

    func validate() throws {
        guard batchPerRank >= 1 else { throw ValidationError("--batch-per-rank must be >= 1, got \(batchPerRank)") }
        guard ranksPerNode >= 1 else { throw ValidationError("--ranks-per-node must be >= 1, got \(ranksPerNode)") }
        guard target > 0 else { throw ValidationError("--target must be > 0, got \(target)") }
    }

    func run() throws {
        let steps = try CSVTable(path: "\(dir)/steps.csv")
        let bench = try CSVTable(path: "\(dir)/allreduce.csv")
        let machineCores = cores ?? ProcessInfo.processInfo.activeProcessorCount
        let runs = try steps.rows.map { try MeasuredRun($0, file: steps.path) }
        let benches = try bench.rows.map { try MeasuredAllreduce($0, file: bench.path) }
        var md = "## Scaling study: measurements, model and predictions\n\nWritten by `adaptir-dist scaling-model --dir \(dir)` from `steps.csv` (\(runs.count) training runs) and `allreduce.csv` (\(benches.count) allreduce timings).\n\n"
        md += try measuredSection(runs, cores: machineCores)
        let (links, fitText) = try fitLinks(benches)
        md += fitText
        md += validationSection(runs: runs, benches: benches, links: links)
        md += try predictionSection(runs: runs, links: links)
        try Data(md.utf8).write(to: URL(fileURLWithPath: "\(dir)/model.md"), options: .atomic)
        print(md)
    }

    // MARK: - Measurements

    private func measuredSection(_ runs: [MeasuredRun], cores: Int) throws -> String {
        var csv = "topology,nodes,rate,ranks,mode,method,preset,grad_dtype,global_batch,s_per_step,patches_per_s,efficiency,per_core_efficiency,compute_ms,wait_ms,scan_ms,allreduce_ms,optimizer_ms,comm_fraction,bytes\n"
        var md = "### Measured\n\nEfficiency = patches/s at p ranks / (p x patches/s of one rank on one node, same method, mode and gradient type); per-core efficiency divides by the busy cores, min(p, \(cores)), instead of p (the simulated nodes share the same \(cores) cores); exposed communication = the gradient allreduce (`allreduce_ms`) / step time.\n\n"
        md += "| topology | rate | nodes | ranks | mode | method | grad | global batch | s/step | patches/s | efficiency | per-core eff. | compute ms | allreduce ms | exposed comm | bytes/step |\n|---|---|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        for r in runs where r.topology != "calib" {
            let eff = efficiency(of: r, in: runs, cores: r.ranks), perCore = efficiency(of: r, in: runs, cores: min(r.ranks, cores))
            csv += [r.topology, "\(r.nodes)", r.rate, "\(r.ranks)", r.mode, r.method, r.preset, r.gradDtype, "\(r.globalBatch)",
                    fmt(r.secondsPerStep, 4), fmt(r.patchesPerSecond, 2), eff.map { fmt($0, 4) } ?? "", perCore.map { fmt($0, 4) } ?? "",
                    fmt(r.computeMs, 1), fmt(r.waitMs, 2), fmt(r.scanMs, 2), fmt(r.allreduceMs, 2), fmt(r.optimizerMs, 2),
                    fmt(r.commFraction, 4), "\(r.bytes)"].joined(separator: ",") + "\n"
            md += "| \(r.topology) | \(r.rate) | \(r.nodes) | \(r.ranks) | \(r.mode) | \(r.method) | \(r.gradDtype) | \(r.globalBatch) | \(fmt(r.secondsPerStep, 3)) | \(fmt(r.patchesPerSecond, 1)) | \(eff.map { pct($0) } ?? "–") | \(perCore.map { pct($0) } ?? "–") | \(fmt(r.computeMs, 0)) | \(fmt(r.allreduceMs, 2)) | \(pct(r.commFraction, 1)) | \(r.bytes.grouped) |\n"
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/scaling.csv"), options: .atomic)
        md += "\n" + plotMeasured(runs, cores: cores)
        return md
    }

    /// Patches/s of `r` per core over `cores` cores, against its one-rank baseline's (nil without a baseline).
    private func efficiency(of r: MeasuredRun, in runs: [MeasuredRun], cores: Int) -> Double? {
        baseline(for: r, in: runs).map { r.patchesPerSecond / (Double(cores) * $0.patchesPerSecond) }
    }

    /// The one-rank, one-node run of the same method, mode, preset and gradient type (fp32 when that is missing).
    private func baseline(for r: MeasuredRun, in runs: [MeasuredRun]) -> MeasuredRun? {
        let candidates = runs.filter { $0.topology == "node" && $0.ranks == 1 && $0.method == r.method && $0.mode == r.mode && $0.preset == r.preset }
        return candidates.first { $0.gradDtype == r.gradDtype } ?? candidates.first { $0.gradDtype == "fp32" }
    }

    /// One SVG per topology and rate: patches/s, per-core efficiency and exposed communication against ranks, one
    /// line per method and mode.
    private func plotMeasured(_ runs: [MeasuredRun], cores: Int) -> String {
        var md = ""
        let groups = Dictionary(grouping: runs.filter { $0.topology != "calib" }) { "\($0.topology)-\($0.rate)" }
        for key in groups.keys.sorted() {
            let rows = groups[key]!
            var series: [(title: String, file: String)] = []
            for s in Dictionary(grouping: rows, by: { "\($0.method) \($0.mode)\($0.gradDtype == "fp32" ? "" : " \($0.gradDtype)")" }).sorted(by: { $0.key < $1.key }) {
                let file = "\(dir)/plot-\(key)-\(s.key.replacingOccurrences(of: " ", with: "-")).dat"
                var text = "# ranks patches_per_s per_core_efficiency_percent comm_percent\n"
                for r in s.value.sorted(by: { $0.ranks < $1.ranks }) {
                    let perCore = 100 * (efficiency(of: r, in: runs, cores: min(r.ranks, cores)) ?? .nan)
                    text += "\(r.ranks) \(fmt(r.patchesPerSecond, 3)) \(fmt(perCore, 2)) \(fmt(100 * r.commFraction, 3))\n"
                }
                try? Data(text.utf8).write(to: URL(fileURLWithPath: file))
                series.append((s.key, file))
            }
            let title = key.hasPrefix("node") ? "one node (shared memory)" : "simulated nodes, \(rows[0].rate) links, one rank per node"
            func plotLine(_ column: Int) -> String {
                "plot " + series.map { "'\($0.file)' using 1:\(column) with linespoints title '\($0.title)'" }.joined(separator: ", ")
            }
            let svg = "scaling-\(key).svg"
            let script = """
                set terminal svg size 1200,400 dynamic font 'sans,11'
                set output '\(dir)/\(svg)'
                set multiplot layout 1,3 title '\(title)' noenhanced
                set key top left noenhanced
                set grid
                set xlabel 'ranks'
                set logscale x 2
                set ylabel 'patches/s'
                \(plotLine(2))
                set ylabel 'per-core efficiency (%)'
                set yrange [0:*]
                \(plotLine(3))
                set ylabel 'exposed communication (% of step)'
                \(plotLine(4))
                unset multiplot
                """
            md += runGnuplot(script, scriptPath: "\(dir)/scaling-\(key).gp") ? "![\(title)](\(svg))\n\n" : "(No plot for \(title): gnuplot missing or failed.)\n\n"
        }
        return md
    }

    // MARK: - Fit

    struct Links { var intra: LinkCost; var inter: [String: LinkCost] }

    /// Allreduces below this size pass the simulated links' token bucket (burst 256 KB) unshaped: they give a shaped
    /// link its latency but not its bandwidth, and their held-out error is reported apart from the larger sizes'.
    static let shapedFitMinBytes = 1 << 20

    private func fitLinks(_ benches: [MeasuredAllreduce]) throws -> (Links, String) {
        let shm = benches.filter { $0.topology == "node" && $0.ranks > 1 && $0.gradDtype == "fp32" }
        guard let intra = AllreduceCostModel.fit(shm.map { b in
            let t = AllreduceCostModel.terms(bytes: Double(b.bytes), parts: b.ranks)
            return .init(latencyTerms: t.latency, byteTerms: t.bytes, seconds: b.medianMs / 1e3)
        }) else { throw ValidationError("\(dir)/allreduce.csv: no one-node measurement with 2 or more ranks to fit the shared-memory link") }
        var md = "### The allreduce model, fitted\n\n`T(n, N, q) = 2 log2 q · α_shm + 2 (q-1)/q · n · β_shm + 2 log2 N · α_net + 2 (N-1)/N · n · β_net` (n bytes, N nodes, q ranks per node, block placement; OpenMPI 4.1's Rabenseifner allreduce at these sizes). Least squares on relative errors; a shaped link's latency from the allreduces below 1 MiB, which pass tc tbf's 256 KB burst at the host's speed, and its bandwidth from the larger ones.\n\n"
        md += "| link | fitted on | latency α | bandwidth 1/β | of line rate |\n|---|---|---:|---:|---:|\n"
        md += "| shared memory | one node, \(Set(shm.map(\.ranks)).sorted().map(String.init).joined(separator: ", ")) ranks, \(shm.count) sizes | \(fmt(intra.latency * 1e6, 1)) µs | \(fmt(intra.bandwidth / 1e9, 2)) GB/s | – |\n"
        var inter: [String: LinkCost] = [:]
        let sim = benches.filter { $0.topology == "sim" && $0.gradDtype == "fp32" }
        for rate in Set(sim.map(\.rate)).sorted(by: { gigabits($0) < gigabits($1) }) {
            let rows = sim.filter { $0.rate == rate }
            guard let fewest = rows.map(\.nodes).min() else { continue }
            // tc tbf lets a burst (cluster/netns-nodes.sh: 256 KB) through at the host's speed, so the smaller
            // allreduces see the link's latency but not its shaped rate: the latency comes from them (latency-only
            // fit), the bandwidth from the sizes of 1 MiB and more with that latency held.
            let atFewest = rows.filter { $0.nodes == fewest }
            func samples(_ rows: [MeasuredAllreduce]) -> [AllreduceCostModel.Sample] {
                rows.map { b in
                    let q = b.ranks / b.nodes, t = AllreduceCostModel.terms(bytes: Double(b.bytes), parts: b.nodes)
                    let intraPart = AllreduceCostModel.seconds(bytes: Double(b.bytes), nodes: 1, ranksPerNode: q, intra: intra, inter: intra)
                    return .init(latencyTerms: t.latency, byteTerms: t.bytes, seconds: max(1e-9, b.medianMs / 1e3 - intraPart))
                }
            }
            let small = samples(atFewest.filter { $0.bytes < Self.shapedFitMinBytes })
            let large = samples(atFewest.filter { $0.bytes >= Self.shapedFitMinBytes })
            let split = !small.isEmpty && !large.isEmpty
            let latency = split ? AllreduceCostModel.fit(small.map { .init(latencyTerms: $0.latencyTerms, byteTerms: 0, seconds: $0.seconds) })?.latency ?? 0 : 0
            guard let link = split ? AllreduceCostModel.fitBandwidth(large, latency: latency) : AllreduceCostModel.fit(samples(atFewest)) else { continue }
            inter[rate] = link
            let line = gigabits(rate) * 1e9 / 8
            md += "| network \(rate) (tc tbf) | \(fewest) simulated nodes, \(split ? "α on \(small.count) size(s) < 1 MiB, β on \(large.count) ≥ 1 MiB" : "\(atFewest.count) sizes") | \(fmt(link.latency * 1e6, 1)) µs | \(fmt(link.bandwidth / 1e9, 3)) GB/s | \(line > 0 ? pct(link.bandwidth / line) : "–") |\n"
        }
        guard !inter.isEmpty else { throw ValidationError("\(dir)/allreduce.csv: no simulated-node measurement to fit a network link") }
        return (Links(intra: intra, inter: inter), md + "\n")
    }

    // MARK: - Validation

    private func validationSection(runs: [MeasuredRun], benches: [MeasuredAllreduce], links: Links) -> String {
        var csv = "kind,rate,nodes,ranks,what,bytes,used_for_fit,measured_ms,predicted_ms,error_percent\n"
        var md = "### The model against every simulated-node measurement\n\nRows marked *fit* calibrated the link (the model reproduces them by construction); the others are predictions. For training steps the model keeps the run's measured compute, optimizer, scan and wait and predicts the gradient allreduce, so the step error is the allreduce error diluted by the compute.\n\n"
        md += "| kind | rate | nodes | ranks | what | bytes | measured ms | predicted ms | error |\n|---|---|---:|---:|---|---:|---:|---:|---:|\n"
        var heldOut: [Double] = [], heldOutSmall: [Double] = [], heldOutSteps: [Double] = []
        let fitNodes = Dictionary(grouping: benches.filter { $0.topology == "sim" }, by: \.rate).mapValues { $0.map(\.nodes).min() ?? 0 }
        func row(_ kind: String, _ rate: String, _ nodes: Int, _ ranks: Int, _ what: String, _ bytes: Int, _ fit: Bool, _ measured: Double, _ predicted: Double) {
            let err = measured > 0 ? (predicted - measured) / measured : 0
            csv += "\(kind),\(rate),\(nodes),\(ranks),\(what),\(bytes),\(fit),\(fmt(measured, 3)),\(fmt(predicted, 3)),\(fmt(100 * err, 1))\n"
            md += "| \(kind) | \(rate) | \(nodes) | \(ranks) | \(what)\(fit ? " *fit*" : "") | \(bytes.grouped) | \(fmt(measured, 2)) | \(fmt(predicted, 2)) | \(fmt(100 * err, 0)) % |\n"
        }
        for b in benches where b.topology == "sim" && b.gradDtype == "fp32" {
            guard let inter = links.inter[b.rate] else { continue }
            let p = 1e3 * AllreduceCostModel.seconds(bytes: Double(b.bytes), nodes: b.nodes, ranksPerNode: b.ranks / b.nodes, intra: links.intra, inter: inter)
            let small = b.bytes < Self.shapedFitMinBytes
            let fit = b.nodes == fitNodes[b.rate]
            row("allreduce", b.rate, b.nodes, b.ranks, b.label + (small ? " (below tbf burst)" : ""), b.bytes, fit, b.medianMs, p)
            if !fit {
                if small { heldOutSmall.append(abs(p - b.medianMs) / b.medianMs) } else { heldOut.append(abs(p - b.medianMs) / b.medianMs) }
            }
        }
        for r in runs where r.topology == "sim" {
            guard let inter = links.inter[r.rate] else { continue }
            let ar = 1e3 * AllreduceCostModel.seconds(bytes: Double(r.bytes), nodes: r.nodes, ranksPerNode: r.ranks / max(1, r.nodes), intra: links.intra, inter: inter)
            let what = "\(r.method) \(r.mode)\(r.gradDtype == "fp32" ? "" : " " + r.gradDtype)"
            row("step allreduce", r.rate, r.nodes, r.ranks, what, r.bytes, false, r.allreduceMs, ar)
            let measuredStep = 1e3 * r.secondsPerStep
            let predictedStep = measuredStep - r.allreduceMs + ar
            row("step time", r.rate, r.nodes, r.ranks, what, r.bytes, false, measuredStep, predictedStep)
            heldOutSteps.append(abs(predictedStep - measuredStep) / measuredStep)
        }
        try? Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/validation.csv"), options: .atomic)
        func mean(_ x: [Double]) -> String { x.isEmpty ? "–" : pct(x.reduce(0, +) / Double(x.count)) }
        md += "\nMean absolute error: allreduce timings of 1 MiB or more not used for the fit \(mean(heldOut)) (\(heldOut.count) rows); smaller allreduces, which the token bucket's burst lets through unshaped, \(mean(heldOutSmall)) (\(heldOutSmall.count) rows); training step times \(mean(heldOutSteps)) (\(heldOutSteps.count) rows).\n\n"
        return md
    }

    // MARK: - Prediction

    private func predictionSection(runs: [MeasuredRun], links: Links) throws -> String {
        let calib = runs.filter { $0.topology == "calib" && $0.ranks == 1 }
        let source = calib.isEmpty ? runs.filter { $0.topology == "node" && $0.ranks == 1 && $0.mode == "weak" && $0.gradDtype == "fp32" } : calib
        guard let oneGig = links.inter["1gbit"] ?? links.inter.values.first else { throw ValidationError("no network link fitted") }
        let lineRate = gigabits(links.inter["1gbit"] != nil ? "1gbit" : links.inter.keys.first!) * 1e9 / 8
        let efficiency = min(1, oneGig.bandwidth / lineRate)
        var md = "### Predicted: weak scaling on clusters of \(ranksPerNode)-core nodes\n\n"
        md += "\(ranksPerNode) ranks per node (one core and one OpenBLAS thread each), \(batchPerRank) patches per rank per step, `--map-by slot`, the trainer's blocking allreduce after the backward. Compute per patch and the per-step fixed costs from \(calib.isEmpty ? "the one-node single-rank runs" : "the single-rank calibration runs") (preset \(source.first?.preset ?? "?")); links at 1, 10 and 100 Gbit/s with the \(pct(efficiency)) of line rate and the \(fmt(oneGig.latency * 1e6, 0)) µs latency fitted at 1 Gbit/s (a TCP latency: InfiniBand's is some 50x lower, which matters only for the small adapter gradient); the shared-memory link fitted on this machine. fp16 halves the gradient bytes (its conversion cost is not modelled).\n\n"
        var csv = "method,preset,grad_dtype,rate_gbit,nodes,cores,batch_per_rank,step_s,allreduce_s,patches_per_s,efficiency,comm_fraction\n"
        var table = "| method | grad | Gbit/s | " + nodeCounts.map { "\($0) nodes" }.joined(separator: " | ") + " |\n|---|---|---:|" + nodeCounts.map { _ in "---:" }.joined(separator: "|") + "|\n"
        var reach = "| method | grad | Gbit/s | nodes to reach \(fmt(target, 0)) patches/s | cores | efficiency there |\n|---|---|---:|---:|---:|---:|\n"
        var plotFiles: [(String, String)] = []
        for r in source.sorted(by: { $0.method < $1.method }) {
            for dtype in ["fp32", "fp16"] {
                let model = StepCostModel(computePerPatch: r.computeMs / 1e3 / Double(r.globalBatch),
                                          fixedSeconds: (r.optimizerMs + r.scanMs + r.waitMs) / 1e3,
                                          gradientBytes: Double(r.bytes) * (dtype == "fp16" ? 0.5 : 1) * (r.gradDtype == "fp32" ? 1 : 2))
                for gbit in [1.0, 10.0, 100.0] {
                    let inter = LinkCost.network(gigabits: gbit, efficiency: efficiency, latency: oneGig.latency)
                    var cells: [String] = [], dat = "# nodes patches_per_s efficiency_percent\n"
                    for n in predictionNodes {
                        let p = model.predict(batchPerRank: batchPerRank, nodes: n, ranksPerNode: ranksPerNode, intra: links.intra, inter: inter)
                        csv += "\(r.method),\(r.preset),\(dtype),\(fmt(gbit, 0)),\(n),\(n * ranksPerNode),\(batchPerRank),\(fmt(p.stepSeconds, 4)),\(fmt(p.allreduceSeconds, 5)),\(fmt(p.patchesPerSecond, 2)),\(fmt(p.efficiency, 4)),\(fmt(p.commFraction, 4))\n"
                        dat += "\(n) \(fmt(p.patchesPerSecond, 3)) \(fmt(100 * p.efficiency, 2))\n"
                        if nodeCounts.contains(n) { cells.append("\(fmt(p.patchesPerSecond, 0)) (\(pct(p.efficiency)))") }
                    }
                    table += "| \(r.method) | \(dtype) | \(fmt(gbit, 0)) | " + cells.joined(separator: " | ") + " |\n"
                    if let n = model.nodesToReach(target, batchPerRank: batchPerRank, ranksPerNode: ranksPerNode, intra: links.intra, inter: inter) {
                        let p = model.predict(batchPerRank: batchPerRank, nodes: n, ranksPerNode: ranksPerNode, intra: links.intra, inter: inter)
                        reach += "| \(r.method) | \(dtype) | \(fmt(gbit, 0)) | \(n) | \((n * ranksPerNode).grouped) | \(pct(p.efficiency)) |\n"
                    } else {
                        reach += "| \(r.method) | \(dtype) | \(fmt(gbit, 0)) | not within 4096 nodes | – | – |\n"
                    }
                    let file = "\(dir)/predict-\(r.method)-\(dtype)-\(Int(gbit))g.dat"
                    try? Data(dat.utf8).write(to: URL(fileURLWithPath: file))
                    plotFiles.append(("\(r.method) \(dtype) \(Int(gbit)) Gbit/s", file))
                }
            }
        }
        try Data(csv.utf8).write(to: URL(fileURLWithPath: "\(dir)/prediction.csv"), options: .atomic)
        md += "Patches/s (efficiency) at N nodes:\n\n" + table + "\n" + reach + "\n"
        let lines = plotFiles.map { "'\($0.1)' using 1:COL with linespoints \($0.0.contains("fp16") ? "dt 2 " : "")title '\($0.0)'" }
        let script = """
            set terminal svg size 1400,460 dynamic font 'sans,11'
            set output '\(dir)/prediction.svg'
            set multiplot layout 1,2 title 'predicted weak scaling, \(ranksPerNode) ranks per node, \(batchPerRank) patches per rank (preset \(source.first?.preset ?? "?"))' noenhanced
            set key outside right top noenhanced font ',9'
            set grid
            set logscale x 2
            set xlabel 'nodes'
            set logscale y
            set ylabel 'patches/s'
            plot \(lines.map { $0.replacingOccurrences(of: "COL", with: "2") }.joined(separator: ", ")), \(target) with lines lw 2 lc rgb 'black' title 'one H100 (PyTorch)'
            unset logscale y
            set yrange [0:105]
            set ylabel 'efficiency (%)'
            plot \(lines.map { $0.replacingOccurrences(of: "COL", with: "3") }.joined(separator: ", "))
            unset multiplot
            """
        md += runGnuplot(script, scriptPath: "\(dir)/prediction.gp") ? "![predicted weak scaling](prediction.svg)\n\n" : "(No prediction plot: gnuplot missing or failed.)\n\n"
        return md
    }

    private var predictionNodes: [Int] { (1...8).map { 1 << $0 } }   // 2 ... 256
    private var nodeCounts: [Int] { [2, 8, 32, 128, 256] }
}

/// 1 for "1gbit", 10 for "10gbit"; 0 for anything else ("shm").
private func gigabits(_ rate: String) -> Double {
    rate.hasSuffix("gbit") ? Double(rate.dropLast(4)) ?? 0 : 0
}

private func fmt(_ x: Double, _ digits: Int) -> String { x.isFinite ? String(format: "%.\(digits)f", x) : "nan" }
private func pct(_ x: Double, _ digits: Int = 0) -> String { fmt(100 * x, digits) + " %" }

/// A comma-separated file with a header line; fields never contain commas.
struct CSVTable {
    let path: String
    let rows: [[String: String]]

    init(path: String) throws {
        self.path = path
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ValidationError("\(path): cannot read the file") }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
        guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init) else {
            throw ValidationError("\(path): empty file (a header line is expected)")
        }
        rows = try lines.dropFirst().enumerated().map { i, line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == header.count else {
                throw ValidationError("\(path): line \(i + 2) has \(fields.count) fields, the header \(header.count)")
            }
            return Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
    }
}

private func field(_ row: [String: String], _ key: String, _ file: String) throws -> String {
    guard let v = row[key] else { throw ValidationError("\(file): no column '\(key)'") }
    return v
}

private func number(_ row: [String: String], _ key: String, _ file: String) throws -> Double {
    let text = try field(row, key, file)
    guard let v = Double(text), v.isFinite else { throw ValidationError("\(file): column '\(key)' holds '\(text)', not a number") }
    return v
}

/// One training run of steps.csv (rank 0's train.csv averaged after the warm-up steps).
struct MeasuredRun {
    var topology, rate, mode, method, preset, gradDtype: String
    var nodes, ranks, globalBatch, bytes: Int
    var secondsPerStep, computeMs, waitMs, scanMs, allreduceMs, optimizerMs: Double
    var patchesPerSecond: Double { Double(globalBatch) / secondsPerStep }
    var commFraction: Double { allreduceMs / (1e3 * secondsPerStep) }

    init(_ row: [String: String], file: String) throws {
        topology = try field(row, "topology", file); rate = try field(row, "rate", file); mode = try field(row, "mode", file)
        method = try field(row, "method", file); preset = try field(row, "preset", file); gradDtype = try field(row, "grad_dtype", file)
        nodes = Int(try number(row, "nodes", file)); ranks = Int(try number(row, "ranks", file))
        globalBatch = Int(try number(row, "global_batch", file)); bytes = Int(try number(row, "bytes", file))
        secondsPerStep = try number(row, "s_per_step", file); computeMs = try number(row, "compute_ms", file)
        waitMs = try number(row, "wait_ms", file); scanMs = try number(row, "scan_ms", file)
        allreduceMs = try number(row, "allreduce_ms", file); optimizerMs = try number(row, "optimizer_ms", file)
        guard secondsPerStep > 0, ranks >= 1, nodes >= 1, globalBatch >= 1 else { throw ValidationError("\(file): a run with s_per_step \(secondsPerStep), \(ranks) ranks, \(nodes) nodes, global batch \(globalBatch)") }
    }
}

/// One size of one `bench allreduce` run of allreduce.csv.
struct MeasuredAllreduce {
    var topology, rate, label, gradDtype: String
    var nodes, ranks, bytes: Int
    var medianMs: Double

    init(_ row: [String: String], file: String) throws {
        topology = try field(row, "topology", file); rate = try field(row, "rate", file); label = try field(row, "label", file)
        gradDtype = try field(row, "grad_dtype", file)
        nodes = Int(try number(row, "nodes", file)); ranks = Int(try number(row, "ranks", file)); bytes = Int(try number(row, "bytes", file))
        medianMs = try number(row, "median_ms", file)
    }
}
