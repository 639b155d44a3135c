import ArgumentParser
import BourseGateway
import BourseWire

/// `bourse cancel JOB`.
struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a pending or running job.",
        discussion: """
            A pending or running job becomes cancelled (its shard stops its workers). A job that \
            already finished (completed, failed or cancelled) stays as it is; the answer says which. \
            Cancelling twice is harmless.

            Examples:
              bourse cancel j-000003 --config cluster-configs/demo.yaml
              bourse cancel j-000003 --gateway tcp://127.0.0.1:7700
            """)

    @Argument(help: ArgumentHelp("Job id (e.g. j-000001).", valueName: "job"))
    var job: String

    @OptionGroup var connection: GatewayOptions

    func run() async throws {
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(.cancelJob(CancelJob(jobID: job)))
        guard case .cancelAck(let ack) = reply else { throw GatewayClient.unexpected(reply, wanted: "cancel_ack") }
        switch ack.state {
        case .cancelled: Output.line("\(ack.jobID): cancelled")
        default: Output.line("\(ack.jobID): already \(ack.state.name); left as it is (nothing to cancel)")
        }
    }
}
