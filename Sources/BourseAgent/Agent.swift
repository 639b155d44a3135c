import BourseAudit
import BourseModel
import BourseTransport
import BourseWire
import BourseWorkload
import Foundation
import Logging

/// The agent process's shell around ``AgentCore``: a reply server on the rack's agent address
/// (worker commands -> command acks) and a report loop that registers with the shard owning the
/// rack and then heartbeats to it over request/reply.
///
/// The shard that owns the rack is the rack's own shard, or after a failover the next live shard
/// in config order: the agent tries its own shard first and, after `failoverAfter` failed or
/// refused reports in a row, the next rack's shard, and so on around the config. Workers keep
/// running whatever happens to the shards.
///
/// Requests the agent answers besides commands (diagnostics): a `Ping` gets an `Ack`; an
/// `AgentHeartbeat` with an empty agent id is a query answered with the agent's current report.
public actor Agent {
    public struct Options: Sendable {
        /// Wall time between reports.
        public var heartbeatInterval: Duration = .milliseconds(250)
        /// Failed or refused reports in a row before trying the next shard in config order.
        public var failoverAfter: Int = 4
        public var requestTimeout: Duration = .milliseconds(500)
        /// Scripted node failures (chaos): node id and cluster seconds after the agent started.
        public var nodeFailures: [(nodeID: String, after: Double)] = []
        /// Chaos: a control file polled at every report; each new line is `fail NODE` or
        /// `recover NODE` (the whole file is applied in order at start, so a restarted agent
        /// comes back with the same failed nodes).
        public var controlFile: String?
        /// Shared checkpoint storage (see ``CheckpointStore``); nil: checkpoints stay local.
        public var checkpointStore: CheckpointStore?
        public init() {}
    }

    public nonisolated let agentID: String
    private let clock: any ClusterClock
    private let logger: Logger
    private let options: Options
    private var core: AgentCore
    private let server: ReplyServer
    /// Shard addresses in the order to try: own rack's shard first, then the following racks'.
    private let shardCandidates: [(id: String, address: String)]
    private var clients: [String: RequestClient] = [:]
    private var candidate = 0
    private var registered = false
    private var failures = 0
    private var wire: WireEndpoint
    private var reportSoon = false
    public var malformedFrames: Int { wire.malformedFrames }
    /// Frames refused by the wire: malformed, bad HMAC, replayed.
    public var rejectedFrames: Int { wire.rejectedFrames }
    private let startedAt: Double
    private var pendingFailures: [(nodeID: String, after: Double)]
    private var controlLinesApplied = 0
    /// Checkpoints already in the audit log, by job.
    private var reportedCheckpoints: [String: Double] = [:]

    public init(
        cluster: ClusterConfig, rackID: String, table: ThroughputTable, settings: AgentSettings,
        clock: any ClusterClock, logger: Logger, options: Options = Options(), clusterKey: ClusterKey? = nil
    ) throws {
        guard let index = cluster.racks.firstIndex(where: { $0.id == rackID }) else {
            throw AgentError("no rack '\(rackID)' in cluster '\(cluster.name)' (racks: \(cluster.racks.map(\.id).joined(separator: ", ")))")
        }
        let rack = cluster.racks[index]
        var settings = settings
        settings.network = cluster.network
        self.core = AgentCore(rack: rack, table: table, settings: settings, now: clock.now)
        self.agentID = core.agentID
        self.wire = WireEndpoint(senderID: core.agentID, key: clusterKey)
        self.startedAt = clock.now
        for failure in options.nodeFailures where !rack.nodes.contains(where: { $0.id == failure.nodeID }) {
            throw AgentError("--fail-node: no node '\(failure.nodeID)' in rack \(rackID)")
        }
        self.pendingFailures = options.nodeFailures
        self.clock = clock
        self.logger = logger
        self.options = options
        let order = cluster.racks[index...] + cluster.racks[..<index]
        self.shardCandidates = order.map { ($0.shardID, $0.shardAddress) }
        do {
            self.server = try ReplyServer(listening: rack.agentAddress)
        } catch {
            throw AgentError("cannot listen on \(rack.agentAddress): \(error)")
        }
    }

    public nonisolated var listenAddress: String { server.url }

    /// Serves commands and sends reports until cancelled.
    public func run() async throws {
        let server = self.server
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve(concurrency: 4) { frame in await self.handle(frame: frame) } }
            group.addTask { await self.reportLoop() }
            try await group.next()
            group.cancelAll()
        }
    }

    public func shutdown() {
        server.close()
        for client in clients.values { client.close() }
    }

    // MARK: Requests

    public func handle(frame: [UInt8]) -> [UInt8] {
        let request: Envelope
        switch wire.receiveRequest(frame, sentAt: clock.now) {
        case .success(let envelope): request = envelope
        case .failure(let refused):
            logger.warning("\(refused.logLine)")
            return refused.reply
        }
        switch request.body {
        case .workerCommand(var command):
            let before = core.workers.count + core.parked.count
            let now = clock.now
            // A worker starts from the newest checkpoint on shared storage (e.g. the job completed
            // or stopped on another rack since the shard last heard of it).
            if command.kind == .start || command.kind == .resize, let stored = options.checkpointStore?.read(command.jobID),
               stored > command.resumeFromSteps
            {
                command.resumeFromSteps = min(stored, Double(command.totalSteps))
            }
            let parkedBefore = core.parked[command.jobID]
            let ack = audited { $0.apply(command, now: now) }
            if ack.ok {
                let gpus = command.gpuIDs.isEmpty ? "" : " on \(command.gpuIDs.joined(separator: ","))"
                logger.info("\(command.kind.name) \(command.jobID)\(gpus) (command \(command.commandID) from \(request.senderID))")
            } else {
                logger.warning("refused command \(command.commandID) from \(request.senderID): \(ack.error)")
            }
            if core.workers.count + core.parked.count != before { reportSoon = true }
            if ack.ok { shareCheckpoint(after: command, parkedBefore: parkedBefore) }
            return reply(.commandAck(ack))
        case .agentHeartbeat(let query) where query.agentID.isEmpty:
            let now = clock.now
            return reply(.agentHeartbeat(audited { $0.heartbeat(now: now) }))
        case .ping(let ping):
            return reply(.ack(Ack(probeID: ping.probeID, targetID: agentID)))
        default:
            return reply(.error(WireErrorMessage(code: .invalid, message: "an agent does not handle \(request.body.kindName) messages")))
        }
    }

    private func reply(_ body: Envelope.Body) -> [UInt8] { wire.encode(body, sentAt: clock.now) }

    // MARK: Reports

    private func reportLoop() async {
        while !Task.isCancelled {
            await reportOnce()
            // Sleep until the next heartbeat or the next completion, whichever comes first.
            var wait = options.heartbeatInterval
            if let next = core.nextEventTime {
                let untilCompletion = clock.wallDuration(ofClusterSeconds: next - clock.now) + .milliseconds(2)
                if untilCompletion < wait { wait = untilCompletion }
            }
            let deadline = ContinuousClock.now + wait
            while ContinuousClock.now < deadline && !reportSoon && !Task.isCancelled {
                try? await Task.sleep(for: min(.milliseconds(20), deadline - ContinuousClock.now))
            }
            reportSoon = false
        }
    }

    private func reportOnce() async {
        let target = shardCandidates[candidate]
        let client: RequestClient
        if let existing = clients[target.address] {
            client = existing
        } else {
            guard let made = try? RequestClient(dialing: target.address) else { return }
            clients[target.address] = made
            client = made
        }
        let now = clock.now
        for failure in pendingFailures where now >= startedAt + failure.after {
            failNode(failure.nodeID, now: now, why: "scripted")
        }
        pendingFailures.removeAll { now >= startedAt + $0.after }
        applyControlFile(now: now)
        let completed = audited { $0.advance(to: now) }
        for job in completed { logger.info("\(job) completed") }
        let body: Envelope.Body = audited { core in
            registered ? .agentHeartbeat(core.heartbeat(now: now)) : .agentRegister(core.register(now: now))
        }
        let frame = wire.encode(body, sentAt: now)
        guard !frame.isEmpty else { return }
        var accepted = false
        do {
            let bytes = try await client.request(frame, timeout: options.requestTimeout)
            let answer = try wire.decode(bytes).get()
            switch answer.body {
            case .commandAck(let ack) where ack.ok:
                accepted = true
                if !registered { logger.info("registered with \(target.id) at \(target.address)") }
                registered = true
            case .error(let e):
                logger.debug("\(target.id) refused our report: \(e.message)")
                registered = false
            default:
                registered = false
            }
        } catch let rejection as WireRejection {
            logger.warning("refused the reply of \(target.id): \(rejection) (frames refused: \(wire.counters))")
        } catch {
            logger.debug("report to \(target.id) failed: \(error)")
        }
        if accepted {
            failures = 0
            shareReportedCheckpoints(body)
        } else {
            failures += 1
            if failures >= options.failoverAfter {
                failures = 0
                registered = false
                candidate = (candidate + 1) % shardCandidates.count
                logger.notice("no answer from \(target.id): trying \(shardCandidates[candidate].id)")
            }
        }
    }
}

extension Agent {
    // MARK: Chaos control and audit

    /// Shared checkpoints around a command: a stopped worker's checkpoint is saved; a worker
    /// started here (which already resumed from the store's checkpoint, see `handle`) looks again
    /// over a few hundred milliseconds: the stop on the rack it replaces may land just after it.
    private func shareCheckpoint(after command: WorkerCommand, parkedBefore: JobProgress?) {
        guard let store = options.checkpointStore else { return }
        switch command.kind {
        case .stop:
            // A completed job's final progress is parked until its STOP, which forgets it.
            if let parked = core.parked[command.jobID] ?? parkedBefore { store.save(command.jobID, steps: parked.checkpointSteps) }
        case .start, .resize:
            let job = command.jobID
            Task {
                for delay in [40, 120, 300] {
                    try? await Task.sleep(for: .milliseconds(delay))
                    self.loadCheckpoint(job, from: store)
                }
            }
        default:
            break
        }
    }

    private func loadCheckpoint(_ jobID: String, from store: CheckpointStore) {
        guard let steps = store.read(jobID), let before = core.workers[jobID]?.resumeSteps else { return }
        let now = clock.now
        if audited({ $0.adoptCheckpoint(jobID: jobID, steps: steps, now: now) }) {
            logger.info("\(jobID) resumes from the shared checkpoint at \(steps) steps (started from \(before))")
            reportSoon = true
        }
    }

    private func failNode(_ nodeID: String, now: Double, why: String) {
        audited { $0.failNode(nodeID, now: now) }
        if let store = options.checkpointStore {
            for (job, parked) in core.parked { store.save(job, steps: parked.checkpointSteps) }
        }
        AuditLog.shared?.record(AuditEvent(t: now, proc: agentID, ev: "node_failed", node: nodeID))
        logger.warning("node \(nodeID) failed (\(why)); its workers stopped at their last checkpoint")
    }

    /// Applies the control file's lines not applied yet.
    private func applyControlFile(now: Double) {
        guard let path = options.controlFile, let data = FileManager.default.contents(atPath: path) else { return }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true)
        while controlLinesApplied < lines.count {
            let words = lines[controlLinesApplied].split(separator: " ").map(String.init)
            controlLinesApplied += 1
            guard words.count == 2, core.nodes.contains(where: { $0.id == words[1] }) else {
                logger.warning("control file \(path): ignored line '\(lines[controlLinesApplied - 1])'")
                continue
            }
            switch words[0] {
            case "fail":
                failNode(words[1], now: now, why: "control file")
            case "recover":
                audited { $0.recoverNode(words[1], now: now) }
                AuditLog.shared?.record(AuditEvent(t: now, proc: agentID, ev: "node_recovered", node: words[1]))
                logger.notice("node \(words[1]) recovered (control file)")
            default:
                logger.warning("control file \(path): ignored line '\(lines[controlLinesApplied - 1])'")
            }
        }
    }

    /// Runs `body` on the core and writes the workers it started and stopped to the audit log.
    @discardableResult
    private func audited<T>(_ body: (inout AgentCore) -> T) -> T {
        let before = core.workers
        let result = body(&core)
        guard let log = AuditLog.shared else { return result }
        let after = core.workers
        let now = core.now
        for (job, w) in before.sorted(by: { $0.key < $1.key }) where after[job] != w {
            let parked = core.parked[job]
            let completed = after[job] == nil && (parked.map { $0.stepsDone >= w.totalSteps } ?? false)
            let steps = parked?.stepsDone ?? after[job]?.resumeSteps ?? w.steps(at: now)
            let onFailedNode = w.gpuIDs.contains { core.gpus[$0]?.healthy == false }
            let reason = completed ? "completed" : after[job] != nil ? "moved" : onFailedNode ? "node_failed" : "stopped"
            log.record(AuditEvent(
                t: completed ? min(now, w.finishAt) : now, proc: agentID, ev: "worker_stop", job: job, gpus: w.gpuIDs,
                steps: steps, checkpoint: parked?.checkpointSteps ?? steps, total: w.totalSteps, reason: reason))
        }
        for (job, w) in after.sorted(by: { $0.key < $1.key }) where before[job] != w {
            log.record(AuditEvent(
                t: now, proc: agentID, ev: "worker_start", job: job, gpus: w.gpuIDs, steps: w.resumeSteps,
                resumeAt: w.resumeAt, total: w.totalSteps))
        }
        return result
    }

    /// Checkpoints the shard now knows of (a report it accepted): saved to the shared storage, as
    /// a job's periodic checkpoints are, so a worker started elsewhere (another part of a job
    /// spread over racks, a move) resumes from the newest; and the audit's `checkpoint` events.
    private func shareReportedCheckpoints(_ body: Envelope.Body) {
        guard options.checkpointStore != nil || AuditLog.shared != nil else { return }
        let jobs: [JobProgress]
        switch body {
        case .agentHeartbeat(let h): jobs = h.jobs
        case .agentRegister(let r): jobs = r.jobs
        default: return
        }
        for job in jobs where job.checkpointSteps > (reportedCheckpoints[job.jobID] ?? 0) {
            reportedCheckpoints[job.jobID] = job.checkpointSteps
            options.checkpointStore?.save(job.jobID, steps: job.checkpointSteps)
            AuditLog.shared?.record(AuditEvent(t: core.now, proc: agentID, ev: "checkpoint", job: job.jobID, checkpoint: job.checkpointSteps))
        }
        if reportedCheckpoints.count > 10_000 { reportedCheckpoints.removeAll() }
    }
}

public struct AgentError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension WorkerCommandKind {
    /// Lower-case name for logs.
    public var name: String {
        switch self {
        case .start: "start"
        case .stop: "stop"
        case .resize: "resize"
        case .unspecified: "unspecified"
        case .unrecognized(let v): "kind-\(v)"
        }
    }
}
