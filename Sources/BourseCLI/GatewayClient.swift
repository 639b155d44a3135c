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

    @Option(
        name: .customLong("tenant-token"),
        help: ArgumentHelp("Tenant token, for gateways with tenants (default: the BOURSE_TENANT_TOKEN environment variable).", valueName: "token"))
    var tenantToken: String?

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

    /// The tenant token: --tenant-token, else BOURSE_TENANT_TOKEN, else none.
    func resolvedTenantToken() -> String {
        tenantToken ?? ProcessInfo.processInfo.environment[ClusterSecurity.tenantTokenVariable] ?? ""
    }

    /// The cluster key: from the config's `security` section when a config is known (--config,
    /// or the `bourse up` run's), else from BOURSE_CLUSTER_KEY.
    func clusterKey() throws -> ClusterKey? {
        var configPath = config
        if configPath == nil, gateway == nil { configPath = runState()?.config }
        guard let configPath else { return try ClusterSecurity.key() }
        let cluster: ClusterConfig
        do {
            cluster = try ClusterConfig.load(path: configPath)
        } catch {
            throw GatewayClientError("\(error)")
        }
        return try ClusterSecurity.key(cluster.security)
    }

    func connect() throws -> GatewayClient {
        let url = try address()
        let key = try clusterKey()
        do {
            return try GatewayClient(url: url, timeout: .milliseconds(timeoutMs), key: key, tenantToken: resolvedTenantToken())
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
    /// Signs requests and checks replies when there is a cluster key.
    private let wire: SharedWireEndpoint
    /// Put into every request that carries a tenant token and has none.
    private let tenantToken: String

    init(url: String, timeout: Duration, key: ClusterKey? = nil, tenantToken: String = "") throws {
        self.url = url
        self.timeout = timeout
        self.wire = SharedWireEndpoint(WireEndpoint(senderID: "cli-\(getpid())", key: key))
        self.tenantToken = tenantToken
        client = try RequestClient(dialing: url)
    }

    /// `body` with the client's tenant token where the request has a token field left empty.
    private func withToken(_ body: Envelope.Body) -> Envelope.Body {
        guard !tenantToken.isEmpty else { return body }
        switch body {
        case .submitJob(var s) where s.tenantToken.isEmpty:
            s.tenantToken = tenantToken
            return .submitJob(s)
        case .jobStatusRequest(var q) where q.tenantToken.isEmpty:
            q.tenantToken = tenantToken
            return .jobStatusRequest(q)
        case .listJobsRequest(var l) where l.tenantToken.isEmpty:
            l.tenantToken = tenantToken
            return .listJobsRequest(l)
        case .cancelJob(var c) where c.tenantToken.isEmpty:
            c.tenantToken = tenantToken
            return .cancelJob(c)
        default:
            return body
        }
    }

    /// Sends `body`, returns the reply body; an Error reply becomes a ``GatewayClientError``.
    func call(_ body: Envelope.Body) async throws -> Envelope.Body {
        let frame = try wire.seal(withToken(body), sentAt: Date().timeIntervalSince1970)
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
        switch wire.decode(replyBytes) {
        case .success(let envelope): reply = envelope
        case .failure(.malformed(let error)):
            throw GatewayClientError("the gateway at \(url) sent a reply that does not decode: \(error)")
        case .failure(let rejection):
            throw GatewayClientError(
                "refused the reply of the gateway at \(url): \(rejection) (do the gateway and this client use the same cluster key?)")
        }
        if case .error(let e) = reply.body {
            var text = Self.describe(e)
            if e.code == .unauthorized, e.field.isEmpty, !wire.endpoint.authenticates {
                text += " (this client has no cluster key: set \(SecurityConfig.defaultKeyEnvironmentVariable) or use the cluster's --config)"
            }
            throw GatewayClientError(text)
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
