import ArgumentParser
import BourseGateway
import BourseWire

/// `bourse jobs`: the gateway's jobs.
struct Jobs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "List the jobs the gateway knows, oldest first.",
        discussion: """
            Columns: job id, state, job type, workers (preferred [elastic range]), progress in \
            steps, home shard, tenant. --json prints one object per job with every field.

            Examples:
              bourse jobs --config cluster-configs/demo.yaml
              bourse jobs --gateway tcp://127.0.0.1:7700 --state pending --state running
              bourse jobs --gateway tcp://127.0.0.1:7700 --state completed,failed --json
            """)

    @OptionGroup var connection: GatewayOptions

    @Option(
        help: ArgumentHelp(
            "Only jobs in this state: pending, running, restarting, completed, failed, cancelled (repeat or comma-separate).",
            valueName: "state"))
    var state: [String] = []

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func states() throws -> [JobState] {
        try state.flatMap { $0.split(separator: ",") }.map { text in
            let name = text.trimmingCharacters(in: .whitespaces)
            guard let s = JobState(name: name) else {
                throw ValidationError(
                    "unknown state '\(name)' (states: pending, running, restarting, completed, failed, cancelled)")
            }
            return s
        }
    }

    func validate() throws { _ = try states() }

    func run() async throws {
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(.listJobsRequest(ListJobsRequest(states: try states())))
        guard case .listJobsReply(let list) = reply else { throw GatewayClient.unexpected(reply, wanted: "list_jobs_reply") }
        if json {
            Output.line(try JobFormat.jsonText(list.jobs.map(JobFormat.json)))
            return
        }
        if list.jobs.isEmpty {
            Output.line(state.isEmpty ? "no jobs" : "no jobs in state \(state.joined(separator: ", "))")
            return
        }
        var rows = [["JOB", "STATE", "TYPE", "WORKERS", "STEPS", "HOME", "TENANT"]]
        for job in list.jobs {
            rows.append([
                job.jobID, job.state.name, job.spec?.jobType ?? "-", JobFormat.workers(job.spec), JobFormat.progress(job),
                job.homeShard.isEmpty ? "-" : job.homeShard, (job.spec?.tenant).flatMap { $0.isEmpty ? nil : $0 } ?? "-",
            ])
        }
        Output.line(JobFormat.table(rows))
        var counts: [String: Int] = [:]
        for job in list.jobs { counts[job.state.name, default: 0] += 1 }
        Output.line("\(list.jobs.count) jobs: " + counts.keys.sorted().map { "\(counts[$0]!) \($0)" }.joined(separator: ", "))
    }
}
