import ArgumentParser
import BourseGateway
import BourseWire

/// `bourse status JOB`: one job in detail.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show one job's state, progress and placement.",
        discussion: """
            Examples:
              bourse status j-000001 --config cluster-configs/demo.yaml
              bourse status j-000001 --gateway tcp://127.0.0.1:7700 --json
            """)

    @Argument(help: ArgumentHelp("Job id, as printed by bourse submit (e.g. j-000001).", valueName: "job"))
    var job: String

    @OptionGroup var connection: GatewayOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(.jobStatusRequest(JobStatusRequest(jobID: job)))
        guard case .jobStatus(let status) = reply else { throw GatewayClient.unexpected(reply, wanted: "job_status") }
        if json {
            Output.line(try JobFormat.jsonText(JobFormat.json(status)))
            return
        }
        var rows: [[String]] = [
            ["job", status.jobID],
            ["state", status.state.name + (status.reason.isEmpty ? "" : " (\(status.reason))")],
        ]
        if let spec = status.spec {
            rows.append(["type", spec.jobType])
            rows.append(["workers", JobFormat.workers(spec)])
            if !spec.tenant.isEmpty { rows.append(["tenant", spec.tenant]) }
            if !spec.name.isEmpty { rows.append(["name", spec.name]) }
        }
        rows.append(["progress", JobFormat.progress(status) + String(format: ", checkpoint at %.0f", status.checkpointSteps)])
        rows.append(["home shard", status.homeShard.isEmpty ? "-" : status.homeShard])
        if let p = status.placement {
            rows.append(["placement", "\(p.gpuIDs.count) x \(p.gpuType) on \(p.shardID): \(p.gpuIDs.joined(separator: ", "))"])
        }
        rows.append(["restarts", "\(status.restarts)"])
        rows.append(["submitted", JobFormat.time(status.submittedAt)])
        rows.append(["started", JobFormat.time(status.startedAt)])
        rows.append(["finished", JobFormat.time(status.finishedAt)])
        Output.line(JobFormat.table(rows.map { [$0[0] + ":", $0[1]] }))
    }
}
