import ArgumentParser
import BourseModel
import BoursePolicy
import BourseSimulator
import BourseWorkload
import Foundation

/// `bourse bench policy`: decision time of one round of Bourse's planner (price function,
/// auction, placement) on a cluster of N GPUs with M active jobs.
struct BenchPolicy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Decision time of one Bourse scheduling round for N GPUs and M active jobs.",
        discussion: """
            Builds a cluster of N GPUs (v100, p100 and k80 in equal thirds, --gpus-per-server per \
            node; or --cluster FILE), draws M active elastic jobs from the throughput table with a \
            fixed seed (model uniform, trace scale factor 1/2/4 at 70/10/20 % for data-parallel \
            models, 1 to 4 hours of work on one V100, up to 10 hours in the system), and times \
            whole rounds of the planner (pricing, matching, placement): one warm-up round, then \
            --rounds timed rounds, work and waiting time advancing by a round between them. \
            round_ms is the median. Build in release mode.

            Example: bourse bench policy --gpus 16384 --json -
            """)

    @Option(help: "GPUs in the generated cluster.") var gpus: Int = 1024
    @Option(help: "Active jobs (default: a quarter of the GPUs).") var jobs: Int?
    @Option(help: "GPUs per server in the generated cluster.") var gpusPerServer: Int = 8
    @Option(help: ArgumentHelp("Use this cluster config instead of a generated one.", valueName: "file"))
    var cluster: String?
    @Option(help: "Timed rounds (after one warm-up round).") var rounds: Int = 5
    @Option(help: "Seed of the job draw.") var seed: UInt64 = 1
    @Flag(help: "Pin worker counts to the drawn scale factors (bourse-fixed).") var fixed = false
    @Option(help: "Throughput mode: placement or consolidated.") var throughputMode: String = "placement"
    @Option(
        help: ArgumentHelp("Print the figures as JSON to this file ('-' or no value: standard output).", valueName: "file"))
    var json: String?

    func validate() throws {
        guard gpus >= 3 else { throw ValidationError("--gpus must be at least 3") }
        guard gpusPerServer >= 1 else { throw ValidationError("--gpus-per-server must be >= 1") }
        guard rounds >= 1 else { throw ValidationError("--rounds must be >= 1") }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be >= 1") }
        guard ThroughputMode(rawValue: throughputMode) != nil else {
            throw ValidationError("--throughput-mode must be placement or consolidated")
        }
    }

    func run() async throws {
        let mode = ThroughputMode(rawValue: throughputMode)!
        let table = try SimFiles.report { try ThroughputTable.load(path: try SimFiles.defaultTablePath()) }
        let config: ClusterConfig
        if let cluster {
            do { config = try ClusterConfig.load(path: cluster) } catch { throw SimFailure("\(error)") }
        } else {
            let third = gpus / 3
            config = ClusterConfig.simulated(
                name: "bench-\(gpus)", gpus: [("v100", gpus - 2 * third), ("p100", third), ("k80", third)],
                gpusPerServer: gpusPerServer)
        }
        let activeJobs = jobs ?? max(1, gpus / 4)

        // The pool, as the simulator builds it.
        let types = WorkerPool.gavelTypeOrder(config.gpuTypes.map(\.name).filter { (config.gpuCounts[$0] ?? 0) > 0 })
        var servers: [[[Int]]] = Array(repeating: [], count: types.count)
        var next = 0
        for node in config.nodes {
            for (t, type) in types.enumerated() {
                let n = node.gpus[type] ?? 0
                guard n > 0 else { continue }
                servers[t].append(Array(next..<(next + n)))
                next += n
            }
        }
        let pool = WorkerPool(types: types, servers: servers)

        // Jobs drawn from the table.
        var rng = SeededRandom(seed: seed)
        let models = table.models
        var policyJobs: [PolicyJob] = []
        for id in 0..<activeJobs {
            let model = rng.pick(models)
            let scales = table.scaleFactors(model: model)
            var scale = 1
            if scales.count > 1 {
                let u = rng.nextUnitDouble()
                scale = u < 0.7 ? 1 : (u < 0.8 ? 2 : 4)
                if !scales.contains(scale) { scale = scales[0] }
            }
            let v100 = table.throughput(JobTypeKey(model: model, scaleFactor: scale), gpuType: "v100", consolidated: true)
            let hours = 1 + Double(rng.nextInt(below: 4))
            let total = max(1, (v100 > 0 ? v100 : 1) * hours * 3600)
            let trace = TraceJob(jobType: model, totalSteps: Int(total), scaleFactor: scale)
            let profile = try Simulation.elasticProfile(job: trace, table: table, types: types, mode: mode, fixed: fixed)
            let done = rng.nextUnitDouble() * 0.8
            let option = profile.options.first { $0.workers == scale }!
            policyJobs.append(
                PolicyJob(
                    id: id, scaleFactor: scale, throughputs: option.packed, stepsRemaining: total * (1 - done),
                    timeSinceArrival: rng.nextUnitDouble() * 36_000, elastic: profile))
        }

        var parameters = BourseRoundPlanner.Parameters()
        parameters.name = fixed ? "bourse-fixed" : "bourse"
        var planner = BourseRoundPlanner(pool: pool, parameters: parameters)
        for job in policyJobs { planner.addJob(job.id) }
        var times: [Double] = []
        var placedJobs = 0
        var usedGPUs = 0
        var kept = 0
        var stats = planner.lastStats
        for r in 0...rounds {
            let start = ContinuousClock.now
            let plan = try planner.planRound(now: Double(r) * 360, jobs: policyJobs)
            let elapsed = secondsSince(start) * 1000
            if r > 0 { times.append(elapsed) }
            placedJobs = plan.count
            usedGPUs = plan.reduce(0) { $0 + $1.workers.count }
            kept = plan.filter(\.keepsPreviousWorkers).count
            stats = planner.lastStats
            // Advance: placed jobs progress a little, everyone ages a round.
            let placed = Set(plan.map(\.jobID))
            for k in policyJobs.indices {
                policyJobs[k].timeSinceArrival += 360
                if placed.contains(policyJobs[k].id) {
                    policyJobs[k].stepsRemaining = max(1, policyJobs[k].stepsRemaining * 0.97)
                }
            }
        }
        let sorted = times.sorted()
        let median =
            sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let totalGPUs = pool.capacity.reduce(0, +)
        let fields: [(String, String)] = [
            ("gpus", String(totalGPUs)),
            ("jobs", String(activeJobs)),
            ("round_ms", formatNumber(median)),
            ("round_ms_min", formatNumber(sorted.first ?? 0)),
            ("round_ms_max", formatNumber(sorted.last ?? 0)),
            ("rounds", String(times.count)),
            ("groups", String(planner.groups.count)),
            ("options", String(stats.options)),
            ("pruned_options", String(stats.prunedOptions)),
            ("auction_probes", String(stats.probes)),
            ("placed_jobs", String(placedJobs)),
            ("used_gpus", String(usedGPUs)),
            ("kept_jobs", String(kept)),
            ("value", formatNumber(stats.value)),
            ("dual_bound", formatNumber(stats.dualBound)),
            ("policy", "\"\(parameters.name)\""),
            ("throughput_mode", "\"\(mode.rawValue)\""),
            ("cluster", "\"\(config.name)\""),
        ]
        if let json {
            let text = "{\n" + fields.sorted { $0.0 < $1.0 }.map { "  \"\($0.0)\": \($0.1)" }.joined(separator: ",\n") + "\n}\n"
            try SimFiles.write(text, to: json)
            if json == "-" { return }
        }
        Output.line(
            "bench policy: \(totalGPUs) GPUs (\(planner.groups.count) groups), \(activeJobs) jobs, \(stats.options) options (\(stats.prunedOptions) pruned)"
        )
        Output.line(
            "round: median \(String(format: "%.2f", median)) ms (min \(String(format: "%.2f", sorted.first ?? 0)), max \(String(format: "%.2f", sorted.last ?? 0)), \(times.count) rounds); \(stats.probes) auction probes"
        )
        Output.line(
            "placed \(placedJobs) jobs on \(usedGPUs) GPUs, \(kept) kept their GPUs; value \(String(format: "%.4f", stats.value)) (dual bound \(String(format: "%.4f", stats.dualBound)))"
        )
    }
}
