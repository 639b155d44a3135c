import ArgumentParser
import BourseGateway
import BourseModel
import BourseTransport
import BourseWire
import Foundation

/// Where client commands find the gateway: `--gateway ADDR`, else `--config FILE`'s gateway
/// address. (`--run-dir` and the last `bourse up` come with the launcher.)
struct GatewayOptions: ParsableArguments {
    @Option(help: ArgumentHelp("NNG URL of the gateway, e.g. tcp://127.0.0.1:7700.", valueName: "addr"))
    var gateway: String?

    @Option(help: ArgumentHelp("Cluster config whose gateway address to use (when --gateway is not given).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory of `bourse up` whose gateway to use (default: the last `bourse up`).", valueName: "dir"))
    var runDir: String?

    @Option(name: .customLong("timeout-ms"), help: "Give up on the gateway after this many milliseconds.")
    var timeoutMs: Int = 5000

    func validate() throws {
        if timeoutMs < 1 { throw ValidationError("--timeout-ms must be at least 1") }
    }

    /// The gateway's address, or an error that says how to give one.
    func address() throws -> String {
        if let gateway { return gateway }
        if let config {
            do {
                return try ClusterConfig.load(path: config).gateway.address
            } catch {
                throw GatewayClientError("\(error)")
            }
        }
        if let runDir = runDir ?? LastRun.remembered() {
            do {
                return try RunState.load(runDir: runDir).gateway
            } catch {
                throw GatewayClientError("\(error)")
            }
        }
        throw GatewayClientError(
            "no gateway given: pass --gateway ADDR (e.g. tcp://127.0.0.1:7700), --config FILE (the cluster config the gateway runs with) or --run-dir DIR (of `bourse up`); no `bourse up` is remembered either")
    }

    /// The run of `bourse up` this client talks to, when it was found through one.
    func runState() -> RunState? {
        guard gateway == nil, config == nil, let runDir = runDir ?? LastRun.remembered() else { return nil }
        return try? RunState.load(runDir: runDir)
    }

    func connect() throws -> GatewayClient {
        let url = try address()
        do {
            return try GatewayClient(url: url, timeout: .milliseconds(timeoutMs))
        } catch {
            throw GatewayClientError("cannot reach the gateway at \(url): \(error)")
        }
    }
}

/// A failure talking to the gateway, or the gateway's Error reply, as the user should read it.
struct GatewayClientError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One request/reply exchange with the gateway per call.
struct GatewayClient {
    let url: String
    let timeout: Duration
    private let client: RequestClient

    init(url: String, timeout: Duration) throws {
        self.url = url
        self.timeout = timeout
        client = try RequestClient(dialing: url)
    }

    /// Sends `body`, returns the reply body; an Error reply becomes a ``GatewayClientError``.
    func call(_ body: Envelope.Body) async throws -> Envelope.Body {
        let frame = try WireCodec.encode(Envelope(senderID: "cli-\(getpid())", sequence: 1, body: body))
        let replyBytes: [UInt8]
        do throws(NNGError) {
            replyBytes = try await client.request(frame, timeout: timeout)
        } catch {
            if error.isTimeout {
                throw GatewayClientError(
                    "the gateway at \(url) did not answer within \(timeout) (is `bourse gateway` running there?)")
            }
            throw GatewayClientError("request to the gateway at \(url) failed: \(error)")
        }
        let reply: Envelope
        do {
            reply = try WireCodec.decode(replyBytes)
        } catch {
            throw GatewayClientError("the gateway at \(url) sent a reply that does not decode: \(error)")
        }
        if case .error(let e) = reply.body {
            throw GatewayClientError(Self.describe(e))
        }
        return reply.body
    }

    static func describe(_ e: WireErrorMessage) -> String {
        let code: String
        switch e.code {
        case .invalid: code = "invalid request"
        case .notFound: code = "not found"
        case .malformed: code = "malformed request"
        case .unauthorized: code = "unauthorized"
        case .unavailable: code = "gateway unavailable"
        case .internal: code = "gateway internal error"
        default: code = "error \(e.code.rawValue)"
        }
        return e.field.isEmpty ? "\(code): \(e.message)" : "\(code): \(e.field): \(e.message)"
    }

    func close() { client.close() }

    static func unexpected(_ body: Envelope.Body, wanted: String) -> GatewayClientError {
        GatewayClientError("the gateway answered with \(body.kindName), expected \(wanted)")
    }
}

/// Formatting of jobs for the client commands.
enum JobFormat {
    static func workers(_ spec: JobSpec?) -> String {
        guard let spec else { return "-" }
        let low = spec.minWorkers == 0 ? spec.workers : spec.minWorkers
        let high = spec.maxWorkers == 0 ? spec.workers : spec.maxWorkers
        return low == high ? "\(spec.workers)" : "\(spec.workers) [\(low)-\(high)]"
    }

    static func progress(_ job: JobStatus) -> String {
        let total = job.spec?.totalSteps ?? 0
        guard total > 0 else { return String(format: "%.0f", job.stepsDone) }
        return String(format: "%.0f/%llu (%.0f%%)", job.stepsDone, total, 100 * job.stepsDone / Double(total))
    }

    static func time(_ seconds: Double) -> String {
        guard seconds > 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date(timeIntervalSince1970: seconds))
    }

    /// A JSON object per job (stable keys, for scripts).
    static func json(_ job: JobStatus) -> [String: Any] {
        var object: [String: Any] = [
            "job_id": job.jobID, "state": job.state.name, "steps_done": job.stepsDone,
            "checkpoint_steps": job.checkpointSteps, "submitted_at": job.submittedAt, "started_at": job.startedAt,
            "finished_at": job.finishedAt, "reason": job.reason, "restarts": Int(job.restarts), "home_shard": job.homeShard,
        ]
        if let spec = job.spec {
            object["job_type"] = spec.jobType
            object["total_steps"] = spec.totalSteps
            object["workers"] = Int(spec.workers)
            object["min_workers"] = Int(spec.minWorkers == 0 ? spec.workers : spec.minWorkers)
            object["max_workers"] = Int(spec.maxWorkers == 0 ? spec.workers : spec.maxWorkers)
            object["tenant"] = spec.tenant
            object["name"] = spec.name
        }
        if let p = job.placement {
            object["placement"] = ["gpu_type": p.gpuType, "gpu_ids": p.gpuIDs, "shard_id": p.shardID] as [String: Any]
        }
        return object
    }

    static func jsonText(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// Left-aligned columns separated by two spaces.
    static func table(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
