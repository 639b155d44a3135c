import ArgumentParser
import BourseGateway
import BourseWire
import Foundation

/// `bourse submit`: one job from flags (trace replay comes with the live cluster).
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

    @Option(help: "Tenant the job belongs to.")
    var tenant: String = ""

    @Option(help: "Priority weight (default: 1).")
    var weight: Double?

    @Option(help: "Free-form job name.")
    var name: String = ""

    @Option(name: .customLong("idempotency-key"), help: ArgumentHelp("A retry with the same key returns the same job.", valueName: "key"))
    var idempotencyKey: String = ""

    @Option(name: .customLong("tenant-token"), help: ArgumentHelp("Tenant token, for gateways that check them.", valueName: "token"))
    var tenantToken: String = ""

    @Option(help: ArgumentHelp("Replay a trace on the cluster clock (not built yet: comes with `bourse up`).", valueName: "file"))
    var trace: String?

    @Flag(help: "Print the acknowledgement as JSON.")
    var json = false

    func validate() throws {
        if trace != nil {
            throw ValidationError(
                "--trace replay is not built yet: it needs the live cluster's clock (`bourse up`, the rest of issue #5); submit one job with --job-type/--steps/--workers")
        }
        var missing: [String] = []
        if jobType == nil { missing.append("--job-type") }
        if steps == nil { missing.append("--steps") }
        if workers == nil { missing.append("--workers") }
        if !missing.isEmpty { throw ValidationError("missing \(missing.joined(separator: ", ")) (or --trace FILE, later)") }
    }

    func run() async throws {
        let spec = JobSpec(
            jobType: jobType ?? "", totalSteps: steps ?? 0, workers: workers ?? 0, minWorkers: minWorkers ?? 0,
            maxWorkers: maxWorkers ?? 0, tenant: tenant, weight: weight ?? 0, name: name)
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(
            .submitJob(SubmitJob(spec: spec, idempotencyKey: idempotencyKey, tenantToken: tenantToken)))
        guard case .submitAck(let ack) = reply else { throw GatewayClient.unexpected(reply, wanted: "submit_ack") }
        if json {
            Output.line(try JobFormat.jsonText(["job_id": ack.jobID, "home_shard": ack.homeShard]))
        } else {
            Output.line("submitted \(ack.jobID) (home shard \(ack.homeShard.isEmpty ? "none" : ack.homeShard))")
        }
    }
}
