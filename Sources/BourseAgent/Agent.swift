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

    public init(
        cluster: ClusterConfig, rackID: String, table: ThroughputTable, settings: AgentSettings,
        clock: any ClusterClock, logger: Logger, options: Options = Options(), clusterKey: ClusterKey? = nil
    ) throws {
        guard let index = cluster.racks.firstIndex(where: { $0.id == rackID }) else {
            throw AgentError("no rack '\(rackID)' in cluster '\(cluster.name)' (racks: \(cluster.racks.map(\.id).joined(separator: ", ")))")
        }
        let rack = cluster.racks[index]
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
        switch wire.decode(frame) {
        case .success(let envelope): request = envelope
        case .failure(.malformed(let error)):
            logger.warning("dropped malformed frame #\(wire.malformedFrames) (\(frame.count) bytes): \(error)")
            return wire.malformedReply(error, sentAt: clock.now)
        case .failure(let rejection):
            logger.warning("refused a frame (\(frame.count) bytes): \(rejection) (frames refused: \(wire.counters))")
            return wire.rejectionReply(rejection, sentAt: clock.now)
        }
        switch request.body {
        case .workerCommand(let command):
            let before = core.workers.count + core.parked.count
            let ack = core.apply(command, now: clock.now)
            if ack.ok {
                let gpus = command.gpuIDs.isEmpty ? "" : " on \(command.gpuIDs.joined(separator: ","))"
                logger.info("\(command.kind.name) \(command.jobID)\(gpus) (command \(command.commandID) from \(request.senderID))")
            } else {
                logger.warning("refused command \(command.commandID) from \(request.senderID): \(ack.error)")
            }
            if core.workers.count + core.parked.count != before { reportSoon = true }
            return reply(.commandAck(ack))
        case .agentHeartbeat(let query) where query.agentID.isEmpty:
            return reply(.agentHeartbeat(core.heartbeat(now: clock.now)))
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
            core.failNode(failure.nodeID, now: now)
            logger.warning("node \(failure.nodeID) failed (scripted); its workers stopped at their last checkpoint")
        }
        pendingFailures.removeAll { now >= startedAt + $0.after }
        let completed = core.advance(to: now)
        for job in completed { logger.info("\(job) completed") }
        let body: Envelope.Body = registered ? .agentHeartbeat(core.heartbeat(now: now)) : .agentRegister(core.register(now: now))
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
