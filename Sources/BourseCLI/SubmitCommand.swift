import ArgumentParser
import BourseGateway
import BourseModel
import BourseWire
import BourseWorkload
import Foundation

/// `bourse submit`: one job from flags, or a trace replayed on the cluster clock.
struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit a job to the gateway.",
        discussion: """
            The gateway checks the job against its throughput table (job type, worker counts), \
            stores it durably and answers with the job id and its home shard. Prints \
            "submitted JOB (home shard SHARD)". With --idempotency-key, retrying the same \
            submission returns the same job instead of a new one.

            Examples:
              bourse submit --config cluster-configs/demo.yaml \\
                  --job-type "ResNet-18 (batch size 32)" --steps 20000 --workers 2
              bourse submit --gateway tcp://127.0.0.1:7700 \\
                  --job-type "LM (batch size 20)" --steps 5000 --workers 2 \\
                  --min-workers 1 --max-workers 8 --tenant alice --idempotency-key run-17
              bourse submit --gateway tcp://127.0.0.1:7700 \\
                  --job-type A3C --steps 1000 --workers 1 --json

            Job types are the models of the throughput table (data/gavel-throughputs.json), e.g. \
            "ResNet-50 (batch size 64)", "LM (batch size 20)", "CycleGAN", "A3C".

            With --trace FILE (Gavel's trace format, see data/README.md) every job of the trace is \
            submitted at its arrival time on the cluster clock: arrival / speed-up seconds of wall \
            time after the replay starts (the speed-up of the `bourse up` run, else --speedup, else \
            the config's). Each job's idempotency key is the trace name and line, so an interrupted \
            replay can be run again without duplicating what was already accepted. A trace job \
            without an elastic range gets the range of its model in the throughput table (as \
            `bourse sim` reads the trace): the elastic policies (bourse) may resize it.

              bourse up cluster-configs/gavel-4-4-4.yaml --speedup 720
              bourse submit --trace data/traces/dev-80-multi.trace
              bourse report
            """)

    @OptionGroup var connection: GatewayOptions

    @Option(name: .customLong("job-type"), help: ArgumentHelp("Model of the throughput table.", valueName: "type"))
    var jobType: String?

    @Option(help: ArgumentHelp("Total work in steps at the preferred worker count (> 0).", valueName: "n"))
    var steps: UInt64?

    @Option(help: ArgumentHelp("Preferred worker count (a scale factor of the table: 1, 2, 4, 8).", valueName: "w"))
    var workers: UInt32?

    @Option(name: .customLong("min-workers"), help: ArgumentHelp("Smallest worker count of the elastic range (default: --workers).", valueName: "m"))
    var minWorkers: UInt32?

    @Option(name: .customLong("max-workers"), help: ArgumentHelp("Largest worker count of the elastic range (default: --workers).", valueName: "m"))
    var maxWorkers: UInt32?

    @Option(help: "Tenant the job belongs to (a gateway with tenants uses the tenant of --tenant-token instead).")
    var tenant: String = ""

    @Option(help: "Priority weight (default: 1).")
    var weight: Double?

    @Option(help: "Free-form job name.")
    var name: String = ""

    @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("A retry with the same key returns the same job.", valueName: "key"))
    var idempotencyKey: String = ""

    @Option(help: ArgumentHelp("Replay a trace (Gavel's format) on the cluster clock.", valueName: "file"))
    var trace: String?

    @Option(help: ArgumentHelp("Cluster clock speed-up for --trace (default: the `bourse up` run's, else the config's).", valueName: "x"))
    var speedup: Double?

    @Flag(help: "Print the acknowledgement as JSON.")
    var json = false

    func validate() throws {
        if let speedup, !(speedup > 0) { throw ValidationError("--speedup must be positive") }
        if trace != nil {
            if jobType != nil || steps != nil || workers != nil {
                throw ValidationError("give either --trace FILE or one job (--job-type, --steps, --workers), not both")
            }
            return
        }
        var missing: [String] = []
        if jobType == nil { missing.append("--job-type") }
        if steps == nil { missing.append("--steps") }
        if workers == nil { missing.append("--workers") }
        if !missing.isEmpty { throw ValidationError("missing \(missing.joined(separator: ", ")) (or --trace FILE)") }
    }

    func run() async throws {
        if let trace { return try await replay(trace) }
        let spec = JobSpec(
            jobType: jobType ?? "", totalSteps: steps ?? 0, workers: workers ?? 0, minWorkers: minWorkers ?? 0,
            maxWorkers: maxWorkers ?? 0, tenant: tenant, weight: weight ?? 0, name: name)
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(
            .submitJob(SubmitJob(spec: spec, idempotencyKey: idempotencyKey)))
        guard case .submitAck(let ack) = reply else { throw GatewayClient.unexpected(reply, wanted: "submit_ack") }
        if json {
            Output.line(try JobFormat.jsonText(["job_id": ack.jobID, "home_shard": ack.homeShard]))
        } else {
            Output.line("submitted \(ack.jobID) (home shard \(ack.homeShard.isEmpty ? "none" : ack.homeShard))")
        }
    }

    /// Submits every job of `path` at its arrival time on the cluster clock.
    private func replay(_ path: String) async throws {
        let table = try SimFiles.report { try ThroughputTable.load(path: try SimFiles.defaultTablePath()) }
        let jobs = try SimFiles.report { try GavelTrace.load(path: path, table: table) }
        let run = connection.runState()
        let clockSpeedup: Double
        if let speedup {
            clockSpeedup = speedup
        } else if let run {
            clockSpeedup = run.speedup
        } else if let config = connection.config {
            clockSpeedup = try SimFiles.report { try ClusterConfig.load(path: config) }.speedup
        } else {
            throw ValidationError("--trace needs the cluster clock's speed-up: pass --speedup X, --config FILE or --run-dir DIR")
        }
        let traceName = URL(fileURLWithPath: path).lastPathComponent
        let span = (jobs.map(\.arrivalTime).max() ?? 0) / clockSpeedup
        Output.error(
            "replaying \(jobs.count) jobs of \(traceName) at speed-up \(clockSpeedup): arrivals over \(String(format: "%.0f", span)) s of wall time")
        let client = try connection.connect()
        defer { client.close() }
        let start = ContinuousClock.now
        for (index, job) in jobs.enumerated() {
            let due = start + .milliseconds(Int64((job.arrivalTime / clockSpeedup * 1000).rounded()))
            if due > ContinuousClock.now { try await Task.sleep(until: due, clock: .continuous) }
            // A trace job without an elastic range may run at any worker count the table has for
            // its model, as in `bourse sim` (elastic policies use the range, the others ignore it).
            let scales = table.scaleFactors(model: job.jobType)
            let spec = JobSpec(
                jobType: job.jobType, totalSteps: UInt64(job.totalSteps), workers: UInt32(job.scaleFactor),
                minWorkers: UInt32(job.minWorkers ?? scales.min() ?? job.scaleFactor),
                maxWorkers: UInt32(job.maxWorkers ?? scales.max() ?? job.scaleFactor),
                tenant: job.tenant ?? tenant, weight: job.priorityWeight, arrivalTime: job.arrivalTime,
                name: "\(traceName):\(index + 1)")
            let reply = try await client.call(
                .submitJob(SubmitJob(spec: spec, idempotencyKey: "\(traceName):\(index + 1)")))
            guard case .submitAck(let ack) = reply else { throw GatewayClient.unexpected(reply, wanted: "submit_ack") }
            if json {
                Output.line(try JobFormat.jsonText(["job_id": ack.jobID, "home_shard": ack.homeShard, "line": index + 1]))
            } else {
                Output.line(
                    "t=\(String(format: "%8.0f", job.arrivalTime)) s  \(ack.jobID)  \(job.jobType) x\(job.scaleFactor)  -> \(ack.homeShard)")
            }
        }
        Output.error("submitted \(jobs.count) jobs; follow them with `bourse jobs`, summarise with `bourse report`")
    }
}
