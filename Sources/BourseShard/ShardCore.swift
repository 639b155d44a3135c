import BourseModel
import BoursePolicy
import BourseTrading
import BourseWire
import BourseWorkload

/// Settings of a shard.
public struct ShardSettings: Sendable, Hashable {
    /// Member id, e.g. "shard-r0".
    public var shardID: String
    public var roundSeconds: Double
    /// Checkpoint-restart delay sent with every start (cluster seconds).
    public var restartSeconds: Double
    /// First transition id; ids then count up. The shell passes a value unique to this process
    /// life (the gateway deduplicates on (shard, transition id), so a restarted shard must not
    /// reuse the ids of its previous life).
    public var firstTransitionID: UInt64
    public var firstCommandID: UInt64

    /// Tenant name -> weight (the config's `tenants:`); a tenant's home jobs together weigh its
    /// share of the weights of the tenants with active jobs. Empty = every job weighs its own.
    public var tenantWeights: [String: Double] = [:]

    /// Opportunistic trading with the other racks' shards (policy bourse, clusters of several racks).
    public var trading = TradingSettings()
    /// The cluster's network (speeds of jobs spread over servers).
    public var network: NetworkSpec = .default
    /// How long (cluster seconds) jobs that may still run on a rack this shard just got (adopted,
    /// or its own at start) wait for that rack's agent to register before they are planned
    /// anyway, from their last checkpoint. Nil: 4 rounds. The shell passes a wall-clock bound
    /// times the clock's speed-up.
    public var agentWaitSeconds: Double?

    public init(shardID: String, roundSeconds: Double, restartSeconds: Double, firstTransitionID: UInt64 = 1, firstCommandID: UInt64 = 1) {
        self.shardID = shardID
        self.roundSeconds = roundSeconds
        self.restartSeconds = restartSeconds
        self.firstTransitionID = max(1, firstTransitionID)
        self.firstCommandID = max(1, firstCommandID)
    }
}

/// How a live shard trades (docs/trading.md, "Live shards").
public struct TradingSettings: Sendable, Hashable {
    public var enabled = false
    /// The market stays open this long (cluster seconds) after a round starts: trading phases
    /// run on every tick until then; the round's placement changes wait for it.
    public var window: Double = 60
    /// After the close, the owners wait this long (cluster seconds) for the buyers' commits
    /// before they place the round.
    public var commitGrace: Double = 20
    public var leaseSeconds: Double = 720
    /// A deal whose answers have not all arrived after this many phases (ticks) fails.
    public var offerTimeoutPhases = 12
    /// A home job that runs on one other rack's lease alone is handed over to that rack's shard
    /// (the simulator's rehoming): it keeps its GPUs with no renewal to win (docs/trading.md).
    public var rehome = true

    public init(enabled: Bool = false) { self.enabled = enabled }
}

/// Inputs of ``ShardCore``.
public enum ShardEvent: Sendable, Hashable {
    /// Timer: starts a round when one is due.
    case tick
    /// An agent registered (`isRegister`) or heartbeated.
    case agentReport(agentID: String, address: String, nodes: [NodeReport], jobs: [JobProgress], at: Double, isRegister: Bool)
    /// The gateway's unfinished jobs (answer to ``ShardAction/pollGateway``).
    case gatewayJobs([JobStatus])
    /// The poll failed: plan the pending round with the jobs known.
    case gatewayUnavailable
    /// The gateway applied (or had already applied) a transition and answered with the job's status.
    case transitionAnswered(JobStatus)
    /// An agent refused or did not answer a command.
    case commandFailed(WorkerCommand, error: String)
    /// An agent acknowledged a command (a STOP's ack carries the checkpoint the stop took).
    case commandAcknowledged(WorkerCommand, CommandAck)
    /// Membership declared `formerShard` dead and this shard is its rack's successor: take the
    /// rack over (its GPUs, and the home jobs of `formerShard`).
    case adoptRack(RackSpec, formerShard: String)
    /// A trading message from another rack's shard.
    case trade(TradingMessage)
    /// Asks other shards published in their gossip digests (market group -> ask).
    case marketAsks([Int: MarketAsk])
    /// `shard`, whose racks this shard adopted, is alive again (it refuted its death with a higher
    /// incarnation, or restarted), or another shard is their successor now: hand its racks back.
    /// Jobs running there go to `shard` with them (a transition naming it in the placement,
    /// workers left running); its home jobs this shard never started are forgotten here (the
    /// gateway still lists them for `shard`).
    case releaseRacks(ofShard: String)
}

/// Outputs of ``ShardCore``; the shell executes them in order.
public enum ShardAction: Sendable, Hashable {
    /// Ask the gateway for its unfinished jobs (ListJobsRequest); answer with `.gatewayJobs`
    /// or `.gatewayUnavailable`.
    case pollGateway
    /// Send a worker command to the agent at `agentAddress` (commands to one agent keep their order).
    case sendCommand(agentAddress: String, WorkerCommand)
    /// Report a transition to the gateway (in order, retried until answered).
    case reportTransition(JobTransition)
    /// Send a trading message to the shard of rack `message.recipient` (cluster config order);
    /// one-way, may be lost.
    case sendTrade(TradingMessage)
    /// A lease this shard granted began or ended (for the audit log): lease id, buyer shard, job.
    case leaseGranted(lease: String, buyer: String, job: String)
    case leaseEnded(lease: String, buyer: String, job: String)
    case log(ShardLogLevel, String)
}

public enum ShardLogLevel: Sendable, Hashable { case debug, info, warning }

/// The scheduler of the racks a shard owns, as a pure state machine (no I/O, no clock: every
/// input comes with `now`, cluster seconds).
///
/// - Single writer of its GPUs: only this shard sends them worker commands.
/// - Home jobs come from the gateway (the source of truth): every round the shard polls the
///   unfinished jobs and keeps those whose `home_shard` is this shard (or a shard whose rack it
///   adopted); a job no longer listed was cancelled and is stopped.
/// - Every round (`roundSeconds`) it plans its home jobs over its GPUs with the round planner
///   (``ShardPlanner``), stops the jobs that lose or change their GPUs, then starts the jobs on
///   their new GPUs (stops first, so a GPU is never promised to two jobs).
/// - Progress and completion come from agent reports; a completion is reported at its estimated
///   time (last report + remaining steps / rate), not when the report arrived.
/// - Transitions to the gateway: running (with placement), pending (preempted), completed; each
///   with an id unique per shard life, so a retry is applied once.
public struct ShardCore: Sendable {
    public struct Job: Sendable, Hashable {
        public var id: String
        /// Planner id (arrival order at this shard).
        public var seq: Int
        public var spec: JobSpec
        public var firstSeen: Double
        public var stepsDone: Double
        public var checkpointSteps: Double
        /// Last report with the job running: when, steps, rate.
        public var lastReportAt: Double?
        public var rate: Double = 0
        /// Progress resumes (after the restart delay) at this time.
        public var resumeAt: Double = 0
        /// Planner type index and worker ids while placed.
        public var typeIndex: Int?
        public var workers: [Int] = []
        public var runnable = true
        /// A job of another shard running here on a lease (its home shard, its `owner`, schedules
        /// it; this shard runs its workers, reports its progress and completion).
        public var guest = false
        /// The shard the gateway named for the job (placement, else home) when it was listed here.
        /// Once this shard reports a home job running, its placement names this shard
        /// (``placedHere``); a guest's placements keep naming its owner.
        public var owner: String = ""
        /// Set while the job waits for this rack's agent to register (it may still run there, or
        /// have progressed there beyond what the gateway knows): not planned meanwhile.
        public var heldFor: String?
        /// A job spread over racks by a trade: the workers of the whole job (its workers here are
        /// a part of them; 0 = not spread). Its agent runs them at the whole job's speed.
        public var spreadWorkers = 0
        /// A part of a spread job that another shard reports (``LeaseCommit/silent``): its workers
        /// run here, and nothing about it goes to the gateway.
        public var silent = false

        public var isPlaced: Bool { typeIndex != nil }
    }

    public struct AgentLink: Sendable, Hashable {
        public var agentID: String
        public var address: String
        public var rackID: String
        public var lastSeen: Double
        public var nodes: [NodeReport]
    }

    public let settings: ShardSettings
    public private(set) var racks: [RackSpec]
    public private(set) var planner: ShardPlanner
    public private(set) var jobs: [String: Job] = [:]
    public private(set) var finished: Set<String> = []
    public private(set) var agents: [String: AgentLink] = [:]  // by rack id
    public private(set) var round: UInt64 = 0
    public private(set) var nextRoundAt: Double
    public private(set) var roundPending = false
    public private(set) var lastRoundAt: Double?
    public private(set) var completedCount = 0
    /// Shard ids whose home jobs this shard schedules (itself plus adopted shards).
    public private(set) var homeShards: [String]
    /// Workers found running on GPUs at an agent's registration whose jobs this shard does not
    /// know yet (after an adoption): job id -> GPU ids. Placed when the gateway lists the job,
    /// stopped when it does not.
    public private(set) var orphans: [String: [String]] = [:]
    /// Nodes reported failed: out of the planner's pool.
    public private(set) var failedNodes: Set<String> = []
    /// Home jobs this shard cannot run at all, handed to the first rack (config order, after its
    /// own) whose GPUs can: the delegate's shard id is written into the job's placement at the
    /// gateway, and from then on that shard (or its adopter) schedules the job.
    public private(set) var delegated: [String: String] = [:]
    /// Home jobs handed over to the owner of the lease they ran on alone (``TradingSettings/rehome``):
    /// job id -> (that shard's id, when). Not scheduled here while the gateway still lists them
    /// here; taken back when it still does `handOverTimeoutRounds` rounds later (the owner never
    /// took the job: its commit was lost, or it died).
    public private(set) var handedOver: [String: (to: String, at: Double)] = [:]
    static let handOverTimeoutRounds = 3.0
    /// Jobs this shard took over (the other side of `handedOver`): job id -> (the old home, when).
    /// A gateway list that still names the old home is stale (this shard's report is on its way)
    /// for up to `takeOverTimeoutRounds`; after that this shard gives the job up again.
    public private(set) var takenOver: [String: (from: String, at: Double)] = [:]
    static let takeOverTimeoutRounds = 2.0
    /// Every rack of the cluster, in config order (for delegation); empty = never delegate.
    public let clusterRacks: [RackSpec]
    /// The market (trading on): this rack's side of opportunistic trading. Nil when trading is
    /// off, and while the shard holds an adopted rack (the market's participants are the config's
    /// racks). A node failure or recovery re-opens it on the GPUs left (`rejoinMarket`).
    public private(set) var market: TradingShard?
    /// What the market is built from, kept to re-open it.
    private var marketSetup: MarketSetup?
    /// A planner over the whole cluster (trading on): whether a job no rack can run alone can
    /// run across racks.
    private var clusterPlanner: ShardPlanner?
    /// Home jobs running on other racks' leases this round.
    public private(set) var remote: Set<String> = []
    /// Latest unfinished jobs of the whole cluster (the gateway's list), for guests' specs.
    private var clusterJobs: [String: JobStatus] = [:]
    private var gossipAsks: [Int: MarketAsk] = [:]
    private var window: TradingWindow?
    private var roundStartedAt = 0.0
    /// Rounds whose market this shard ran, and their trading phases.
    public private(set) var marketRounds = 0
    private var marketPhases = 0
    /// The counters of the markets this shard closed (totals go on across a re-opening).
    private var closedCounters = TradingCounters()

    struct MarketSetup {
        var own: Int
        var layout: MarketLayout
        var parameters: TradingParameters
        var valuationPool: WorkerPool
        /// The cluster's GPU types, so type indices agree across the market (planner rebuilds too).
        var allTypes: [String]
    }

    struct TradingWindow {
        var round: Int
        var closeAt: Double
        var placeAt: Double
        var closed = false
    }

    /// Adopted rack id -> the shard it was adopted from.
    public private(set) var adopted: [String: String] = [:]
    /// Racks owned here whose agent has not registered since this shard got them, and until when
    /// their jobs wait for it (see ``Job/heldFor``).
    public private(set) var awaitingAgent: [String: Double] = [:]
    /// Progress an agent reported (at registration, or after) for jobs this shard did not know
    /// yet, e.g. completed on an adopted rack while it had no shard: used when the gateway lists them.
    public private(set) var unclaimedProgress: [String: (progress: JobProgress, rackID: String)] = [:]
    /// Jobs this shard reported running (their placement at the gateway names this shard).
    public private(set) var placedHere: Set<String> = []
    /// STOP commands sent and not acknowledged yet: job id -> (command id, agent address).
    private var stopsInFlight: [String: (commandID: UInt64, agentAddress: String)] = [:]
    /// Starts on another agent than the one a STOP is still in flight to: sent once the STOP's ack
    /// gives the checkpoint to resume from (job id -> agent address, command).
    public private(set) var deferredStarts: [String: (agentAddress: String, command: WorkerCommand)] = [:]
    private var nextSeq = 1
    private var nextTransitionID: UInt64
    private var nextCommandID: UInt64
    private let table: ThroughputTable
    private let policy: String

    public init(
        settings: ShardSettings, racks: [RackSpec], table: ThroughputTable, policy: String, now: Double,
        clusterRacks: [RackSpec] = []
    ) throws {
        self.settings = settings
        self.clusterRacks = clusterRacks
        self.racks = racks
        self.table = table
        self.policy = policy
        let own = clusterRacks.firstIndex { rack in racks.count == 1 && rack.id == racks[0].id }
        let trading = settings.trading.enabled && PolicyCatalog.isBourse(policy) && clusterRacks.count > 1 && own != nil
        // Trading shards share the cluster's type list, so type indices agree across the market.
        let allTypes = trading ? clusterRacks.flatMap { $0.nodes.flatMap { $0.gpuIDs.map(\.type) } } : []
        func makePlanner(_ racks: [RackSpec]) throws -> ShardPlanner {
            try Self.makeShardPlanner(racks, allTypes: allTypes, policy: policy, table: table, settings: settings)
        }
        self.planner = try makePlanner(racks)
        if trading, let own {
            let clusterPlanner = try makePlanner(clusterRacks)
            self.clusterPlanner = clusterPlanner
            let cluster = clusterPlanner.pool
            let groups = try clusterRacks.map { rack in try makePlanner([rack]).marketPlanner(valuationPool: cluster)!.groups }
            var parameters = TradingParameters()
            parameters.leaseSeconds = settings.trading.leaseSeconds
            parameters.offerTimeoutPhases = settings.trading.offerTimeoutPhases
            parameters.handOverLeasedJobs = settings.trading.rehome
            parameters.spreadRenewalsOverNextBest = false
            let setup = MarketSetup(
                own: own, layout: MarketLayout(shardGroups: groups), parameters: parameters, valuationPool: cluster,
                allTypes: allTypes)
            marketSetup = setup
            market = TradingShard(
                id: own, layout: setup.layout, planner: planner.marketPlanner(valuationPool: cluster)!, parameters: parameters)
        }
        self.homeShards = [settings.shardID]
        // Rounds start at multiples of the round length on the cluster clock, so every shard's
        // round N is the same interval (the market's offers name their round).
        self.nextRoundAt = (now / settings.roundSeconds).rounded(.up) * settings.roundSeconds
        self.nextTransitionID = settings.firstTransitionID
        self.nextCommandID = settings.firstCommandID
        // Jobs the gateway places on these racks may run there: they wait for the agent.
        let wait = settings.agentWaitSeconds ?? 4 * settings.roundSeconds
        for rack in racks { awaitingAgent[rack.id] = now + wait }
    }

    // MARK: Queries

    public var runningJobs: [Job] { jobs.values.filter(\.isPlaced).sorted { $0.seq < $1.seq } }
    public var queuedJobs: [Job] { jobs.values.filter { !$0.isPlaced }.sorted { $0.seq < $1.seq } }

    /// Free GPUs per type (of registered agents' healthy GPUs).
    public var freeGPUs: [String: Int] {
        var taken = Set<Int>()
        for job in jobs.values { taken.formUnion(job.workers) }
        var free: [String: Int] = [:]
        for (i, slot) in planner.slots.enumerated() where !taken.contains(i) { free[slot.type, default: 0] += 1 }
        return free
    }

    /// This shard's digest for gossip.
    public var digest: ShardDigest {
        ShardDigest(
            shardID: settings.shardID, racks: racks.map(\.id),
            asks: freeGPUs.keys.sorted().map { AskPrice(gpuType: $0, ask: 0, freeGpus: UInt32(freeGPUs[$0] ?? 0)) },
            queuedJobs: UInt32(queuedJobs.count), round: round,
            marketAsks: market.map { TradingWire.groupAsks($0.ownAsks) } ?? [],
            trading: marketRounds > 0 ? tradingTotals : nil)
    }

    /// What this shard's market did since it started.
    public var tradingTotals: TradingTotals {
        var t = TradingTotals()
        let c = tradingCounters
        t.rounds = UInt64(marketRounds)
        t.phases = UInt64(marketPhases)
        t.offersSent = UInt64(c.offersSent)
        t.offersReceived = UInt64(c.offersReceived)
        t.accepts = UInt64(c.accepts)
        t.rejects = UInt64(c.rejects)
        t.leasesGranted = UInt64(c.leasesGranted)
        t.leasesEnded = UInt64(c.leasesEnded)
        t.messagesSent = UInt64(c.messagesSent)
        t.leasesHeld = UInt32(market?.leases.count ?? 0)
        t.guests = UInt32(jobs.values.filter(\.guest).count)
        return t
    }

    /// Trading counters since the shard started (closed markets and the open one).
    private var tradingCounters: TradingCounters { closedCounters + (market?.counters ?? TradingCounters()) }

    // MARK: Events

    public mutating func handle(_ event: ShardEvent, now: Double) -> [ShardAction] {
        let leasesBefore = market?.leases ?? [:]
        let out = dispatch(event, now: now)
        let leasesAfter = market?.leases ?? [:]
        guard leasesBefore != leasesAfter else { return out }
        return out + leaseChanges(from: leasesBefore, to: leasesAfter)
    }

    /// The leases granted and ended by an event, for the audit log (a lease renewed keeps its id).
    private func leaseChanges(from before: [LeaseID: TradingShard.Lease], to after: [LeaseID: TradingShard.Lease]) -> [ShardAction] {
        func names(_ lease: TradingShard.Lease) -> (String, String, String) {
            let buyer = shardID(ofParticipant: lease.buyer) ?? "rack #\(lease.buyer)"
            return (TradingWire.leaseID(lease.id), buyer, TradingWire.jobID(lease.job))
        }
        var out: [ShardAction] = []
        for (id, lease) in before.sorted(by: { $0.key < $1.key }) where after[id] == nil {
            let (l, b, j) = names(lease)
            out.append(.leaseEnded(lease: l, buyer: b, job: j))
        }
        for (id, lease) in after.sorted(by: { $0.key < $1.key }) where before[id] == nil {
            let (l, b, j) = names(lease)
            out.append(.leaseGranted(lease: l, buyer: b, job: j))
        }
        return out
    }

    private mutating func dispatch(_ event: ShardEvent, now: Double) -> [ShardAction] {
        switch event {
        case .tick: return tick(now: now)
        case .agentReport(let agentID, let address, let nodes, let progress, let at, let isRegister):
            return agentReport(agentID: agentID, address: address, nodes: nodes, progress: progress, at: at, isRegister: isRegister, now: now)
        case .gatewayJobs(let list): return gatewayJobs(list, now: now)
        case .gatewayUnavailable:
            var out: [ShardAction] = [.log(.warning, "gateway unavailable: planning round \(round + 1) with the jobs known")]
            if roundPending { out += startRound(now: now) }
            return out
        case .transitionAnswered(let status):
            if status.state == .cancelled || status.state == .failed, jobs[status.jobID] != nil {
                return drop(status.jobID, reason: "the gateway says \(status.jobID) is \(status.state == .cancelled ? "cancelled" : "failed")", now: now)
            }
            return []
        case .adoptRack(let rack, let formerShard):
            return adopt(rack, formerShard: formerShard, now: now)
        case .trade(let message):
            market?.receive(message)
            guard case .reject(let r) = message else { return [] }
            let (job, owner) = (TradingWire.jobID(r.job), shardID(ofParticipant: r.owner))
            var out: [ShardAction] = [
                .log(.debug, "\(job): offer \(r.offerID) rejected by \(owner ?? "rack #\(r.owner)"): \(r.reason.rawValue), ask \(r.ask) per GPU")
            ]
            if r.reason == .unknownLease, let handover = handedOver[job], owner == handover.to {
                // The owner no longer held the lease when the hand-over came (taken back, or the
                // commit came after its placement): the job is this shard's again.
                handedOver[job] = nil
                out.append(.log(.info, "\(job) was not taken over by \(handover.to) (its lease had ended there): scheduled here again from the next gateway list"))
            }
            return out
        case .marketAsks(let asks):
            for (group, ask) in asks { gossipAsks[group] = ask }
            market?.learnAsks(asks)
            return []
        case .releaseRacks(let shard):
            return releaseRacks(of: shard, now: now)
        case .commandAcknowledged(let command, let ack):
            return commandAcknowledged(command, ack, now: now)
        case .commandFailed(let command, let error):
            var out: [ShardAction] = [.log(.warning, "command \(command.commandID) (\(command.jobID)) failed: \(error)")]
            if command.kind == .stop { out += stopSettled(command, ack: nil, now: now) }
            if command.kind == .start, var job = jobs[command.jobID], job.isPlaced {
                // Back to the queue; the next round tries again.
                job.typeIndex = nil
                job.workers = []
                jobs[job.id] = job
                out.append(transition(job, .pending, at: now, reason: "start failed: \(error)"))
            }
            return out
        }
    }

    private mutating func tick(now: Double) -> [ShardAction] {
        if window != nil { return tradingTick(now: now) }
        guard !roundPending, now >= nextRoundAt else { return [] }
        roundPending = true
        roundStartedAt = nextRoundAt
        // The next multiple of the round length (a catch-up round may have started between them).
        nextRoundAt = ((now / settings.roundSeconds).rounded(.down) + 1) * settings.roundSeconds
        return [.pollGateway]
    }

    /// With the gateway's jobs known: trade first (the market), or plan at once. A catch-up round
    /// (started off the common round boundaries, after the market closed mid-window) is planned
    /// without a market: the other shards' markets for that interval are over.
    private mutating func startRound(now: Double) -> [ShardAction] {
        let onBoundary = (roundStartedAt / settings.roundSeconds).rounded() * settings.roundSeconds == roundStartedAt
        return market == nil || !onBoundary ? planRound(now: now) : openMarket(now: now)
    }

    // MARK: Gateway

    private mutating func gatewayJobs(_ list: [JobStatus], now: Double) -> [ShardAction] {
        var out: [ShardAction] = expireAgentWaits(now: now)
        var listed = Set<String>()
        clusterJobs = Dictionary(list.map { ($0.jobID, $0) }, uniquingKeysWith: { _, last in last })
        // Unfinished jobs the gateway gives to a shard whose jobs this one does not schedule.
        var elsewhere: [String: String] = [:]
        for status in list where !homeShards.contains(Self.owner(of: status)) && jobs[status.jobID].map({ !$0.guest }) ?? false {
            if status.state == .pending || status.state == .running || status.state == .restarting {
                elsewhere[status.jobID] = Self.owner(of: status)
            }
        }
        for status in list {
            guard let taken = takenOver[status.jobID] else { continue }
            if Self.owner(of: status) == taken.from, now - taken.at < Self.takeOverTimeoutRounds * settings.roundSeconds {
                elsewhere[status.jobID] = nil  // a list from before this shard's report: still ours
                listed.insert(status.jobID)
            } else {
                takenOver[status.jobID] = nil
            }
        }
        let ids = Set(list.map(\.jobID))
        // A handed-over job the gateway lists elsewhere (its new owner reported it), or no more.
        for id in handedOver.keys where !(clusterJobs[id].map { homeShards.contains(Self.owner(of: $0)) } ?? false) {
            handedOver[id] = nil
        }
        unclaimedProgress = unclaimedProgress.filter { ids.contains($0.key) }
        for status in list where homeShards.contains(Self.owner(of: status)) {
            guard status.state == .pending || status.state == .running || status.state == .restarting else { continue }
            guard delegated[status.jobID] == nil else { continue }
            if let handover = handedOver[status.jobID] {
                guard now - handover.at >= Self.handOverTimeoutRounds * settings.roundSeconds else { continue }
                handedOver[status.jobID] = nil
                out.append(.log(.warning, "\(status.jobID) was handed over to \(handover.to), which has not taken it \(Int(now - handover.at)) s later: scheduled here again"))
            }
            listed.insert(status.jobID)
            if var known = jobs[status.jobID], !known.isPlaced {
                // Not running here (queued, or on another rack's lease): the gateway has the
                // latest progress (from the lease's owner).
                known.stepsDone = max(known.stepsDone, status.stepsDone)
                known.checkpointSteps = max(known.checkpointSteps, status.checkpointSteps)
                jobs[status.jobID] = known
            }
            guard jobs[status.jobID] == nil, !finished.contains(status.jobID), let spec = status.spec else { continue }
            var job = Job(
                id: status.jobID, seq: newSeq(status.jobID), spec: spec, firstSeen: now, stepsDone: status.stepsDone,
                checkpointSteps: status.checkpointSteps)
            job.owner = Self.owner(of: status)
            let reported = unclaimedProgress.removeValue(forKey: job.id)
            if let p = reported?.progress {
                // An agent reported it before the gateway listed it here (e.g. it ran on an
                // adopted rack): its progress is newer than the gateway's.
                job.stepsDone = max(job.stepsDone, p.stepsDone)
                job.checkpointSteps = max(job.checkpointSteps, p.checkpointSteps)
            } else if let rack = rackToAwait(status, owner: job.owner) {
                job.heldFor = rack
                out.append(.log(.info, "\(job.id) waits for the agent of rack \(rack) before it is planned"))
            }
            var added = job
            added.runnable = planner.canRun(input(job, now: now))
            if !added.runnable, orphans[job.id] == nil, let delegate = delegate(for: job, now: now) {
                delegated[job.id] = delegate
                listed.remove(job.id)
                out.append(.log(.info, "\(job.id) ('\(spec.jobType)' x\(spec.workers)) cannot run on the GPUs of \(settings.shardID): delegated to \(delegate)"))
                out.append(.reportTransition(JobTransition(
                    jobID: job.id, state: .pending, at: now, stepsDone: job.stepsDone, checkpointSteps: job.checkpointSteps,
                    placement: Placement(shardID: delegate), reason: "delegated to \(delegate) by \(settings.shardID)",
                    transitionID: newTransitionID())))
                continue
            }
            if !added.runnable, runsAcrossRacks(job, now: now) {
                added.runnable = true
                out.append(.log(.info, "\(job.id) ('\(spec.jobType)' x\(spec.workers)): no rack can run it alone; trading places it across racks"))
            }
            if let gpuIDs = orphans.removeValue(forKey: job.id) { place(&added, onGPUs: gpuIDs) }
            jobs[job.id] = added
            if added.runnable {
                planner.addJob(job.seq)
                out.append(.log(.info, "home job \(job.id): '\(spec.jobType)' x\(spec.workers), \(spec.totalSteps) steps"))
            } else {
                out.append(.log(.warning, "home job \(job.id) ('\(spec.jobType)' x\(spec.workers)) cannot run on the GPUs of \(settings.shardID); it stays pending"))
            }
            if let reported, reported.progress.stepsDone >= Double(spec.totalSteps) {
                // It completed there while no shard listened.
                out += complete(added, reportAt: now, agentAddress: agents[reported.rackID]?.address)
            }
        }
        // Gone from the gateway's unfinished jobs (a guest: gone from the whole list).
        for id in jobs.keys.sorted() where !listed.contains(id) && (!jobs[id]!.guest || clusterJobs[id] == nil) {
            if let other = elsewhere[id] {
                // Not cancelled: another shard schedules it now (it took the job over while this
                // shard was cut off, or this shard handed the job's rack back).
                out += forget(id, reason: "\(id) is scheduled by \(other) now: forgotten here", now: now)
            } else {
                let reason = jobs[id]!.guest ? "finished" : remote.contains(id) ? "completed on a lease" : "cancelled"
                out += drop(id, reason: "\(id) is no longer unfinished at the gateway (\(reason))", now: now)
            }
        }
        for (id, gpuIDs) in orphans.sorted(by: { $0.key < $1.key }) {
            orphans[id] = nil
            guard let rackID = planner.slots.first(where: { $0.id == gpuIDs.first })?.rackID, let agent = agents[rackID] else { continue }
            out.append(.log(.info, "stopping \(id) on \(gpuIDs.joined(separator: ",")): not an unfinished home job of \(settings.shardID)"))
            out.append(.sendCommand(agentAddress: agent.address, WorkerCommand(commandID: newCommandID(), kind: .stop, jobID: id)))
        }
        if roundPending { out += startRound(now: now) }
        return out
    }

    /// Stops and forgets a job the gateway finished (cancelled / failed).
    private mutating func drop(_ id: String, reason: String, now: Double) -> [ShardAction] {
        let out = forget(id, reason: reason, now: now)
        if !out.isEmpty { finished.insert(id) }
        return out
    }

    /// Stops a job if it runs here and forgets it (not finished: it may come back).
    private mutating func forget(_ id: String, reason: String, now: Double) -> [ShardAction] {
        guard let job = jobs[id] else { return [] }
        var out: [ShardAction] = [.log(.info, reason)]
        if job.isPlaced, let stop = stopCommand(job) { out += [.log(.info, "stopping \(id)"), stop] }
        remove(job)
        return out
    }

    /// Removes a job from the table and the planner, with its pending start.
    private mutating func remove(_ job: Job) {
        if job.runnable && !job.guest { planner.removeJob(job.seq) }
        jobs[job.id] = nil
        remote.remove(job.id)
        deferredStarts[job.id] = nil
        placedHere.remove(job.id)
    }

    // MARK: Rounds

    private func input(_ job: Job, now: Double, tenantShare: Double = 1) -> ShardPlanner.JobInput {
        let w = Int(job.spec.workers)
        return ShardPlanner.JobInput(
            id: job.seq, model: job.spec.jobType, workers: w,
            minWorkers: job.spec.minWorkers == 0 ? w : Int(job.spec.minWorkers),
            maxWorkers: job.spec.maxWorkers == 0 ? w : Int(job.spec.maxWorkers),
            weight: (job.spec.weight > 0 ? job.spec.weight : 1) * tenantShare,
            totalSteps: Double(job.spec.totalSteps), stepsDone: job.stepsDone, waited: now - job.firstSeen)
    }

    /// Per tenant with active jobs: (its weight / the weights of the tenants with active jobs) x
    /// (active jobs / its active jobs), so each tenant's jobs together weigh its weighted share
    /// (as in the simulator). A tenant the config does not name weighs 1; no weights = all 1.
    func tenantShares(_ active: [Job]) -> [String: Double] {
        guard !settings.tenantWeights.isEmpty else { return [:] }
        var count: [String: Int] = [:]
        for job in active { count[job.spec.tenant, default: 0] += 1 }
        let total = count.keys.reduce(0.0) { $0 + (settings.tenantWeights[$1] ?? 1) }
        var shares: [String: Double] = [:]
        for (tenant, n) in count {
            shares[tenant] = (settings.tenantWeights[tenant] ?? 1) / total * Double(active.count) / Double(n)
        }
        return shares
    }

    /// Racks with a registered agent.
    private var liveRacks: Set<String> { Set(agents.keys) }

    private mutating func planRound(now: Double) -> [ShardAction] {
        roundPending = false
        // Time each placed job ran in the round that ends now.
        if let last = lastRoundAt {
            let ran = min(settings.roundSeconds, max(0, now - last))
            for job in runningJobs { planner.recordExecution(job: job.seq, typeIndex: job.typeIndex!, seconds: ran) }
        }
        lastRoundAt = now
        let active = jobs.values.filter { $0.runnable && $0.heldFor == nil }.sorted { $0.seq < $1.seq }
        guard !active.isEmpty else { return [] }
        guard !liveRacks.isEmpty else {
            return [.log(.info, "round skipped: no agent registered yet")]
        }
        round += 1
        let assignments: [RoundAssignment]
        do {
            let shares = tenantShares(active)
            assignments = try planner.planRound(
                now: now, jobs: active.map { input($0, now: now, tenantShare: shares[$0.spec.tenant] ?? 1) })
        } catch {
            return [.log(.warning, "round \(round): planner failed: \(error)")]
        }
        return apply(assignments, active: active, now: now)
    }

    // MARK: Market

    /// Opens the round's market: the home jobs become the market's home jobs; renewals and
    /// releases go out. Trading phases follow on every tick until the close.
    private mutating func openMarket(now: Double) -> [ShardAction] {
        guard var market else { return planRound(now: now) }
        if let rack = racks.first(where: { !liveRacks.contains($0.id) }) {
            // It could not run what it sells: the others' offers go unanswered this round.
            return [.log(.info, "market round skipped: the agent of rack \(rack.id) has not registered")] + planRound(now: now)
        }
        let home = jobs.values.filter { $0.runnable && !$0.guest && $0.heldFor == nil }.sorted { $0.seq < $1.seq }
        let shares = tenantShares(home)
        let policyJobs = home.map { planner.policyJob(input($0, now: now, tenantShare: shares[$0.spec.tenant] ?? 1)) }
        let number = Int((roundStartedAt / settings.roundSeconds).rounded())
        let out = market.beginRound(
            round: number, now: now, homeJobs: policyJobs, activeJobs: max(clusterJobs.count, home.count), gossip: gossipAsks)
        self.market = market
        window = TradingWindow(
            round: number, closeAt: now + settings.trading.window,
            placeAt: now + settings.trading.window + settings.trading.commitGrace)
        return out.map(ShardAction.sendTrade)
    }

    /// A tick while the market is open: a trading phase; at the close, the commits; after the
    /// grace, the round's placement.
    private mutating func tradingTick(now: Double) -> [ShardAction] {
        guard var market, var window else { return [] }
        var messages: [TradingMessage] = []
        if now < window.closeAt {
            messages = market.phase()
        } else if !window.closed {
            messages = market.phase() + market.closeRound()
            window.closed = true
        } else if now >= window.placeAt {
            return placeTraded(now: now)
        }
        self.market = market
        self.window = window
        return messages.map(ShardAction.sendTrade)
    }

    /// The market's placement of the round: home jobs here, guests on the leases this shard
    /// granted; home jobs on other racks' leases are `remote` (their owners run them).
    private mutating func placeTraded(now: Double) -> [ShardAction] {
        guard var market, let window else { return [] }
        self.window = nil
        roundPending = false
        lastRoundAt = now
        round += 1
        let outcome: ShardRoundOutcome
        do {
            outcome = try market.placeRound()
        } catch {
            self.market = market
            return [.log(.warning, "round \(round): market placement failed: \(error)")]
        }
        self.market = market
        marketRounds += 1
        marketPhases += market.phaseIndex
        var out: [ShardAction] = []
        let homeIDs = Dictionary(jobs.values.filter { !$0.guest }.map { ($0.seq, $0.id) }, uniquingKeysWith: { first, _ in first })
        let (assignments, spread) = Self.leasedParts(outcome.assignments, leases: Array(market.leases.values))
        var guestIDs = Set<String>()
        for a in assignments where homeIDs[a.jobID] == nil {
            let id = TradingWire.jobID(a.jobID)
            guard !finished.contains(id) else { continue }
            guestIDs.insert(id)
            guard jobs[id] == nil else { continue }
            guard let status = clusterJobs[id], let spec = status.spec else {
                out.append(.log(.warning, "lease for \(id), which the gateway does not list as unfinished: not started"))
                continue
            }
            jobs[id] = Job(
                id: id, seq: a.jobID, spec: spec, firstSeen: now, stepsDone: status.stepsDone,
                checkpointSteps: status.checkpointSteps, guest: true, owner: Self.owner(of: status))
            out.append(.log(.info, "guest \(id) of \(Self.owner(of: status)) runs here on a lease"))
        }
        out += takeOverHandedJobs(guestIDs, now: now)
        // Guests whose lease ended: stopped and forgotten (their home shard schedules them).
        for (id, job) in jobs.sorted(by: { $0.key < $1.key }) where job.guest && !guestIDs.contains(id) {
            out += forget(id, reason: "guest \(id): lease over", now: now)
        }
        let before = remote
        remote = Set(market.confirmedDeals.keys.compactMap { homeIDs[$0] })
        let active = jobs.values.filter { $0.runnable || $0.guest }.sorted { $0.seq < $1.seq }
        let spreadIDs = Dictionary(uniqueKeysWithValues: active.compactMap { job in spread[job.seq].map { (job.id, $0) } })
        out += apply(assignments, active: active, now: now, wasRemote: before, spread: spreadIDs)
        let c = tradingCounters
        out.append(.log(
            .info,
            "market round \(window.round): \(market.phaseIndex) phases; offers sent \(c.offersSent), received \(c.offersReceived), accepted \(c.accepts), rejected \(c.rejects) (totals); \(market.leases.count) leases held; guests here: [\(guestIDs.sorted().joined(separator: ", "))]; home jobs on other racks: [\(remote.sorted().joined(separator: ", "))]; spread over racks, parts here: [\(spreadIDs.keys.sorted().map { "\($0) \(jobs[$0]?.workers.count ?? 0)/\(spreadIDs[$0]!.workers)\(spreadIDs[$0]!.silent ? "" : " reporting")" }.joined(separator: ", "))]"))
        // Home jobs handed over with this round's commits: their owners schedule them from now on.
        for (seq, owner) in market.handedOver.sorted(by: { $0.key < $1.key }) {
            guard let id = homeIDs[seq], let job = jobs[id], !job.isPlaced, let to = shardID(ofParticipant: owner) else { continue }
            remove(job)
            handedOver[id] = (to, now)
            out.append(.log(.info, "\(id) handed over to \(to): it runs on that rack's lease alone, and \(to) schedules it from now on"))
        }
        return out
    }

    /// Guests whose buyer handed them over with this round's commit (``TradingShard/Lease/rehome``)
    /// become home jobs here: their lease ends, they keep their GPUs, and their next report names
    /// this shard, so the gateway gives them to it.
    private mutating func takeOverHandedJobs(_ guestIDs: Set<String>, now: Double) -> [ShardAction] {
        guard let leases = market?.leases.values.filter(\.rehome).sorted(by: { $0.id < $1.id }) else { return [] }
        var out: [ShardAction] = []
        for lease in leases {
            let id = TradingWire.jobID(lease.job)
            guard var job = jobs[id], job.guest, guestIDs.contains(id) else { continue }
            let from = job.owner
            job.guest = false
            job.owner = settings.shardID
            // Its fairness counts from its submission, as at its old home (not from the lease).
            if let submitted = clusterJobs[id]?.submittedAt, submitted > 0 { job.firstSeen = min(job.firstSeen, submitted) }
            job.runnable = planner.canRun(input(job, now: now))
            guard job.runnable else { continue }
            jobs[id] = job
            planner.addJob(job.seq)
            market?.takeOver(lease.id)
            handedOver[id] = nil
            takenOver[id] = (from, now)
            out.append(.log(.info, "\(id) taken over from \(from): it ran on this rack's lease alone; a home job here from now on"))
        }
        return out
    }

    /// The market's assignments with one per job (a job may hold leases on two groups of this
    /// rack), and the jobs whose leases here are part of a deal over several racks: planner id ->
    /// (the deal's GPUs, whether another owner reports the job).
    static func leasedParts(
        _ assignments: [RoundAssignment], leases: [TradingShard.Lease]
    ) -> ([RoundAssignment], [Int: SpreadPart]) {
        var merged: [RoundAssignment] = []
        var index: [Int: Int] = [:]
        for a in assignments {
            if let i = index[a.jobID], merged[i].typeIndex == a.typeIndex {
                merged[i].workers += a.workers
                merged[i].keepsPreviousWorkers = merged[i].keepsPreviousWorkers && a.keepsPreviousWorkers
            } else {
                index[a.jobID] = merged.count
                merged.append(a)
            }
        }
        var here: [Int: Int] = [:]
        var spread: [Int: SpreadPart] = [:]
        for lease in leases {
            here[lease.job, default: 0] += lease.units
            spread[lease.job] = SpreadPart(workers: lease.dealUnits, silent: lease.silent)
        }
        return (merged, spread.filter { $0.value.workers > here[$0.key]! })
    }

    /// This shard's part of a job spread over racks (see ``leasedParts(_:leases:)``).
    struct SpreadPart: Equatable {
        var workers: Int
        var silent: Bool
    }

    /// Executes a round's assignments (planner ids): stops first, then starts, and the
    /// transitions the gateway needs. `wasRemote`: home jobs that ran on leases last round.
    private mutating func apply(
        _ assignments: [RoundAssignment], active: [Job], now: Double, wasRemote: Set<String> = [],
        spread: [String: SpreadPart] = [:]
    ) -> [ShardAction] {
        var out: [ShardAction] = []
        let bySeq = Dictionary(uniqueKeysWithValues: active.map { ($0.seq, $0.id) })
        var next: [String: RoundAssignment] = [:]
        for a in assignments {
            guard let id = bySeq[a.jobID] else { continue }
            let racksUsed = Set(a.workers.map { planner.slots[$0].rackID })
            guard racksUsed.count == 1, liveRacks.contains(racksUsed.first!) else { continue }
            next[id] = a
        }
        // Stickiness: a placed job planned on other GPUs of the same type and count keeps its
        // own when no other job is planned on them (no needless checkpoint-restart; after an
        // adoption the planner does not know where the adopted workers run).
        var planned = Set(next.values.flatMap(\.workers))
        for job in runningJobs {
            guard var a = next[job.id], a.typeIndex == job.typeIndex, a.workers.count == job.workers.count,
                  Set(a.workers) != Set(job.workers) else { continue }
            let others = planned.subtracting(a.workers)
            guard others.isDisjoint(with: job.workers) else { continue }
            planned.subtract(a.workers)
            planned.formUnion(job.workers)
            a.workers = job.workers
            next[job.id] = a
        }
        // Stops first: every placed job whose GPUs change or that loses them (or whose spread
        // over racks changes: the whole job's speed changes).
        var stopped: [String] = []
        for job in runningJobs {
            if let a = next[job.id], a.typeIndex == job.typeIndex, Set(a.workers) == Set(job.workers),
               job.spreadWorkers == spread[job.id]?.workers ?? 0 {
                jobs[job.id]?.silent = spread[job.id]?.silent ?? false
                continue
            }
            if let stop = stopCommand(job) { out.append(stop) }
            var j = job
            j.typeIndex = nil
            j.workers = []
            jobs[job.id] = j
            stopped.append(job.id)
        }
        // Then starts.
        var started = Set<String>()
        for id in next.keys.sorted(by: { jobs[$0]!.seq < jobs[$1]!.seq }) {
            var job = jobs[id]!
            let a = next[id]!
            if job.isPlaced {
                // Kept its GPUs: a progress report, so the gateway's view (jobs, status) moves.
                out.append(transition(job, .running, at: now))
                continue
            }
            let slots = a.workers.map { planner.slots[$0] }
            guard let agent = agents[slots[0].rackID] else { continue }
            job.typeIndex = a.typeIndex
            job.workers = a.workers
            job.resumeAt = now + settings.restartSeconds
            job.lastReportAt = nil
            job.spreadWorkers = spread[id]?.workers ?? 0
            job.silent = spread[id]?.silent ?? false
            jobs[id] = job
            let command = WorkerCommand(
                commandID: newCommandID(), kind: .start, jobID: id, jobType: job.spec.jobType, gpuIDs: slots.map(\.id),
                workers: job.spec.workers, resumeFromSteps: job.checkpointSteps, totalSteps: job.spec.totalSteps,
                restartDelay: settings.restartSeconds, spreadWorkers: UInt32(job.spreadWorkers))
            out += sendStart(command, to: agent.address)
            var reason = stopped.contains(id) ? "moved" : job.guest ? "on a lease" : ""
            if job.spreadWorkers > 0 {
                reason += (reason.isEmpty ? "" : "; ") + "spread over racks: \(a.workers.count) of its \(job.spreadWorkers) GPUs here"
            }
            out.append(transition(job, .running, at: now, reason: reason))
            started.insert(id)
        }
        for id in stopped where !started.contains(id) && !remote.contains(id) && !(jobs[id]?.guest ?? true) {
            out.append(transition(jobs[id]!, .pending, at: now, reason: "preempted"))
        }
        // Home jobs whose lease elsewhere ended and that did not start here: back to pending.
        for id in wasRemote.subtracting(remote).sorted() where jobs[id].map({ !$0.isPlaced }) ?? false {
            out.append(transition(jobs[id]!, .pending, at: now, reason: "lease on another rack ended"))
        }
        out.append(.log(
            .info,
            "round \(round): \(active.count) jobs, \(next.count) placed (\(started.count) started, \(stopped.count - stopped.filter(started.contains).count) preempted)"))
        return out
    }

    private mutating func stopCommand(_ job: Job) -> ShardAction? {
        guard let w = job.workers.first, let agent = agents[planner.slots[w].rackID] else { return nil }
        if deferredStarts.removeValue(forKey: job.id) != nil {
            return nil  // its start never went out: nothing runs there
        }
        let command = WorkerCommand(commandID: newCommandID(), kind: .stop, jobID: job.id)
        stopsInFlight[job.id] = (command.commandID, agent.address)
        return .sendCommand(agentAddress: agent.address, command)
    }

    /// A start, unless the job is moving off another agent whose STOP is not acknowledged yet:
    /// then the start waits for that ack, which carries the checkpoint the stop took (the last
    /// heartbeat's is older: finding 2 of docs/chaos.md). Commands to one agent keep their
    /// order, so a move within one agent needs no wait (the agent resumes from its own checkpoint).
    private mutating func sendStart(_ command: WorkerCommand, to agentAddress: String) -> [ShardAction] {
        if let stop = stopsInFlight[command.jobID], stop.agentAddress != agentAddress {
            deferredStarts[command.jobID] = (agentAddress, command)
            return [.log(.debug, "\(command.jobID): start on \(agentAddress) waits for the stop on \(stop.agentAddress)")]
        }
        return [.sendCommand(agentAddress: agentAddress, command)]
    }

    /// A STOP was acknowledged (`ack`, with the checkpoint it took) or failed (nil): the
    /// checkpoint becomes the job's, and a start that waited for it goes out.
    private mutating func stopSettled(_ command: WorkerCommand, ack: CommandAck?, now: Double) -> [ShardAction] {
        if stopsInFlight[command.jobID]?.commandID == command.commandID { stopsInFlight[command.jobID] = nil }
        guard var job = jobs[command.jobID] else { return [] }
        var out: [ShardAction] = []
        if let ack, ack.checkpointSteps > 0 {
            job.checkpointSteps = max(job.checkpointSteps, ack.checkpointSteps)
            job.stepsDone = max(job.stepsDone, ack.stepsDone)
            jobs[job.id] = job
            if ack.stepsDone >= Double(job.spec.totalSteps), !job.silent {
                // It completed before the stop reached it.
                return complete(job, reportAt: now, agentAddress: nil)
            }
        }
        guard stopsInFlight[job.id] == nil, let deferred = deferredStarts.removeValue(forKey: job.id) else { return out }
        guard job.isPlaced, deferred.command.gpuIDs == job.workers.map({ planner.slots[$0].id }) else { return out }
        var start = deferred.command
        start.resumeFromSteps = job.checkpointSteps
        if ack == nil {
            out.append(.log(.warning, "\(job.id): the stop on its previous agent failed; starting it from its last known checkpoint \(job.checkpointSteps)"))
        }
        out.append(.sendCommand(agentAddress: deferred.agentAddress, start))
        return out
    }

    private mutating func commandAcknowledged(_ command: WorkerCommand, _ ack: CommandAck, now: Double) -> [ShardAction] {
        guard command.kind == .stop, ack.ok else { return [] }
        return stopSettled(command, ack: ack, now: now)
    }

    // MARK: Agents

    private mutating func agentReport(
        agentID: String, address: String, nodes: [NodeReport], progress: [JobProgress], at: Double, isRegister: Bool,
        now: Double
    ) -> [ShardAction] {
        let rackID = nodes.first?.rack ?? agents.values.first { $0.agentID == agentID }?.rackID ?? ""
        guard racks.contains(where: { $0.id == rackID }) else {
            return [.log(.debug, "report from \(agentID) for rack '\(rackID)', which \(settings.shardID) does not own")]
        }
        var out: [ShardAction] = []
        let known = agents[rackID]
        let link = AgentLink(
            agentID: agentID, address: address.isEmpty ? (known?.address ?? "") : address, rackID: rackID, lastSeen: now,
            nodes: nodes.isEmpty ? (known?.nodes ?? []) : nodes)
        agents[rackID] = link
        if isRegister || known == nil {
            out.append(.log(.info, "agent \(agentID) of rack \(rackID) registered from \(link.address) with \(progress.count) jobs"))
        }
        let reportAt = at > 0 ? at : now
        out += nodesFailed(nodes, at: reportAt, now: now)
        out += nodesRecovered(nodes, now: now)
        if isRegister {
            if awaitingAgent.removeValue(forKey: rackID) != nil {
                let held = jobs.values.filter { $0.heldFor == rackID }.map(\.id).sorted()
                let reported = Set(progress.map(\.jobID))
                for id in held {
                    jobs[id]?.heldFor = nil
                    // Not on the agent: it resumes from its checkpoint.
                    if !reported.contains(id), let cp = jobs[id]?.checkpointSteps { jobs[id]?.stepsDone = cp }
                }
                if !held.isEmpty {
                    out.append(.log(.info, "agent of rack \(rackID) registered: \(held.count) held jobs planned from its report (\(held.joined(separator: ", ")))"))
                }
            }
            var running: [String: [String]] = [:]
            for node in nodes { for gpu in node.gpus where !gpu.jobID.isEmpty { running[gpu.jobID, default: []].append(gpu.gpuID) } }
            for (id, gpuIDs) in running.sorted(by: { $0.key < $1.key }) {
                if var job = jobs[id] {
                    if !job.isPlaced {
                        place(&job, onGPUs: gpuIDs)
                        jobs[id] = job
                        out.append(.log(.info, "\(id) found running on \(gpuIDs.joined(separator: ",")) at registration"))
                    }
                } else if !finished.contains(id) {
                    orphans[id] = gpuIDs
                }
            }
            // Jobs placed on this rack that the (restarted) agent no longer has: their workers
            // died with it, so they go back to the queue from their last checkpoint.
            let reported = Set(progress.map(\.jobID)).union(running.keys)
            for (id, var job) in jobs.sorted(by: { $0.key < $1.key })
            where job.isPlaced && !reported.contains(id)
                && job.workers.contains(where: { planner.slots.indices.contains($0) && planner.slots[$0].rackID == rackID })
            {
                job.typeIndex = nil
                job.workers = []
                job.stepsDone = job.checkpointSteps
                jobs[id] = job
                out.append(transition(job, .pending, at: reportAt, reason: "worker lost: agent \(agentID) re-registered without it"))
            }
        }
        for p in progress {
            guard var job = jobs[p.jobID] else {
                if finished.contains(p.jobID) {
                    if p.workers == 0 {
                        // Final progress of a job we finished: let the agent forget it.
                        out.append(.sendCommand(agentAddress: link.address, WorkerCommand(commandID: newCommandID(), kind: .stop, jobID: p.jobID)))
                    }
                } else {
                    // Not listed here yet (e.g. a job of an adopted rack): kept for when it is.
                    if unclaimedProgress.count >= 10_000 { unclaimedProgress.removeAll() }
                    unclaimedProgress[p.jobID] = (p, rackID)
                }
                continue
            }
            // A silent part does not complete the job: the reporting part does (its progress may
            // differ by its start time). It stops when the job leaves the gateway's list or its
            // lease ends.
            let total = Double(job.spec.totalSteps)
            if p.stepsDone >= total, !job.silent {
                out += complete(job, reportAt: reportAt, agentAddress: link.address)
                continue
            }
            job.stepsDone = max(job.stepsDone, p.stepsDone)
            job.checkpointSteps = max(job.checkpointSteps, p.checkpointSteps)
            if p.workers > 0 {
                job.lastReportAt = reportAt
                job.rate = p.stepsPerSecond
            } else if job.isPlaced && isRegister {
                // The agent lost the worker (e.g. node failure or agent restart): back to the queue.
                job.typeIndex = nil
                job.workers = []
                out.append(transition(job, .pending, at: reportAt, reason: "worker lost"))
            }
            jobs[job.id] = job
        }
        return out
    }

    // MARK: Delegation

    /// The shard a job belongs to now: the shard its placement names (it runs or was delegated
    /// there), else its home shard.
    public static func owner(of status: JobStatus) -> String {
        if let shard = status.placement?.shardID, !shard.isEmpty { return shard }
        return status.homeShard
    }

    /// The first rack after this shard's own (config order, wrapping) that is not owned here and
    /// whose GPUs can run `job`.
    private func delegate(for job: Job, now: Double) -> String? {
        guard let own = clusterRacks.firstIndex(where: { $0.shardID == settings.shardID }) else { return nil }
        let order = clusterRacks[(own + 1)...] + clusterRacks[..<own]
        for rack in order where !racks.contains(where: { $0.id == rack.id }) {
            guard let candidate = try? Self.makeShardPlanner([rack], policy: policy, table: table, settings: settings) else { continue }
            if candidate.canRun(input(job, now: now)) { return rack.shardID }
        }
        return nil
    }

    // MARK: Adoption

    private mutating func adopt(_ rack: RackSpec, formerShard: String, now: Double) -> [ShardAction] {
        var out = leaveMarket(now: now, reason: "adopting rack \(rack.id); trading stays off until it is handed back (the market's participants are the config's racks)")
        if !homeShards.contains(formerShard) { homeShards.append(formerShard) }
        guard !racks.contains(where: { $0.id == rack.id }) else { return out }
        racks.append(rack)
        if let problem = rebuildPlanner(now: now) {
            racks.removeLast()
            return [.log(.warning, "cannot adopt rack \(rack.id): \(problem)")]
        }
        adopted[rack.id] = formerShard
        // Its jobs may still run there, or have run further than the gateway knows (finding 1 of
        // docs/chaos.md): they wait for the rack's agent (or `agentWaitSeconds`).
        awaitingAgent[rack.id] = now + (settings.agentWaitSeconds ?? 4 * settings.roundSeconds)
        out.append(.log(.info, "adopted rack \(rack.id) and the home jobs of \(formerShard); racks now \(racks.map(\.id).joined(separator: ", "))"))
        return out
    }

    /// The market closes when the shard's pool changes (the market's GPU groups come from the
    /// cluster config): guests are stopped (their leases end; their home shards take them
    /// back), home jobs on other racks' leases go back to the queue here, and a home job's own
    /// part of a spread deal stops. `rejoinMarket` re-opens it on the GPUs left after a node
    /// failure or recovery, and when adopted racks are handed back.
    private mutating func leaveMarket(now: Double, reason: String) -> [ShardAction] {
        guard let closing = market else { return [] }
        closedCounters = closedCounters + closing.counters
        market = nil
        var out: [ShardAction] = [.log(.warning, "market closed: \(reason)")]
        if window != nil {
            // The round in progress waited for the market: plan it at the next tick, without one.
            // (Left pending, it held up every later round: an adopting shard stopped scheduling.)
            window = nil
            roundPending = false
            nextRoundAt = now
            out.append(.log(.info, "round \(round + 1) is planned without the market"))
        }
        for (id, job) in jobs.sorted(by: { $0.key < $1.key }) where job.guest {
            out += forget(id, reason: "guest \(id): its lease ends with the market", now: now)
        }
        // A home job's own part of a job spread over racks: the other parts end with their leases.
        for job in runningJobs where job.spreadWorkers > 0 {
            if let stop = stopCommand(job) { out += [.log(.info, "stopping \(job.id): its spread over racks ends with the market"), stop] }
            jobs[job.id]?.typeIndex = nil
            jobs[job.id]?.workers = []
        }
        for id in remote.sorted() where jobs[id] != nil {
            out.append(transition(jobs[id]!, .pending, at: now, reason: "lease on another rack given up: \(reason)"))
        }
        remote = []
        return out
    }

    /// Re-opens the market (after a node failure or recovery, or a hand-back), on the GPUs left: a
    /// fresh `TradingShard` (no leases, no deals; `leaveMarket` ended them) over the rebuilt
    /// planner, in the same layout. The others still see this rack's groups at their configured
    /// size; an offer for more GPUs than are left is refused as invalid. While a whole group is
    /// gone (its last node failed) the local groups do not line up with the layout, and trading
    /// stays off until a node of it recovers. Not while the shard holds adopted racks.
    private mutating func rejoinMarket(now: Double) -> [ShardAction] {
        guard let setup = marketSetup, adopted.isEmpty, let local = planner.marketPlanner(valuationPool: setup.valuationPool)
        else { return [] }
        let configured = setup.layout.ids[setup.own].map { setup.layout.groups[$0] }
        guard local.groups.count == configured.count,
            zip(local.groups, configured).allSatisfy({ $0.typeIndex == $1.typeIndex && $0.serverSize == $1.serverSize })
        else {
            return [.log(.warning, "trading stays off: a GPU group of this rack lost its last node")]
        }
        market = TradingShard(id: setup.own, layout: setup.layout, planner: local, parameters: setup.parameters)
        let gpus = local.groups.reduce(0) { $0 + $1.capacity }
        var out: [ShardAction] = [.log(.info, "trading again from the next round, on \(gpus) GPUs")]
        // Home jobs only a spread deal can run (a planner rebuilt without a market left them out).
        for job in jobs.values.sorted(by: { $0.seq < $1.seq }) where !job.runnable && !job.guest && runsAcrossRacks(job, now: now) {
            jobs[job.id]?.runnable = true
            planner.addJob(job.seq)
            out.append(.log(.info, "\(job.id) can run across racks again, by trading"))
        }
        return out
    }

    /// The shard of market participant `index` (a rack's index in the config), nil for an index
    /// no rack has (from a malformed message).
    private func shardID(ofParticipant index: Int) -> String? {
        clusterRacks.indices.contains(index) ? clusterRacks[index].shardID : nil
    }

    /// Whether a job this rack cannot run alone can run across racks by a spread deal (the
    /// market is open and the cluster's GPUs can run it).
    private func runsAcrossRacks(_ job: Job, now: Double) -> Bool {
        market != nil && (clusterPlanner?.canRun(input(job, now: now)) ?? false)
    }

    /// Hands back the racks adopted from `shard`, which is alive again (finding 4 of
    /// docs/chaos.md). Jobs running there go with the rack: a running transition names `shard` in
    /// their placement, so the gateway lists them for it, and their workers keep running (its
    /// agent re-registers with it and reports them). Home jobs of `shard` this shard never started
    /// are forgotten here. A job that was to start there is kept, back in this shard's queue.
    /// From now on this shard refuses the rack's agent, which goes back to its own shard.
    private mutating func releaseRacks(of shard: String, now: Double) -> [ShardAction] {
        let released = Set(adopted.filter { $0.value == shard }.keys)
        guard !released.isEmpty else { return [] }
        var out: [ShardAction] = []
        for job in runningJobs where released.contains(planner.slots[job.workers[0]].rackID) {
            if deferredStarts[job.id] != nil {
                var j = job
                j.typeIndex = nil
                j.workers = []
                jobs[j.id] = j
                deferredStarts[j.id] = nil
                out.append(transition(j, .pending, at: now, reason: "its rack went back to \(shard) before it started"))
                continue
            }
            out.append(.reportTransition(JobTransition(
                jobID: job.id, state: .running, at: now, stepsDone: job.stepsDone, checkpointSteps: job.checkpointSteps,
                placement: Placement(
                    gpuType: planner.pool.types[job.typeIndex!], gpuIDs: job.workers.map { planner.slots[$0].id }, shardID: shard),
                reason: "handed back to \(shard) with its rack", transitionID: newTransitionID())))
            remove(job)
        }
        for job in jobs.values.sorted(by: { $0.seq < $1.seq })
        where !job.isPlaced && ((job.owner == shard && !placedHere.contains(job.id)) || job.heldFor.map(released.contains) == true) {
            remove(job)
        }
        let releasedGPUs = Set(racks.filter { released.contains($0.id) }.flatMap(\.nodes).flatMap { $0.gpuIDs.map(\.id) })
        failedNodes.subtract(racks.filter { released.contains($0.id) }.flatMap(\.nodes).map(\.id))
        orphans = orphans.filter { $0.value.allSatisfy { !releasedGPUs.contains($0) } }
        racks.removeAll { released.contains($0.id) }
        for id in released {
            adopted[id] = nil
            agents[id] = nil
            awaitingAgent[id] = nil
        }
        homeShards.removeAll { $0 == shard }
        if let problem = rebuildPlanner(now: now) { out.append(.log(.warning, "planner rebuild failed: \(problem)")) }
        out.append(.log(.info, "handed rack\(released.count == 1 ? "" : "s") \(released.sorted().joined(separator: ", ")) of \(shard) back; racks now \(racks.map(\.id).joined(separator: ", "))"))
        if adopted.isEmpty { out += rejoinMarket(now: now) }
        return out
    }

    /// The rack whose agent a newly listed job must wait for, if any: the rack of the GPUs the
    /// gateway places it on, or the adopted rack of the shard it belongs to, while that rack's
    /// agent has not registered here.
    private func rackToAwait(_ status: JobStatus, owner: String) -> String? {
        if let gpu = status.placement?.gpuIDs.first,
           let rack = racks.first(where: { $0.nodes.contains { $0.gpuIDs.contains { $0.id == gpu } } }),
           awaitingAgent[rack.id] != nil
        {
            return rack.id
        }
        if owner != settings.shardID, let rack = adopted.first(where: { $0.value == owner })?.key, awaitingAgent[rack] != nil {
            return rack
        }
        return nil
    }

    /// Racks whose agent did not register in time: their held jobs are planned, from their checkpoints.
    private mutating func expireAgentWaits(now: Double) -> [ShardAction] {
        var out: [ShardAction] = []
        for (rack, deadline) in awaitingAgent.sorted(by: { $0.key < $1.key }) where now >= deadline {
            awaitingAgent[rack] = nil
            let held = jobs.values.filter { $0.heldFor == rack }.map(\.id).sorted()
            for id in held {
                jobs[id]?.heldFor = nil
                if let cp = jobs[id]?.checkpointSteps { jobs[id]?.stepsDone = cp }
            }
            if !held.isEmpty {
                out.append(.log(.warning, "no agent of rack \(rack) registered in time: \(held.count) held jobs are planned from their checkpoints"))
            }
        }
        return out
    }

    /// Rebuilds the planner over the owned racks minus the failed nodes; placements follow their
    /// GPU ids (a job on a GPU that left the pool is unplaced). Returns a problem, or nil.
    private mutating func rebuildPlanner(now: Double) -> String? {
        let oldSlots = planner.slots
        let rebuilt: ShardPlanner
        do {
            rebuilt = try Self.makeShardPlanner(
                racks, excluding: failedNodes, allTypes: marketSetup?.allTypes ?? [], policy: policy, table: table, settings: settings)
        } catch {
            return "\(error)"
        }
        planner = rebuilt
        let index = Dictionary(uniqueKeysWithValues: planner.slots.enumerated().map { ($1.id, $0) })
        for job in jobs.values.sorted(by: { $0.seq < $1.seq }) {
            var j = job
            if job.isPlaced {
                let mapped = job.workers.compactMap { index[oldSlots[$0].id] }
                let type = planner.pool.types.firstIndex(of: oldSlots[job.workers[0]].type)
                if mapped.count == job.workers.count, let type {
                    j.workers = mapped
                    j.typeIndex = type
                } else {
                    j.typeIndex = nil
                    j.workers = []
                }
            }
            j.runnable = planner.canRun(input(j, now: now)) || (!j.guest && runsAcrossRacks(j, now: now))
            if j.runnable { planner.addJob(j.seq) }
            jobs[j.id] = j
        }
        return nil
    }

    /// Nodes an agent reports failed leave the pool; their jobs go back to the queue and resume
    /// from their last checkpoint on other GPUs.
    private mutating func nodesFailed(_ nodes: [NodeReport], at: Double, now: Double) -> [ShardAction] {
        let newlyFailed = nodes.filter { $0.health == .failed && !failedNodes.contains($0.nodeID) }.map(\.nodeID)
        guard !newlyFailed.isEmpty else { return [] }
        var out: [ShardAction] = [.log(.warning, "node\(newlyFailed.count == 1 ? "" : "s") \(newlyFailed.joined(separator: ", ")) failed: out of the pool")]
        let wasTrading = market != nil
        out += leaveMarket(now: now, reason: "its pool changed (node failure)")
        failedNodes.formUnion(newlyFailed)
        for job in runningJobs where job.workers.contains(where: { newlyFailed.contains(planner.slots[$0].nodeID) }) {
            var j = job
            j.typeIndex = nil
            j.workers = []
            j.stepsDone = j.checkpointSteps
            jobs[j.id] = j
            out.append(transition(j, .pending, at: at, reason: "node failed; back to the queue from its checkpoint"))
        }
        if let problem = rebuildPlanner(now: now) { out.append(.log(.warning, "planner rebuild failed: \(problem)")) }
        if wasTrading { out += rejoinMarket(now: now) }
        return out
    }

    /// Nodes an agent reports healthy again go back into the pool; the market re-opens on it (a
    /// group whose last node had failed lines up with the layout again).
    private mutating func nodesRecovered(_ nodes: [NodeReport], now: Double) -> [ShardAction] {
        let recovered = nodes.filter { $0.health == .healthy && failedNodes.contains($0.nodeID) }.map(\.nodeID)
        guard !recovered.isEmpty else { return [] }
        var out: [ShardAction] = [.log(.info, "node\(recovered.count == 1 ? "" : "s") \(recovered.joined(separator: ", ")) recovered: back in the pool")]
        out += leaveMarket(now: now, reason: "its pool changed (node recovery)")
        failedNodes.subtract(recovered)
        if let problem = rebuildPlanner(now: now) { out.append(.log(.warning, "planner rebuild failed: \(problem)")) }
        out += rejoinMarket(now: now)
        return out
    }

    /// The job's last step is done (seen at `reportAt`): completed at its estimated finish time
    /// (last report + remaining steps / rate), the agent told to forget it, the job removed.
    private mutating func complete(_ job: Job, reportAt: Double, agentAddress: String?) -> [ShardAction] {
        var job = job
        let total = Double(job.spec.totalSteps)
        var finishAt = reportAt
        if let last = job.lastReportAt, job.rate > 0 {
            let start = max(last, job.resumeAt)
            finishAt = min(reportAt, max(last, start + max(0, total - job.stepsDone) / job.rate))
        }
        job.stepsDone = total
        job.checkpointSteps = total
        jobs[job.id] = job
        var out = [transition(job, .completed, at: finishAt)]
        if let agentAddress {
            out.append(.sendCommand(agentAddress: agentAddress, WorkerCommand(commandID: newCommandID(), kind: .stop, jobID: job.id)))
        }
        if job.isPlaced, !job.guest, let last = lastRoundAt {
            planner.recordExecution(job: job.seq, typeIndex: job.typeIndex!, seconds: max(0, finishAt - last))
        }
        remove(job)
        finished.insert(job.id)
        completedCount += 1
        out.append(.log(.info, "\(job.id) completed at \(finishAt)"))
        return out
    }

    /// Records that `job` runs on `gpuIDs` (all of one type), as an agent reported.
    private func place(_ job: inout Job, onGPUs gpuIDs: [String]) {
        let indices = gpuIDs.compactMap { id in planner.slots.firstIndex { $0.id == id } }
        guard indices.count == gpuIDs.count, let first = indices.first,
              let t = planner.pool.types.firstIndex(of: planner.slots[first].type) else { return }
        job.typeIndex = t
        job.workers = indices
        job.lastReportAt = nil
        job.heldFor = nil  // found running on a registered agent: nothing to wait for
    }

    // MARK: Helpers

    /// A planner over `racks` (minus `excludedNodes`) with the shard's policy, round, restart
    /// delay and network; `allTypes` fixes the type order (trading shards: the cluster's types).
    private static func makeShardPlanner(
        _ racks: [RackSpec], excluding excludedNodes: Set<String> = [], allTypes: [String] = [], policy: String,
        table: ThroughputTable, settings: ShardSettings
    ) throws -> ShardPlanner {
        try ShardPlanner(
            policy: policy, racks: racks, table: table, roundSeconds: settings.roundSeconds,
            restartSeconds: settings.restartSeconds, excludedNodes: excludedNodes, allTypes: allTypes, network: settings.network)
    }

    /// A job's planner id: its gateway number ("j-000042" -> 42), which every shard of the
    /// market agrees on; ids of another shape count on from 2^40.
    private mutating func newSeq(_ jobID: String) -> Int {
        if let n = TradingWire.number(of: jobID), !jobs.values.contains(where: { $0.seq == n }) { return n }
        defer { nextSeq += 1 }
        return (1 << 40) + nextSeq
    }

    private mutating func newCommandID() -> UInt64 {
        defer { nextCommandID += 1 }
        return nextCommandID
    }

    private mutating func newTransitionID() -> UInt64 {
        defer { nextTransitionID += 1 }
        return nextTransitionID
    }

    /// The report of a job's transition to the gateway. A silent part of a spread job (another
    /// shard reports the job) reports only its GPUs while it runs and its end
    /// (``JobTransition/spreadPart``), so the job's placement at the gateway lists all its GPUs.
    private mutating func transition(_ job: Job, _ state: JobState, at: Double, reason: String = "") -> ShardAction {
        defer { nextTransitionID += 1 }
        var placement: Placement?
        if state == .running, let t = job.typeIndex {
            placement = Placement(
                gpuType: planner.pool.types[t], gpuIDs: job.workers.map { planner.slots[$0].id },
                shardID: job.guest && !job.silent ? job.owner : settings.shardID)
            // The gateway gives a home job to this shard from now on; a guest stays its home's.
            if !job.guest && !job.silent { placedHere.insert(job.id) }
        }
        return .reportTransition(JobTransition(
            jobID: job.id, state: state, at: at, stepsDone: job.stepsDone, checkpointSteps: job.checkpointSteps,
            placement: placement, reason: reason, transitionID: nextTransitionID, spreadPart: job.silent))
    }
}
