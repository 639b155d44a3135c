import BourseAudit
import BourseMembership
import BourseModel
import BourseTrading
import BourseTransport
import BourseWire
import BourseWorkload
import Foundation
import Logging

/// The shard process's shell around ``ShardCore`` and a SWIM instance.
///
/// Sockets (all long-lived):
/// - a reply server on the rack's shard address: agent registrations and heartbeats (answered
///   with a CommandAck, or an Error asking an unknown agent to register), SWIM messages, and two
///   diagnostics: an `AgentHeartbeat` with an empty agent id gets the shard's view of its nodes
///   and running jobs; a `Ping` from a non-member (a CLI) gets an `Ack` listing every member;
/// - a request client to the gateway (polls, transitions), one per agent address (commands,
///   sent in order per agent, retried with the same command id), one per peer (SWIM).
///
/// SWIM over request/reply: a `Ping` is answered in the reply itself (the instance's ack to the
/// pinger becomes the reply); a `PingReq` or a forwarded `Ack` is one-way: the reply is an empty
/// frame, and the relay's ack travels back as a request of its own. So the gateway, which
/// answers pings with an ack in the reply, is a member too (it only never probes).
/// SWIM runs on wall seconds since the cluster epoch (not sped up); the scheduler on cluster time.
public actor Shard {
    public struct Options: Sendable {
        /// Also the length of a trading phase.
        public var tickInterval: Duration = .milliseconds(10)
        public var requestTimeout: Duration = .milliseconds(1000)
        public var swim = SWIM.Settings()
        public var seed: UInt64 = 1
        /// Trading with the other racks' shards (policy bourse). The window and grace are set
        /// from `tradingWindowWall` on the cluster clock: at most 30 % of a round.
        public var trading = TradingSettings(enabled: true)
        /// How long (wall seconds) a round's market stays open.
        public var tradingWindowWall = 0.12
        public init() {}
    }

    public nonisolated let shardID: String
    public nonisolated let address: String
    private let clock: any ClusterClock
    private let logger: Logger
    private let options: Options
    private var core: ShardCore
    private var swim: SWIMInstance<ShardDigest>
    private let server: ReplyServer
    private let gateway: RequestClient
    private var peers: [String: RequestClient] = [:]
    private var agentQueues: [String: AsyncStream<WorkerCommand>.Continuation] = [:]
    private let transitions: AsyncStream<JobTransition>.Continuation
    private let transitionStream: AsyncStream<JobTransition>
    private var wire: WireEndpoint
    private var lastDigest: ShardDigest?
    private var lastDigestAt = -Double.infinity
    public var malformedFrames: Int { wire.malformedFrames }
    /// Frames refused by the wire: malformed, bad HMAC, replayed.
    public var rejectedFrames: Int { wire.rejectedFrames }
    public private(set) var droppedUpdates = 0
    private var tasks: [Task<Void, Never>] = []
    private let cluster: ClusterConfig
    /// Members this shard has heard from directly. A shard is adopted from only if it was once
    /// alive (heard from here, or known at a non-zero incarnation), so a shard slow to start is
    /// not declared dead and taken over before it ever ran.
    private var heardFrom: Set<SWIM.MemberID> = []

    public init(
        cluster: ClusterConfig, rackID: String, table: ThroughputTable, policy: String, clock: any ClusterClock,
        logger: Logger, options: Options = Options(), clusterKey: ClusterKey? = nil
    ) throws {
        guard let rack = cluster.rack(rackID) else {
            throw ShardError("no rack '\(rackID)' in cluster '\(cluster.name)' (racks: \(cluster.racks.map(\.id).joined(separator: ", ")))")
        }
        self.shardID = rack.shardID
        self.wire = WireEndpoint(senderID: rack.shardID, key: clusterKey)
        self.address = rack.shardAddress
        self.cluster = cluster

        self.clock = clock
        self.logger = logger
        self.options = options
        let startMillis = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        do {
            self.core = try ShardCore(
                settings: {
                    var settings = ShardSettings(
                        shardID: rack.shardID, roundSeconds: cluster.roundSeconds, restartSeconds: cluster.restartSeconds,
                        firstTransitionID: startMillis * 1_000_000, firstCommandID: startMillis * 1_000_000)
                    settings.tenantWeights = Dictionary(
                        cluster.tenants.map { ($0.name, $0.weight) }, uniquingKeysWith: { first, _ in first })
                    settings.trading = options.trading
                    settings.network = cluster.network
                    let window = min(options.tradingWindowWall * clock.speedup, 0.3 * cluster.roundSeconds)
                    settings.trading.window = 0.75 * window
                    settings.trading.commitGrace = 0.25 * window
                    // A rack's agent re-registers within a few wall seconds of a failover (it tries
                    // each shard in turn); its jobs wait that long, on the cluster clock.
                    settings.agentWaitSeconds = 15 * clock.speedup
                    return settings
                }(),
                racks: [rack], table: table, policy: policy, now: clock.now, clusterRacks: cluster.racks)
        } catch {
            throw ShardError("policy '\(policy)': \(error)")
        }
        var members = cluster.racks.filter { $0.id != rackID }.map {
            SWIM.Member(id: SWIM.MemberID($0.shardID), address: SWIM.Address($0.shardAddress), role: .shard)
        }
        members.append(SWIM.Member(id: "gateway", address: SWIM.Address(cluster.gateway.address), role: .gateway))
        self.swim = SWIMInstance(
            settings: options.swim,
            myself: SWIM.Member(id: SWIM.MemberID(rack.shardID), address: SWIM.Address(rack.shardAddress), role: .shard),
            incarnation: UInt64(max(0, clock.wallSinceEpoch * 1000)), members: members, seed: options.seed,
            now: clock.wallSinceEpoch)
        do {
            self.server = try ReplyServer(listening: rack.shardAddress)
            self.gateway = try RequestClient(dialing: cluster.gateway.address)
        } catch {
            throw ShardError("cannot listen on \(rack.shardAddress): \(error)")
        }
        (transitionStream, transitions) = AsyncStream<JobTransition>.makeStream()
    }

    /// Serves until cancelled.
    public func run() async throws {
        let server = self.server
        startTransitionSender()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve(concurrency: 8) { frame in await self.handle(frame: frame) } }
            group.addTask { await self.timerLoop() }
            try await group.next()
            group.cancelAll()
        }
    }

    public func shutdown() {
        for task in tasks { task.cancel() }
        transitions.finish()
        for queue in agentQueues.values { queue.finish() }
        server.close()
        gateway.close()
        for peer in peers.values { peer.close() }
    }

    // MARK: Timer

    private func timerLoop() async {
        while !Task.isCancelled {
            feed(.tick)
            let wall = clock.wallSinceEpoch
            if let deadline = swim.nextDeadline, wall >= deadline {
                execute(swim.tick(now: wall))
            }
            let digest = core.digest
            if digest != lastDigest && wall - lastDigestAt >= 0.25 {
                lastDigest = digest
                lastDigestAt = wall
                execute(swim.publishLocalDigest(digest, now: wall))
            }
            try? await Task.sleep(for: options.tickInterval)
        }
    }

    // MARK: Scheduler actions

    private func feed(_ event: ShardEvent) {
        execute(core.handle(event, now: clock.now))
    }

    private func execute(_ actions: [ShardAction]) {
        for action in actions {
            switch action {
            case .pollGateway: poll()
            case .sendCommand(let agentAddress, let command): queue(for: agentAddress).yield(command)
            case .reportTransition(let t): transitions.yield(t)
            case .sendTrade(let message): sendTrade(message)
            case .leaseGranted(let lease, let buyer, let job):
                AuditLog.leaseGranted(lease: lease, owner: shardID, buyer: buyer, job: job, gpus: [])
            case .leaseEnded(let lease, let buyer, let job):
                AuditLog.leaseEnded(lease: lease, owner: shardID, buyer: buyer, job: job, gpus: [], reason: "ended")
            case .log(let level, let message):
                switch level {
                case .debug: logger.debug("\(message)")
                case .info: logger.info("\(message)")
                case .warning: logger.warning("\(message)")
                }
            }
        }
    }

    private func envelope(_ body: Envelope.Body) -> [UInt8] { wire.encode(body, sentAt: clock.now) }

    /// A reply received on one of the shard's clients, checked by the wire (nil: refused, logged).
    private func open(_ bytes: [UInt8]) -> Envelope? {
        switch wire.decode(bytes) {
        case .success(let reply): return reply
        case .failure(let rejection):
            logger.warning("refused a reply: \(rejection) (frames refused: \(wire.counters))")
            return nil
        }
    }

    private func poll() {
        let frame = envelope(.listJobsRequest(ListJobsRequest(states: [.pending, .running, .restarting])))
        let gateway = self.gateway
        let timeout = options.requestTimeout
        tasks.append(Task {
            let event: ShardEvent
            if let bytes = try? await gateway.request(frame, timeout: timeout), let reply = self.open(bytes),
               case .listJobsReply(let list) = reply.body {
                event = .gatewayJobs(list.jobs)
            } else {
                event = .gatewayUnavailable
            }
            self.feed(event)
        })
        tasks.removeAll { $0.isCancelled }
        if tasks.count > 64 { tasks.removeFirst(tasks.count - 64) }
    }

    private func queue(for agentAddress: String) -> AsyncStream<WorkerCommand>.Continuation {
        if let existing = agentQueues[agentAddress] { return existing }
        let (stream, continuation) = AsyncStream<WorkerCommand>.makeStream()
        agentQueues[agentAddress] = continuation
        let client = try? RequestClient(dialing: agentAddress)
        let timeout = options.requestTimeout
        let logger = self.logger
        Task {
            for await command in stream {
                guard let client else {
                    self.feed(.commandFailed(command, error: "cannot dial \(agentAddress)"))
                    continue
                }
                var failure: String? = "no answer from \(agentAddress)"
                var acknowledged: CommandAck?
                for _ in 0..<3 {
                    // Stamped afresh per attempt: a resent frame would be refused as a replay.
                    let frame = self.envelope(.workerCommand(command))
                    guard let bytes = try? await client.request(frame, timeout: timeout) else { continue }
                    if let reply = self.open(bytes), case .commandAck(let ack) = reply.body {
                        failure = ack.ok ? nil : ack.error
                        acknowledged = ack
                    } else {
                        failure = "unexpected answer from \(agentAddress)"
                    }
                    break
                }
                if let failure {
                    self.feed(.commandFailed(command, error: failure))
                } else {
                    logger.debug("command \(command.commandID) (\(command.kind.rawValue) \(command.jobID)) acknowledged")
                    if let acknowledged, command.kind == .stop { self.feed(.commandAcknowledged(command, acknowledged)) }
                }
                AuditLog.workerCommand(kind: "\(command.kind)", commandID: command.commandID, job: command.jobID, gpus: command.gpuIDs, agent: agentAddress, ok: failure == nil, error: failure)
            }
        }
        return continuation
    }

    private func startTransitionSender() {
        let stream = transitionStream
        let gateway = self.gateway
        let timeout = options.requestTimeout
        let logger = self.logger
        tasks.append(Task {
            for await transition in stream {
                while !Task.isCancelled {
                    // Stamped afresh per attempt (same transition id): a resent frame would be a replay.
                    let frame = self.envelope(.jobTransition(transition))
                    if let bytes = try? await gateway.request(frame, timeout: timeout), let reply = self.open(bytes) {
                        switch reply.body {
                        case .jobStatus(let status): self.feed(.transitionAnswered(status))
                        case .error(let e):
                            logger.warning("the gateway refused transition \(transition.transitionID) of \(transition.jobID): \(e.message)")
                        default: break
                        }
                        break
                    }
                    logger.debug("gateway did not take transition \(transition.transitionID); retrying")
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
        })
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
        case .agentRegister(let r):
            let rack = r.nodes.first?.rack ?? ""
            guard core.racks.contains(where: { $0.id == rack }) else {
                return envelope(.error(WireErrorMessage(code: .unavailable, message: "\(shardID) does not own rack '\(rack)'")))
            }
            feed(.agentReport(agentID: r.agentID, address: r.address, nodes: r.nodes, jobs: r.jobs, at: clock.now, isRegister: true))
            return envelope(.commandAck(CommandAck(ok: true)))
        case .agentHeartbeat(let h) where h.agentID.isEmpty:
            return envelope(.agentHeartbeat(view()))
        case .agentHeartbeat(let h):
            let rack = h.nodes.first?.rack ?? ""
            guard core.agents[rack]?.agentID == h.agentID else {
                return envelope(.error(WireErrorMessage(code: .notFound, message: "unknown agent \(h.agentID): register first")))
            }
            feed(.agentReport(agentID: h.agentID, address: "", nodes: h.nodes, jobs: h.jobs, at: h.at, isRegister: false))
            return envelope(.commandAck(CommandAck(ok: true)))
        case .ping, .pingReq, .ack:
            return swimRequest(request)
        case .tradeOffer, .tradeAccept, .tradeReject, .leaseCommit, .leaseRelease:
            switch TradingWire.message(request.body, participants: cluster.racks.count) {
            case .success(let message):
                feed(.trade(message))
                return []  // one-way: answers travel as requests of their own
            case .failure(let problem):
                logger.warning("refused a \(request.body.kindName) from \(request.senderID): \(problem)")
                return envelope(.error(WireErrorMessage(code: .invalid, message: "\(request.body.kindName): \(problem)")))
            }
        default:
            return envelope(.error(WireErrorMessage(code: .invalid, message: "a shard does not handle \(request.body.kindName) messages")))
        }
    }

    /// The shard's view for `bourse nodes`: nodes of every rack it owns (as their agents last
    /// reported them) and its running jobs.
    private func view() -> AgentHeartbeat {
        var nodes: [NodeReport] = []
        for rack in core.racks {
            if let agent = core.agents[rack.id], !agent.nodes.isEmpty {
                nodes += agent.nodes
            } else {
                nodes += rack.nodes.map { NodeReport(nodeID: $0.id, rack: rack.id, health: .unspecified) }
            }
        }
        let jobs = core.runningJobs.map { job in
            JobProgress(
                jobID: job.id, stepsDone: job.stepsDone, checkpointSteps: job.checkpointSteps, stepsPerSecond: job.rate,
                workers: UInt32(job.workers.count), gpuType: job.typeIndex.map { core.planner.pool.types[$0] } ?? "")
        }
        return AgentHeartbeat(agentID: shardID, at: clock.now, nodes: nodes, jobs: jobs)
    }

    // MARK: SWIM

    private func swimRequest(_ request: Envelope) -> [UInt8] {
        guard let (message, dropped) = SWIMWire.message(request.body) else { return [] }
        droppedUpdates += dropped
        let sender = SWIM.MemberID(request.senderID)
        let known = swim.member(sender) != nil || message.updates.contains { $0.memberID == sender }
        if case .ping(let ping) = message, !known {
            // Not a member (e.g. `bourse members`): answer with the whole membership.
            let everyone = [swim.selfState] + swim.members
            return envelope(.ack(Ack(
                probeID: ping.probeID, targetID: shardID, updates: everyone.map { SWIMWire.update($0.update) },
                digests: swim.digests.map(SWIMWire.digest))))
        }
        heardFrom.insert(sender)
        var directives = swim.receive(message, from: sender, now: clock.wallSinceEpoch)
        var reply: [UInt8] = []
        if case .ping(let ping) = message,
           let index = directives.firstIndex(where: {
               if case .send(let to, _, .ack(let ack)) = $0 { return to == sender && ack.probeID == ping.probeID }
               return false
           }), case .send(_, _, let ack) = directives[index] {
            reply = envelope(SWIMWire.body(ack))
            directives.remove(at: index)
        }
        execute(directives)
        return reply
    }

    private func execute(_ directives: [SWIM.Directive<ShardDigest>]) {
        for directive in directives {
            switch directive {
            case .send(let to, let address, let message):
                send(message, to: to, address: address)
            case .memberStatusChanged(let state, let from, let to, let reason):
                guard from != nil else { continue }
                let wall = (clock.wallSinceEpoch * 1000).rounded() / 1000
                logger.notice("member \(state.id) (\(state.role)) \(from.map { "\($0)" } ?? "new") -> \(to) (\(reason)) at wall \(wall) s since the epoch")
                if to == .dead && state.role == .shard { shardDied(state.id, incarnation: state.incarnation) }
                if from == .dead && to != .dead && state.role == .shard {
                    // Back with a higher incarnation (refuted after a partition, or restarted):
                    // hand back the racks adopted from it, and the racks that now have another successor.
                    feed(.releaseRacks(ofShard: state.id.rawValue))
                    reviewAdoptions()
                }
            case .digestUpdated(let digest):
                if let groups = core.market?.layout.groups.count, !digest.payload.marketAsks.isEmpty {
                    feed(.marketAsks(TradingWire.marketAsks(digest.payload.marketAsks, groups: groups)))
                }
            case .refuted(let incarnation):
                logger.notice("refuted a suspicion about \(shardID): incarnation \(incarnation)")
            }
        }
    }

    private func peer(_ address: String) -> RequestClient? {
        if let existing = peers[address] { return existing }
        guard let made = try? RequestClient(dialing: address) else { return nil }
        peers[address] = made
        return made
    }

    /// A trading message to the shard of rack `message.recipient`: one-way (the reply is an
    /// empty frame); a lost one is the market's business (its deals time out).
    private func sendTrade(_ message: TradingMessage) {
        guard cluster.racks.indices.contains(message.recipient),
              let client = peer(cluster.racks[message.recipient].shardAddress) else { return }
        let frame = envelope(TradingWire.body(message, buyerShard: shardID))
        let timeout = options.requestTimeout
        Task { _ = try? await client.request(frame, timeout: timeout) }
    }

    private func send(_ message: SWIM.Message<ShardDigest>, to: SWIM.MemberID, address: SWIM.Address) {
        guard let client = peer(address.rawValue) else { return }
        let frame = envelope(SWIMWire.body(message))
        let timeout = Duration.milliseconds(Int64(max(50, options.swim.probePeriod * 1000)))
        Task {
            guard let bytes = try? await client.request(frame, timeout: timeout), !bytes.isEmpty,
                  let reply = self.open(bytes), case .ack = reply.body else { return }
            self.swimReply(reply)
        }
    }

    private func swimReply(_ reply: Envelope) {
        guard let (message, dropped) = SWIMWire.message(reply.body) else { return }
        droppedUpdates += dropped
        heardFrom.insert(SWIM.MemberID(reply.senderID))
        execute(swim.receive(message, from: SWIM.MemberID(reply.senderID), now: clock.wallSinceEpoch))
    }

    // MARK: Failover

    /// A shard was declared dead: if this shard is the deterministic successor of its rack (the
    /// next rack in config order whose shard is not dead), adopt the rack, and the racks the
    /// dead shard had adopted (from its last digest).
    private func shardDied(_ dead: SWIM.MemberID, incarnation: SWIM.Incarnation) {
        // Incarnation > 0: someone heard from the shard itself (it starts at its start time in ms
        // since the epoch), so it ran; a shard nobody ever heard from is never taken over.
        guard heardFrom.contains(dead) || incarnation > 0 else {
            logger.notice("\(dead) is dead but never answered this shard: not adopting its rack")
            return
        }
        var racksToAdopt = cluster.racks.filter { $0.shardID == dead.rawValue }.map(\.id)
        if let digest = swim.digest(of: dead) { racksToAdopt += digest.payload.racks.filter { !racksToAdopt.contains($0) } }
        for rackID in racksToAdopt {
            guard let index = cluster.racks.firstIndex(where: { $0.id == rackID }) else { continue }
            let next = successor(of: rackID)
            guard next?.shardID == shardID else {
                logger.info("rack \(rackID) of \(dead) goes to \(next?.shardID ?? "nobody")")
                continue
            }
            let rack = cluster.racks[index]
            logger.notice("adopting rack \(rackID) of \(dead) (this shard is its successor)")
            AuditLog.rackAdopted(rack: rackID, from: rack.shardID)
            feed(.adoptRack(rack, formerShard: rack.shardID))
        }
    }

    /// The successor of `rackID` in this shard's view: the next rack in config order whose shard
    /// is this one or not believed dead.
    private func successor(of rackID: String) -> RackSpec? {
        guard let index = cluster.racks.firstIndex(where: { $0.id == rackID }) else { return nil }
        let order = cluster.racks[(index + 1)...] + cluster.racks[..<index]
        return order.first { rack in
            rack.shardID == shardID || (swim.status(of: SWIM.MemberID(rack.shardID)).map { $0 != .dead } ?? false)
        }
    }

    /// A shard came back: a rack adopted here whose own shard is still dead but whose successor
    /// is now that (alive) shard or another before this one is handed back, so only the successor
    /// keeps it (two shards whose views diverged, e.g. across a partition, may both have adopted
    /// it); its agent goes round to the successor, which adopted it when it saw the owner die.
    /// Only hands back: a shard never adopts on a view it may just have rejoined with.
    private func reviewAdoptions() {
        for (rackID, former) in core.adopted.sorted(by: { $0.key < $1.key }) {
            guard swim.status(of: SWIM.MemberID(former)) == .dead, let next = successor(of: rackID), next.shardID != shardID,
                  swim.status(of: SWIM.MemberID(next.shardID)) == .alive else { continue }
            logger.notice("rack \(rackID) of \(former) now goes to \(next.shardID): handing it back")
            feed(.releaseRacks(ofShard: former))
        }
    }

    // MARK: Queries for tests and diagnostics

    public var members: [SWIM.MemberState] { [swim.selfState] + swim.members }
    /// True while this shard trades (policy bourse, several racks, not turned off, no rack adopted).
    public var trading: Bool { core.market != nil }
    public var completedCount: Int { core.completedCount }
}

public struct ShardError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
