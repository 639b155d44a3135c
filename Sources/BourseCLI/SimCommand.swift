import ArgumentParser
import BourseLP
import BourseModel
import BoursePolicy
import BourseSimulator
import BourseWorkload
import Foundation

/// `bourse sim`: replay a trace in the simulator under one or several policies.
struct Sim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Replay a trace in the simulator under a scheduling policy.",
        discussion: """
            Runs a trace (Gavel's 10-field format) on a cluster config with Gavel's round-based \
            mechanism (the bourse policies plan each round themselves) on a virtual clock, and reports job completion times (JCT), makespan, \
            utilisation, finish-time fairness (FTF), latency ratio (LR), fragmentation and restarts.

            Policies (Gavel's heterogeneity-aware policy of that name in brackets):
            \(PolicyCatalog.allEntries.map { "  \($0.name.padding(toLength: 16, withPad: " ", startingAt: 0))\($0.summary)\n  \(String(repeating: " ", count: 16))[\($0.gavelName == "-" ? "Bourse's own, docs/bourse-policy.md" : $0.gavelName)]" }.joined(separator: "\n"))

            Examples:
              bourse sim --trace data/traces/dev-80-multi.trace \\
                  --cluster cluster-configs/gavel-4-4-4.yaml --policy gavel-las
              bourse sim --trace data/traces/dev-300-multi.trace \\
                  --cluster cluster-configs/gavel-12-12-12.yaml \\
                  --compare fifo,gavel-las,gavel-ftf --json runs.json

            Multi-GPU jobs whose GPUs sit on different servers run at the table's *_unconsolidated \
            speed (always so with one GPU per server); --throughput-mode consolidated ignores \
            placement as Gavel's own simulator does. The same inputs always give byte-identical \
            --json output. See docs/simulator.md for the metric definitions and Gavel fidelity, \
            docs/bourse-policy.md for Bourse's policy. The restart delay defaults to 30 s when a \
            bourse policy is in the run (then for every policy of the run, so comparisons are \
            like with like) and to 0 s (Gavel's) otherwise.

            Tenants: --tenants N shares the cluster between N tenants (the cluster config's \
            tenants: list with its weights, or N equal ones), jobs assigned round-robin in an order \
            drawn from --seed; the JSON then reports envy_max and, per tenant, the share of GPU \
            time received vs entitled and the average JCT. oef, gavel-las, hops-lrf and the bourse \
            policies respect the weights (docs/fairness.md).
            """)

    @Option(help: ArgumentHelp("Trace file in Gavel's format (see data/README.md).", valueName: "file"))
    var trace: String

    @Option(help: ArgumentHelp("Cluster config (YAML), e.g. cluster-configs/gavel-4-4-4.yaml.", valueName: "file"))
    var cluster: String

    @Option(help: ArgumentHelp("Scheduling policy (see the list above; default: bourse).", valueName: "name"))
    var policy: String?

    @Option(
        help: ArgumentHelp(
            "Run several policies on the same input and print them side by side, e.g. fifo,gavel-las,gavel-ftf.",
            valueName: "p1,p2,..."))
    var compare: String?

    @Option(
        help: ArgumentHelp(
            "Throughput table in Gavel's JSON format (default: the shipped data/gavel-throughputs.json).",
            valueName: "file"))
    var throughputs: String?

    @Option(help: ArgumentHelp("Round length in seconds.", valueName: "seconds"))
    var round: Double = 360

    @Option(help: ArgumentHelp("Seed, recorded in the output (the Gavel baselines are deterministic).", valueName: "n"))
    var seed: UInt64 = 0

    @Option(help: ArgumentHelp("Write the metrics as JSON to this file ('-' for standard output).", valueName: "file"))
    var json: String?

    @Option(name: .customLong("jobs-csv"), help: ArgumentHelp("Write one CSV line per job to this file.", valueName: "file"))
    var jobsCSV: String?

    @Option(
        name: .customLong("restart-seconds"),
        help: ArgumentHelp(
            "Checkpoint-restart delay charged when a job starts or moves to other GPUs (default 30 with a bourse policy in the run, else 0 as in Gavel).",
            valueName: "seconds"))
    var restartSeconds: Double?

    @Option(
        help: ArgumentHelp(
            "Throughputs the bourse policies plan with: oracle (the true table) or cf (collaborative-filtering estimates).",
            valueName: "oracle|cf"))
    var estimator: String = EstimatorMode.cf.rawValue

    @Option(
        name: .customLong("throughput-mode"),
        help: ArgumentHelp("placement (unconsolidated when spread over servers) or consolidated.", valueName: "mode"))
    var throughputMode: String = ThroughputMode.placement.rawValue

    @Option(
        name: .customLong("lp"),
        help: ArgumentHelp("LP method of the policies: interior (like Gavel's ECOS) or simplex.", valueName: "method"))
    var lpMethod: String = "interior"

    @Option(
        name: .customLong("reset-interval"),
        help: ArgumentHelp(
            "Minimum seconds between allocation recomputations (Gavel's default 1920).", valueName: "seconds"))
    var resetInterval: Double = 1920

    @Option(
        name: .customLong("fairness-threshold"),
        help: ArgumentHelp(
            "bourse policies: projected finish-time fairness at which aging doubles a job's value (see docs/bourse-policy.md).",
            valueName: "rho"))
    var fairnessThreshold: Double = BourseRoundPlanner.Parameters().fairnessThreshold

    @Option(
        name: .customLong("fairness-exponent"),
        help: ArgumentHelp("bourse policies: how steeply aging grows past the threshold.", valueName: "k"))
    var fairnessExponent: Double = BourseRoundPlanner.Parameters().fairnessExponent

    @Option(
        name: .customLong("fairness-projection"),
        help: ArgumentHelp(
            "bourse policies: project remaining work at the job's fair share (default) or its best speed.",
            valueName: "share|best"))
    var fairnessProjection: String = "share"

    @Option(
        help: ArgumentHelp(
            "bourse policies: run the policy as K rack shards that trade GPUs over a simulated network (racks are split or grouped into K shards; see docs/trading.md).",
            valueName: "K"))
    var shards: Int?

    @Flag(name: .customLong("no-trading"), help: "With --shards: shards schedule only their own GPUs (to see what trading buys).")
    var noTrading = false

    @Option(
        name: .customLong("net-delay"),
        help: ArgumentHelp("With --shards: mean one-way delay between shards (ms, +-50% jitter, so messages reorder).", valueName: "ms"))
    var netDelay: Double = 0

    @Option(
        name: .customLong("net-loss"),
        help: ArgumentHelp("With --shards: fraction of messages (and gossiped asks) lost.", valueName: "fraction"))
    var netLoss: Double = 0

    @Option(
        name: .customLong("net-duplicate"),
        help: ArgumentHelp("With --shards: fraction of messages delivered twice.", valueName: "fraction"))
    var netDuplicate: Double = 0

    @Flag(
        name: .customLong("no-rehome"),
        help: "With --shards: a job on another shard's lease keeps its home (as on live shards) instead of moving there.")
    var noRehome = false

    @Option(
        name: .customLong("max-phases"),
        help: ArgumentHelp(
            "With --shards: trading phases per round at most (1 ms each; never fewer than four answer times, 12 without --net-delay). A live market's window of 0.09 s at 10 ms per phase is 9.",
            valueName: "n"))
    var maxPhases = 120

    @Option(
        name: .customLong("fairness-lr"),
        help: ArgumentHelp(
            "bourse policies: exponent k of the latency-ratio term (1 + LR)^k in the price (0 = off; larger favours jobs that waited longest relative to their length, see docs/fairness.md).",
            valueName: "k"))
    var fairnessLR: Double = 0

    @Option(
        help: ArgumentHelp(
            "Tenants sharing the cluster, jobs assigned round-robin in an order drawn from --seed: a count N (the cluster config's first N tenants, or N equal tenants t0..t(N-1) if it declares none) or names declared in the config's tenants: list.",
            valueName: "N|a,b,..."))
    var tenants: String?

    @Option(
        name: .customLong("hops-window"),
        help: ArgumentHelp(
            "hops-lrf: service window, as GPUs of the queue head over the cluster's GPUs.", valueName: "factor"))
    var hopsWindow: Double = HopsLRFPlanner.Parameters().windowFactor

    @Option(
        name: .customLong("hops-sensitivity"),
        help: ArgumentHelp(
            "hops-lrf: a job whose spread speed is below this fraction of its packed speed runs on one node only.",
            valueName: "ratio"))
    var hopsSensitivity: Double = HopsLRFPlanner.Parameters().sensitivityThreshold

    @Flag(help: "Never draw a progress bar.")
    var quiet = false

    func validate() throws {
        if policy != nil && compare != nil { throw ValidationError("give either --policy or --compare, not both") }
        guard round > 0 else { throw ValidationError("--round must be > 0") }
        guard ["share", "best"].contains(fairnessProjection) else {
            throw ValidationError("--fairness-projection must be share or best")
        }
        guard fairnessThreshold > 0, fairnessExponent >= 0 else {
            throw ValidationError("--fairness-threshold must be > 0 and --fairness-exponent >= 0")
        }
        guard fairnessLR >= 0, fairnessLR.isFinite else { throw ValidationError("--fairness-lr must be >= 0") }
        guard hopsWindow > 0, hopsWindow.isFinite else { throw ValidationError("--hops-window must be > 0") }
        guard hopsSensitivity >= 0, hopsSensitivity <= 1 else {
            throw ValidationError("--hops-sensitivity must be between 0 and 1")
        }
        if let tenants, Int(tenants) != nil, Int(tenants)! < 1 { throw ValidationError("--tenants must be >= 1") }
        guard EstimatorMode(rawValue: estimator) != nil else { throw ValidationError("--estimator must be oracle or cf") }
        guard effectiveRestart >= 0, effectiveRestart < round else {
            throw ValidationError("--restart-seconds must be >= 0 and shorter than --round")
        }
        guard ThroughputMode(rawValue: throughputMode) != nil else {
            throw ValidationError("--throughput-mode must be placement or consolidated")
        }
        guard ["interior", "simplex"].contains(lpMethod) else { throw ValidationError("--lp must be interior or simplex") }
        if let shards {
            guard shards >= 1 else { throw ValidationError("--shards must be at least 1") }
            for name in policies where !PolicyCatalog.isBourse(name) {
                throw ValidationError("--shards needs Bourse's policies (bourse, bourse-fixed); '\(name)' is a central Gavel policy")
            }
        } else if noTrading || netDelay != 0 || netLoss != 0 || netDuplicate != 0 || maxPhases != 120 || noRehome {
            throw ValidationError("--no-trading, --net-delay, --net-loss, --net-duplicate, --max-phases and --no-rehome need --shards")
        }
        guard maxPhases >= 1 else { throw ValidationError("--max-phases must be at least 1") }
        guard netDelay >= 0, netDelay.isFinite else { throw ValidationError("--net-delay must be >= 0 ms") }
        guard (0...1).contains(netLoss), netLoss < 1 else { throw ValidationError("--net-loss must be in [0, 1)") }
        guard (0...1).contains(netDuplicate) else { throw ValidationError("--net-duplicate must be in [0, 1]") }
        for name in policies where !PolicyCatalog.allNames.contains(name) {
            throw ValidationError(
                "unknown policy '\(name)'; known policies: \(PolicyCatalog.allNames.joined(separator: ", "))")
        }
    }

    /// 30 s when a bourse policy is in the run (for every policy of it), else Gavel's 0.
    private var effectiveRestart: Double {
        restartSeconds ?? (policies.contains(where: PolicyCatalog.isBourse) ? 30 : 0)
    }

    private var policies: [String] {
        if let compare {
            return compare.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return [policy ?? "bourse"]
    }

    func run() throws {
        let tablePath = try throughputs ?? SimFiles.defaultTablePath()
        let table = try SimFiles.report { try ThroughputTable.load(path: tablePath) }
        let clusterConfig: ClusterConfig
        do {
            clusterConfig = try ClusterConfig.load(path: cluster)
        } catch {
            throw SimFailure("\(error)")
        }
        let jobs = try SimFiles.report { try GavelTrace.load(path: trace, table: table) }
        var options = SimulationOptions()
        options.roundSeconds = round
        options.restartSeconds = effectiveRestart
        options.estimator = EstimatorMode(rawValue: estimator)!
        options.bourse.fairnessThreshold = fairnessThreshold
        options.bourse.fairnessExponent = fairnessExponent
        options.bourse.projectAtBestSpeed = fairnessProjection == "best"
        options.bourse.latencyRatioWeight = fairnessLR
        options.hops.windowFactor = hopsWindow
        options.hops.sensitivityThreshold = hopsSensitivity
        options.tenants = try SimFiles.report { try Sim.tenants(tenants, config: clusterConfig, file: cluster) }
        options.seed = seed
        options.throughputMode = ThroughputMode(rawValue: throughputMode)!
        options.lpMethod = lpMethod == "simplex" ? .simplex : .interiorPoint
        options.minimumTimeBetweenAllocationResets = resetInterval
        options.shards = shards
        options.sharding.trading.enabled = !noTrading
        options.sharding.network.delayMs = netDelay
        options.sharding.network.loss = netLoss
        options.sharding.network.duplicate = netDuplicate
        options.sharding.maxPhases = maxPhases
        options.sharding.rehome = !noRehome

        var results: [SimulationResult] = []
        var timings: [Double] = []
        for name in policies {
            let simulation = try SimFiles.report {
                try Simulation(trace: jobs, cluster: clusterConfig, table: table, policy: name, options: options)
            }
            let bar = ProgressBar(enabled: !quiet, label: name)
            let start = Date()
            var result = try SimFiles.report { try simulation.run { bar.update($0) } }
            bar.finish()
            timings.append(Date().timeIntervalSince(start))
            result.traceName = URL(fileURLWithPath: trace).lastPathComponent
            result.throughputsName = URL(fileURLWithPath: tablePath).lastPathComponent
            results.append(result)
        }

        if let json {
            let text =
                results.count == 1
                ? results[0].json()
                : "[\n" + results.map { $0.json().trimmingCharacters(in: .newlines) }.joined(separator: ",\n") + "\n]\n"
            try SimFiles.write(text, to: json)
        }
        if let jobsCSV {
            var text = ""
            for (k, result) in results.enumerated() {
                let csv = result.jobsCSV()
                if results.count == 1 {
                    text = csv
                } else {
                    let lines = csv.split(separator: "\n", omittingEmptySubsequences: true)
                    for (i, line) in lines.enumerated() where i > 0 || k == 0 {
                        text += (i == 0 ? "policy," : "\(result.policy),") + line + "\n"
                    }
                }
            }
            try SimFiles.write(text, to: jobsCSV)
        }
        if json != "-" {
            print(results.count == 1 ? summary(results[0], seconds: timings[0]) : comparisonTable(results, timings))
        }
    }

    private func summary(_ r: SimulationResult, seconds: Double) -> String {
        let m = r.metrics
        let gpus = r.gpus.keys.sorted().map { "\(r.gpus[$0]!) \($0)" }.joined(separator: ", ")
        return """
            policy        \(r.policy) (\(PolicyCatalog.isBourse(r.policy) ? "estimator: \(r.options.estimator.rawValue)" : "Gavel: \(r.gavelPolicy)"))
            trace         \(r.traceName): \(m.jobs) jobs
            cluster       \(r.cluster): \(gpus); round \(formatNumber(r.options.roundSeconds)) s, restart \(formatNumber(r.options.restartSeconds)) s
            JCT           avg \(hours(m.avgJCT))  median \(hours(m.medianJCT))  p95 \(hours(m.p95JCT))  p99 \(hours(m.p99JCT))
            makespan      \(hours(m.makespan))
            utilization   \(String(format: "%.3f", m.utilization)) (Gavel's measure: \(String(format: "%.3f", m.gavelUtilization)))
            FTF           max \(String(format: "%.2f", m.ftfMax))  mean \(String(format: "%.2f", m.ftfMean))
            LR max        \(String(format: "%.2f", m.lrMax))
            fragmentation \(String(format: "%.3f", m.fragmentation))
            envy max      \(String(format: "%.3f", m.envyMax)) over \(m.tenants.count) tenant(s)\(m.tenants.count > 1 ? ": " + m.tenants.map { "\($0.name) \(String(format: "%.2f", $0.shareReceived))/\(String(format: "%.2f", $0.shareEntitled)) of GPU time, JCT \(String(format: "%.2f", $0.avgJCT / 3600)) h" }.joined(separator: "; ") : "")
            restarts      \(m.restarts)
            simulated     \(r.rounds) rounds, \(r.events) events, \(r.allocations) allocations in \(String(format: "%.2f", seconds)) s (\(Int(Double(r.events) / max(seconds, 1e-9))) events/s)
            """ + tradingSummary(r)
    }

    private func tradingSummary(_ r: SimulationResult) -> String {
        let t = r.trading
        guard !t.isEmpty else { return "" }
        func n(_ key: String) -> String { formatNumber(((t[key] ?? 0) * 100).rounded() / 100) }
        return """

            shards        \(n("shards")), trading \(r.options.sharding.trading.enabled ? "on" : "off"); net delay \(formatNumber(r.options.sharding.network.delayMs)) ms, loss \(formatNumber(r.options.sharding.network.loss)), duplicate \(formatNumber(r.options.sharding.network.duplicate))
            trading       \(n("offers")) offers, \(n("accepts")) accepted, \(n("rejects")) rejected; \(n("leases_granted")) leases granted, \(n("leases_renewed")) renewed, \(n("leases_active_mean")) active per round
            per round     \(n("messages_per_round")) messages, \(n("phases_per_round_mean")) phases (max \(n("phases_per_round_max"))), \(n("spread_jobs_per_round")) jobs spread over shards
            objective     \(n("objective_ratio_mean")) of the central planner's on the same snapshot (min \(n("objective_ratio_min")); \(n("objective_bound_ratio_mean")) of its upper bound)
            """
    }

    private func comparisonTable(_ results: [SimulationResult], _ timings: [Double]) -> String {
        let header = ["metric"] + results.map(\.policy)
        var rows: [[String]] = []
        func row(_ name: String, _ value: (SimulationResult) -> String) { rows.append([name] + results.map(value)) }
        row("avg JCT (h)") { String(format: "%.2f", $0.metrics.avgJCT / 3600) }
        row("median JCT (h)") { String(format: "%.2f", $0.metrics.medianJCT / 3600) }
        row("p95 JCT (h)") { String(format: "%.2f", $0.metrics.p95JCT / 3600) }
        row("p99 JCT (h)") { String(format: "%.2f", $0.metrics.p99JCT / 3600) }
        row("makespan (h)") { String(format: "%.2f", $0.metrics.makespan / 3600) }
        row("utilization") { String(format: "%.3f", $0.metrics.utilization) }
        row("FTF max") { String(format: "%.2f", $0.metrics.ftfMax) }
        row("FTF mean") { String(format: "%.2f", $0.metrics.ftfMean) }
        row("LR max") { String(format: "%.2f", $0.metrics.lrMax) }
        row("fragmentation") { String(format: "%.3f", $0.metrics.fragmentation) }
        row("envy max") { String(format: "%.3f", $0.metrics.envyMax) }
        row("restarts") { String($0.metrics.restarts) }
        if results.contains(where: { !$0.trading.isEmpty }) {
            row("objective ratio") { $0.trading["objective_ratio_mean"].map { String(format: "%.3f", $0) } ?? "-" }
            row("messages/round") { $0.trading["messages_per_round"].map { String(format: "%.1f", $0) } ?? "-" }
        }
        rows.append(["wall time (s)"] + timings.map { String(format: "%.2f", $0) })
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        let first = results[0]
        var out =
            "\(first.traceName) (\(first.metrics.jobs) jobs) on \(first.cluster), \(first.options.throughputMode.rawValue) throughputs, restart \(formatNumber(first.options.restartSeconds)) s\n"
        for (i, line) in all.enumerated() {
            out += line.enumerated().map { c, cell in
                c == 0 ? cell.padding(toLength: widths[c], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[c] - cell.count) + cell
            }.joined(separator: "  ")
            out += "\n"
            if i == 0 { out += widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n" }
        }
        return out
    }

    /// The run's tenants from `--tenants` and the config's `tenants:` list (errors name the field).
    static func tenants(_ option: String?, config: ClusterConfig, file: String) throws -> [Tenant] {
        let declared = config.tenants.map { Tenant(name: $0.name, weight: $0.weight) }
        guard let option else { return declared.isEmpty ? [Tenant(name: "default")] : declared }
        if let n = Int(option) {
            guard n >= 1 else { throw SimFailure("--tenants must be >= 1") }
            if declared.isEmpty { return Tenant.equal(n) }
            guard n <= declared.count else {
                throw SimFailure(
                    "--tenants \(n): \(file) declares only \(declared.count) tenants (tenants: \(declared.map(\.name).joined(separator: ", ")))")
            }
            return Array(declared.prefix(n))
        }
        let names = option.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !declared.isEmpty else {
            throw SimFailure("--tenants: \(file) declares no tenants: list; give a count instead, e.g. --tenants 4")
        }
        var seen = Set<String>()
        return try names.map { name in
            guard seen.insert(name).inserted else { throw SimFailure("--tenants: tenant '\(name)' named twice") }
            do {
                return declared[try Tenant.index(of: name, in: declared, field: "--tenants")]
            } catch {
                throw SimFailure("\(error) in \(file)")
            }
        }
    }

    private func hours(_ seconds: Double) -> String {
        "\(formatNumber((seconds * 1000).rounded() / 1000)) s (\(String(format: "%.2f", seconds / 3600)) h)"
    }
}

struct SimFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum SimFiles {
    static let shippedTable = "data/gavel-throughputs.json"

    /// The shipped table: under the working directory, under any ancestor of the executable
    /// (`.build/release/bourse` in a clone), or in the source tree this binary was built from.
    static func defaultTablePath() throws -> String {
        var candidates = [shippedTable]
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = executable.deletingLastPathComponent()
        for _ in 0..<8 {
            candidates.append(dir.appendingPathComponent(shippedTable).path)
            let parent = dir.deletingLastPathComponent()
            if parent.path == dir.path { break }
            dir = parent
        }
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        candidates.append(sourceRoot.appendingPathComponent(shippedTable).path)
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw SimFailure(
            "cannot find the shipped throughput table \(shippedTable) (looked in the working directory, above the "
                + "executable and in \(sourceRoot.path)); run from the repository root or pass --throughputs FILE")
    }

    /// Runs `body`, turning library errors into messages the user sees as they are.
    static func report<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as ValidationError {
            throw error
        } catch {
            throw SimFailure("\(error)")
        }
    }

    static func write(_ text: String, to path: String) throws {
        if path == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw SimFailure("cannot write \(path): \(error.localizedDescription)")
        }
    }
}

/// A one-line progress bar on standard error, drawn only on a terminal and only once a run has
/// lasted two seconds.
final class ProgressBar {
    private let enabled: Bool
    private let label: String
    private let start = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(enabled: Bool, label: String) {
        self.enabled = enabled && isatty(STDERR_FILENO) != 0
        self.label = label
    }

    func update(_ p: SimulationProgress) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(start) > 2, now.timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = now
        drawn = true
        let fraction = p.totalJobs > 0 ? Double(p.completedJobs) / Double(p.totalJobs) : 0
        let width = 30
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = String(
            format: "\r%@ [%@] %3d%%  %d/%d jobs  t=%.1f h  round %d", label, bar, Int(fraction * 100), p.completedJobs,
            p.totalJobs, p.simulatedSeconds / 3600, p.rounds)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
