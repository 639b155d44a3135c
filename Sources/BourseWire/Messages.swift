// Swift value types for every message of proto/bourse.proto except Envelope (Envelope.swift).
//
// Conventions (see also Envelope):
// - proto field `foo_bar_id` -> `fooBarID`; every field defaults to its proto3 default.
// - Singular sub-message fields are Optionals: proto3 tracks their presence, and `nil` means
//   "not sent" (e.g. `JobStatus.placement == nil`: not placed). An empty-but-present message
//   (`Placement()`) is kept distinct from `nil` through a round trip.
// - Repeated fields are arrays; enums are open (`.unrecognized(Int32)`, see WireEnum).

// MARK: - jobs

/// proto `JobSpec`. Times in cluster seconds.
public struct JobSpec: Sendable, Hashable {
    public var jobType: String
    public var totalSteps: UInt64
    public var workers: UInt32
    public var minWorkers: UInt32
    public var maxWorkers: UInt32
    public var tenant: String
    public var weight: Double
    public var arrivalTime: Double
    public var slo: Double
    public var name: String

    public init(
        jobType: String = "", totalSteps: UInt64 = 0, workers: UInt32 = 0, minWorkers: UInt32 = 0,
        maxWorkers: UInt32 = 0, tenant: String = "", weight: Double = 0, arrivalTime: Double = 0,
        slo: Double = 0, name: String = ""
    ) {
        self.jobType = jobType
        self.totalSteps = totalSteps
        self.workers = workers
        self.minWorkers = minWorkers
        self.maxWorkers = maxWorkers
        self.tenant = tenant
        self.weight = weight
        self.arrivalTime = arrivalTime
        self.slo = slo
        self.name = name
    }
}

/// proto `SubmitJob`.
public struct SubmitJob: Sendable, Hashable {
    public var spec: JobSpec?
    public var idempotencyKey: String
    public var tenantToken: String

    public init(spec: JobSpec? = nil, idempotencyKey: String = "", tenantToken: String = "") {
        self.spec = spec
        self.idempotencyKey = idempotencyKey
        self.tenantToken = tenantToken
    }
}

/// proto `SubmitAck`.
public struct SubmitAck: Sendable, Hashable {
    public var jobID: String
    public var homeShard: String

    public init(jobID: String = "", homeShard: String = "") {
        self.jobID = jobID
        self.homeShard = homeShard
    }
}

/// proto `JobStatusRequest`.
public struct JobStatusRequest: Sendable, Hashable {
    public var jobID: String
    public var tenantToken: String

    public init(jobID: String = "", tenantToken: String = "") {
        self.jobID = jobID
        self.tenantToken = tenantToken
    }
}

/// proto `Placement`.
public struct Placement: Sendable, Hashable {
    public var gpuType: String
    public var gpuIDs: [String]
    public var shardID: String

    public init(gpuType: String = "", gpuIDs: [String] = [], shardID: String = "") {
        self.gpuType = gpuType
        self.gpuIDs = gpuIDs
        self.shardID = shardID
    }
}

/// proto `JobStatus`.
public struct JobStatus: Sendable, Hashable {
    public var jobID: String
    public var spec: JobSpec?
    public var state: JobState
    public var stepsDone: Double
    public var checkpointSteps: Double
    public var placement: Placement?
    public var submittedAt: Double
    /// First start; 0 = never.
    public var startedAt: Double
    /// 0 = not finished.
    public var finishedAt: Double
    public var reason: String
    public var restarts: UInt32
    public var homeShard: String

    public init(
        jobID: String = "", spec: JobSpec? = nil, state: JobState = .unspecified, stepsDone: Double = 0,
        checkpointSteps: Double = 0, placement: Placement? = nil, submittedAt: Double = 0,
        startedAt: Double = 0, finishedAt: Double = 0, reason: String = "", restarts: UInt32 = 0,
        homeShard: String = ""
    ) {
        self.jobID = jobID
        self.spec = spec
        self.state = state
        self.stepsDone = stepsDone
        self.checkpointSteps = checkpointSteps
        self.placement = placement
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.reason = reason
        self.restarts = restarts
        self.homeShard = homeShard
    }
}

/// proto `ListJobsRequest`.
public struct ListJobsRequest: Sendable, Hashable {
    public var tenantToken: String
    /// Empty = all states.
    public var states: [JobState]

    public init(tenantToken: String = "", states: [JobState] = []) {
        self.tenantToken = tenantToken
        self.states = states
    }
}

/// proto `ListJobsReply`.
public struct ListJobsReply: Sendable, Hashable {
    public var jobs: [JobStatus]

    public init(jobs: [JobStatus] = []) {
        self.jobs = jobs
    }
}

/// proto `CancelJob`.
public struct CancelJob: Sendable, Hashable {
    public var jobID: String
    public var tenantToken: String

    public init(jobID: String = "", tenantToken: String = "") {
        self.jobID = jobID
        self.tenantToken = tenantToken
    }
}

/// proto `CancelAck`.
public struct CancelAck: Sendable, Hashable {
    public var jobID: String
    public var state: JobState

    public init(jobID: String = "", state: JobState = .unspecified) {
        self.jobID = jobID
        self.state = state
    }
}

/// proto `JobTransition` (shard -> gateway).
public struct JobTransition: Sendable, Hashable {
    public var jobID: String
    public var state: JobState
    public var at: Double
    public var stepsDone: Double
    public var checkpointSteps: Double
    public var placement: Placement?
    public var reason: String
    /// Per shard, for idempotent application at the gateway.
    public var transitionID: UInt64
    /// One part of a job spread over racks, from a shard that runs a part but does not report the
    /// job: that part's GPUs (`placement`, state running) or its end (any other state). Not a
    /// change of the job's state.
    public var spreadPart: Bool

    public init(
        jobID: String = "", state: JobState = .unspecified, at: Double = 0, stepsDone: Double = 0,
        checkpointSteps: Double = 0, placement: Placement? = nil, reason: String = "",
        transitionID: UInt64 = 0, spreadPart: Bool = false
    ) {
        self.jobID = jobID
        self.state = state
        self.at = at
        self.stepsDone = stepsDone
        self.checkpointSteps = checkpointSteps
        self.placement = placement
        self.reason = reason
        self.transitionID = transitionID
        self.spreadPart = spreadPart
    }
}

// MARK: - agents and nodes

/// proto `Gpu`: one GPU as reported by an agent.
public struct GPUReport: Sendable, Hashable {
    public var gpuID: String
    public var gpuType: String
    public var healthy: Bool
    /// Empty = idle.
    public var jobID: String

    public init(gpuID: String = "", gpuType: String = "", healthy: Bool = false, jobID: String = "") {
        self.gpuID = gpuID
        self.gpuType = gpuType
        self.healthy = healthy
        self.jobID = jobID
    }
}

/// proto `JobProgress`.
public struct JobProgress: Sendable, Hashable {
    public var jobID: String
    public var stepsDone: Double
    public var checkpointSteps: Double
    public var stepsPerSecond: Double
    public var workers: UInt32
    public var gpuType: String

    public init(
        jobID: String = "", stepsDone: Double = 0, checkpointSteps: Double = 0, stepsPerSecond: Double = 0,
        workers: UInt32 = 0, gpuType: String = ""
    ) {
        self.jobID = jobID
        self.stepsDone = stepsDone
        self.checkpointSteps = checkpointSteps
        self.stepsPerSecond = stepsPerSecond
        self.workers = workers
        self.gpuType = gpuType
    }
}

/// proto `NodeReport`.
public struct NodeReport: Sendable, Hashable {
    public var nodeID: String
    public var rack: String
    public var health: NodeHealth
    public var gpus: [GPUReport]

    public init(nodeID: String = "", rack: String = "", health: NodeHealth = .unspecified, gpus: [GPUReport] = []) {
        self.nodeID = nodeID
        self.rack = rack
        self.health = health
        self.gpus = gpus
    }
}

/// proto `AgentRegister`.
public struct AgentRegister: Sendable, Hashable {
    public var agentID: String
    /// Where the agent listens for commands.
    public var address: String
    public var nodes: [NodeReport]
    /// Workers still running (re-registration after shard failover).
    public var jobs: [JobProgress]

    public init(agentID: String = "", address: String = "", nodes: [NodeReport] = [], jobs: [JobProgress] = []) {
        self.agentID = agentID
        self.address = address
        self.nodes = nodes
        self.jobs = jobs
    }
}

/// proto `AgentHeartbeat`.
public struct AgentHeartbeat: Sendable, Hashable {
    public var agentID: String
    public var at: Double
    public var nodes: [NodeReport]
    public var jobs: [JobProgress]

    public init(agentID: String = "", at: Double = 0, nodes: [NodeReport] = [], jobs: [JobProgress] = []) {
        self.agentID = agentID
        self.at = at
        self.nodes = nodes
        self.jobs = jobs
    }
}

/// proto `WorkerCommand`.
public struct WorkerCommand: Sendable, Hashable {
    public var commandID: UInt64
    public var kind: WorkerCommandKind
    public var jobID: String
    public var jobType: String
    public var gpuIDs: [String]
    public var workers: UInt32
    public var resumeFromSteps: Double
    public var totalSteps: UInt64
    /// Seconds of checkpoint-restart before progress resumes.
    public var restartDelay: Double
    /// A job spread over racks: the workers of the whole job, of which this agent runs
    /// `gpuIDs` (0 = all of them run here).
    public var spreadWorkers: UInt32

    public init(
        commandID: UInt64 = 0, kind: WorkerCommandKind = .unspecified, jobID: String = "", jobType: String = "",
        gpuIDs: [String] = [], workers: UInt32 = 0, resumeFromSteps: Double = 0, totalSteps: UInt64 = 0,
        restartDelay: Double = 0, spreadWorkers: UInt32 = 0
    ) {
        self.commandID = commandID
        self.kind = kind
        self.jobID = jobID
        self.jobType = jobType
        self.gpuIDs = gpuIDs
        self.workers = workers
        self.resumeFromSteps = resumeFromSteps
        self.totalSteps = totalSteps
        self.restartDelay = restartDelay
        self.spreadWorkers = spreadWorkers
    }
}

/// proto `CommandAck`.
public struct CommandAck: Sendable, Hashable {
    public var commandID: UInt64
    public var ok: Bool
    public var error: String
    /// For a STOP: the job's steps when its worker stopped, and the checkpoint the stop took.
    public var stepsDone: Double
    public var checkpointSteps: Double

    public init(commandID: UInt64 = 0, ok: Bool = false, error: String = "", stepsDone: Double = 0, checkpointSteps: Double = 0) {
        self.commandID = commandID
        self.ok = ok
        self.error = error
        self.stepsDone = stepsDone
        self.checkpointSteps = checkpointSteps
    }
}

// MARK: - SWIM membership

/// proto `MemberUpdate`.
public struct MemberUpdate: Sendable, Hashable {
    public var memberID: String
    public var address: String
    public var status: MemberStatus
    public var incarnation: UInt64
    public var role: MemberRole

    public init(
        memberID: String = "", address: String = "", status: MemberStatus = .unspecified, incarnation: UInt64 = 0,
        role: MemberRole = .unspecified
    ) {
        self.memberID = memberID
        self.address = address
        self.status = status
        self.incarnation = incarnation
        self.role = role
    }
}

/// proto `AskPrice`.
public struct AskPrice: Sendable, Hashable {
    public var gpuType: String
    /// Marginal value of the cheapest held or idle GPU of this type.
    public var ask: Double
    public var freeGpus: UInt32

    public init(gpuType: String = "", ask: Double = 0, freeGpus: UInt32 = 0) {
        self.gpuType = gpuType
        self.ask = ask
        self.freeGpus = freeGpus
    }
}

/// proto `ShardDigest`.
public struct ShardDigest: Sendable, Hashable {
    public var shardID: String
    /// Racks it owns (its own plus adopted).
    public var racks: [String]
    public var asks: [AskPrice]
    public var queuedJobs: UInt32
    public var round: UInt64
    /// Newer digests replace older ones.
    public var version: UInt64
    /// Trading: the ask of each of the shard's GPU groups.
    public var marketAsks: [GroupAsk]
    /// Trading: what its market did since the shard started (nil: it does not trade).
    public var trading: TradingTotals?

    public init(
        shardID: String = "", racks: [String] = [], asks: [AskPrice] = [], queuedJobs: UInt32 = 0,
        round: UInt64 = 0, version: UInt64 = 0, marketAsks: [GroupAsk] = [], trading: TradingTotals? = nil
    ) {
        self.shardID = shardID
        self.racks = racks
        self.asks = asks
        self.queuedJobs = queuedJobs
        self.round = round
        self.version = version
        self.marketAsks = marketAsks
        self.trading = trading
    }
}

/// proto `TradingTotals`: a shard's trading counters since it started.
public struct TradingTotals: Sendable, Hashable {
    public var rounds: UInt64 = 0
    public var phases: UInt64 = 0
    public var offersSent: UInt64 = 0
    public var offersReceived: UInt64 = 0
    public var accepts: UInt64 = 0
    public var rejects: UInt64 = 0
    public var leasesGranted: UInt64 = 0
    public var leasesEnded: UInt64 = 0
    public var messagesSent: UInt64 = 0
    public var leasesHeld: UInt32 = 0
    public var guests: UInt32 = 0

    public init() {}
}

/// proto `GroupAsk`: what a shard asks for GPUs of one of its groups (market group index): a
/// price per GPU, and per number of GPUs taken (`units[i]`) the value its matching loses (`costs[i]`).
public struct GroupAsk: Sendable, Hashable {
    public var group: UInt32
    public var price: Double
    public var units: [UInt32]
    public var costs: [Double]

    public init(group: UInt32 = 0, price: Double = 0, units: [UInt32] = [], costs: [Double] = []) {
        self.group = group
        self.price = price
        self.units = units
        self.costs = costs
    }
}

/// proto `Ping`.
public struct Ping: Sendable, Hashable {
    public var probeID: UInt64
    public var updates: [MemberUpdate]
    public var digests: [ShardDigest]

    public init(probeID: UInt64 = 0, updates: [MemberUpdate] = [], digests: [ShardDigest] = []) {
        self.probeID = probeID
        self.updates = updates
        self.digests = digests
    }
}

/// proto `PingReq`.
public struct PingReq: Sendable, Hashable {
    public var probeID: UInt64
    public var targetID: String
    public var targetAddress: String
    public var updates: [MemberUpdate]
    public var digests: [ShardDigest]

    public init(
        probeID: UInt64 = 0, targetID: String = "", targetAddress: String = "", updates: [MemberUpdate] = [],
        digests: [ShardDigest] = []
    ) {
        self.probeID = probeID
        self.targetID = targetID
        self.targetAddress = targetAddress
        self.updates = updates
        self.digests = digests
    }
}

/// proto `Ack`.
public struct Ack: Sendable, Hashable {
    public var probeID: UInt64
    /// The member that answered the probe (differs from the sender for ping-req).
    public var targetID: String
    public var updates: [MemberUpdate]
    public var digests: [ShardDigest]

    public init(probeID: UInt64 = 0, targetID: String = "", updates: [MemberUpdate] = [], digests: [ShardDigest] = []) {
        self.probeID = probeID
        self.targetID = targetID
        self.updates = updates
        self.digests = digests
    }
}

// MARK: - trading

/// proto `TradeOffer`: a bid for `gpus` GPUs of the owner's group `group` (or, with
/// `renewingLease`, to keep that lease another round). Participants are rack indices.
public struct TradeOffer: Sendable, Hashable {
    public var offerID: UInt64
    public var buyerShard: String
    public var jobID: String
    public var gpuType: String
    public var gpus: UInt32
    public var bid: Double
    public var round: UInt64
    public var leaseSeconds: Double
    public var buyer: UInt32
    public var owner: UInt32
    public var group: UInt32
    public var renewingLease: String

    public init(
        offerID: UInt64 = 0, buyerShard: String = "", jobID: String = "", gpuType: String = "", gpus: UInt32 = 0,
        bid: Double = 0, round: UInt64 = 0, leaseSeconds: Double = 0, buyer: UInt32 = 0, owner: UInt32 = 0,
        group: UInt32 = 0, renewingLease: String = ""
    ) {
        self.offerID = offerID
        self.buyerShard = buyerShard
        self.jobID = jobID
        self.gpuType = gpuType
        self.gpus = gpus
        self.bid = bid
        self.round = round
        self.leaseSeconds = leaseSeconds
        self.buyer = buyer
        self.owner = owner
        self.group = group
        self.renewingLease = renewingLease
    }
}

/// proto `TradeAccept`.
public struct TradeAccept: Sendable, Hashable {
    public var offerID: UInt64
    public var leaseID: String
    public var gpuIDs: [String]
    public var expiresAt: Double
    public var price: Double
    public var owner: UInt32
    public var buyer: UInt32
    public var jobID: String
    public var group: UInt32
    public var units: UInt32

    public init(
        offerID: UInt64 = 0, leaseID: String = "", gpuIDs: [String] = [], expiresAt: Double = 0, price: Double = 0,
        owner: UInt32 = 0, buyer: UInt32 = 0, jobID: String = "", group: UInt32 = 0, units: UInt32 = 0
    ) {
        self.offerID = offerID
        self.leaseID = leaseID
        self.gpuIDs = gpuIDs
        self.expiresAt = expiresAt
        self.price = price
        self.owner = owner
        self.buyer = buyer
        self.jobID = jobID
        self.group = group
        self.units = units
    }
}

/// proto `TradeReject`.
public struct TradeReject: Sendable, Hashable {
    public var offerID: UInt64
    /// The owner's current ask: the next bid must beat it.
    public var ask: Double
    public var reason: String
    public var owner: UInt32
    public var buyer: UInt32
    public var jobID: String
    public var group: UInt32

    public init(
        offerID: UInt64 = 0, ask: Double = 0, reason: String = "", owner: UInt32 = 0, buyer: UInt32 = 0, jobID: String = "",
        group: UInt32 = 0
    ) {
        self.offerID = offerID
        self.ask = ask
        self.reason = reason
        self.owner = owner
        self.buyer = buyer
        self.jobID = jobID
        self.group = group
    }
}

/// proto `LeaseCommit`: the buyer uses the lease this round.
public struct LeaseCommit: Sendable, Hashable {
    public var leaseID: String
    public var buyer: UInt32
    public var jobID: String
    public var round: UInt64
    /// The GPUs of the buyer's whole deal (0 = the lease's own).
    public var dealGpus: UInt32
    /// The owner runs this part of a spread job but reports nothing (another part does).
    public var silent: Bool
    /// The buyer hands the job over: the owner schedules it as its own home job from now on.
    public var rehome: Bool

    public init(
        leaseID: String = "", buyer: UInt32 = 0, jobID: String = "", round: UInt64 = 0, dealGpus: UInt32 = 0, silent: Bool = false,
        rehome: Bool = false
    ) {
        self.leaseID = leaseID
        self.buyer = buyer
        self.jobID = jobID
        self.round = round
        self.dealGpus = dealGpus
        self.silent = silent
        self.rehome = rehome
    }
}

/// proto `LeaseRelease`.
public struct LeaseRelease: Sendable, Hashable {
    public var leaseID: String
    public var reason: String
    public var buyer: UInt32
    public var jobID: String

    public init(leaseID: String = "", reason: String = "", buyer: UInt32 = 0, jobID: String = "") {
        self.leaseID = leaseID
        self.reason = reason
        self.buyer = buyer
        self.jobID = jobID
    }
}

// MARK: - errors

/// proto `Error` (renamed to avoid clashing with `Swift.Error` and ``WireError``).
public struct WireErrorMessage: Sendable, Hashable {
    public var code: WireErrorCode
    public var message: String
    /// The offending field, when there is one.
    public var field: String

    public init(code: WireErrorCode = .unspecified, message: String = "", field: String = "") {
        self.code = code
        self.message = message
        self.field = field
    }
}
