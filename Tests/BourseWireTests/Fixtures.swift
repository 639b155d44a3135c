import BourseWire

/// SplitMix64: a tiny deterministic PRNG so every run sees the same "random" inputs.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The proto field names of all oneof members; a test checks the fixtures cover every one.
/// `kindIndex` below is an exhaustive switch, so adding a Body case breaks the build here.
let allBodyKinds = [
    "submit_job", "submit_ack", "job_status_request", "job_status", "list_jobs_request", "list_jobs_reply",
    "cancel_job", "cancel_ack", "job_transition", "agent_register", "agent_heartbeat", "worker_command",
    "command_ack", "ping", "ping_req", "ack", "trade_offer", "trade_accept", "trade_reject", "lease_commit",
    "lease_release", "error",
]

func kindIndex(_ body: Envelope.Body) -> Int {
    switch body {
    case .submitJob: 0
    case .submitAck: 1
    case .jobStatusRequest: 2
    case .jobStatus: 3
    case .listJobsRequest: 4
    case .listJobsReply: 5
    case .cancelJob: 6
    case .cancelAck: 7
    case .jobTransition: 8
    case .agentRegister: 9
    case .agentHeartbeat: 10
    case .workerCommand: 11
    case .commandAck: 12
    case .ping: 13
    case .pingReq: 14
    case .ack: 15
    case .tradeOffer: 16
    case .tradeAccept: 17
    case .tradeReject: 18
    case .leaseCommit: 19
    case .leaseRelease: 20
    case .error: 21
    }
}

enum Fixtures {
    static let spec = JobSpec(
        jobType: "ResNet-18 (batch size 32)", totalSteps: 123_456_789_012, workers: 4, minWorkers: 2,
        maxWorkers: 8, tenant: "team-ä", weight: 2.5, arrivalTime: 3600.25, slo: 7200.5, name: "nightly 🚀")
    static let placement = Placement(gpuType: "V100", gpuIDs: ["r0-n1-g0", "r0-n1-g1", "r0-n2-g3"], shardID: "shard-r0")
    static let status = JobStatus(
        jobID: "job-42", spec: spec, state: .running, stepsDone: 1234.5, checkpointSteps: 1000.25,
        placement: placement, submittedAt: 10.5, startedAt: 12.75, finishedAt: 99.125, reason: "moved: better bid",
        restarts: 3, homeShard: "shard-r1")
    static let progress = [
        JobProgress(jobID: "job-1", stepsDone: 10.5, checkpointSteps: 8, stepsPerSecond: 3.25, workers: 2, gpuType: "K80"),
        JobProgress(jobID: "job-2", stepsDone: 1e9, checkpointSteps: 5e8, stepsPerSecond: 0.001, workers: 16, gpuType: "P100"),
    ]
    static let nodes = [
        NodeReport(
            nodeID: "r0-n1", rack: "r0", health: .healthy,
            gpus: [
                GPUReport(gpuID: "r0-n1-g0", gpuType: "V100", healthy: true, jobID: "job-1"),
                GPUReport(gpuID: "r0-n1-g1", gpuType: "V100", healthy: false, jobID: ""),
                GPUReport(gpuID: "r0-n1-g2", gpuType: "V100", healthy: true, jobID: "job-2"),
            ]),
        NodeReport(nodeID: "r0-n2", rack: "r0", health: .degraded, gpus: [GPUReport(gpuID: "r0-n2-g0", gpuType: "K80", healthy: true)]),
    ]
    static let updates = [
        MemberUpdate(memberID: "shard-r0", address: "tcp://10.0.0.1:7000", status: .alive, incarnation: 7, role: .shard),
        MemberUpdate(memberID: "gateway", address: "tcp://10.0.0.2:7000", status: .suspect, incarnation: 1 << 40, role: .gateway),
        MemberUpdate(memberID: "agent-r0-n1", address: "ipc:///tmp/a", status: .dead, incarnation: 3, role: .agent),
    ]
    static let digests = [
        ShardDigest(
            shardID: "shard-r0", racks: ["r0", "r3"],
            asks: [AskPrice(gpuType: "V100", ask: 1.75, freeGpus: 3), AskPrice(gpuType: "K80", ask: 0.25, freeGpus: 12)],
            queuedJobs: 5, round: 99, version: 1001,
            marketAsks: [GroupAsk(group: 4, price: 0.5, units: [1, 2, 4], costs: [0, 1.25, 3.5]), GroupAsk(group: 5, price: 2)],
            trading: {
                var t = TradingTotals()
                (t.rounds, t.phases, t.offersSent, t.offersReceived, t.accepts, t.rejects) = (10, 90, 7, 8, 5, 3)
                (t.leasesGranted, t.leasesEnded, t.messagesSent, t.leasesHeld, t.guests) = (5, 4, 20, 1, 1)
                return t
            }()),
        ShardDigest(shardID: "shard-r1", racks: ["r1"], asks: [AskPrice(gpuType: "P100", ask: 3, freeGpus: 1)], queuedJobs: 0, round: 98, version: 77),
    ]

    /// One envelope per body kind with a non-default value in every field.
    static let rich: [Envelope] = {
        let bodies: [Envelope.Body] = [
            .submitJob(SubmitJob(spec: spec, idempotencyKey: "idem-1", tenantToken: "tok-abc")),
            .submitAck(SubmitAck(jobID: "job-42", homeShard: "shard-r0")),
            .jobStatusRequest(JobStatusRequest(jobID: "job-42", tenantToken: "tok-abc")),
            .jobStatus(status),
            .listJobsRequest(ListJobsRequest(tenantToken: "tok-abc", states: [.pending, .running, .cancelled, .unrecognized(42)])),
            .listJobsReply(ListJobsReply(jobs: [
                status,
                JobStatus(jobID: "job-43", spec: nil, state: .pending, placement: nil, submittedAt: 11),
                JobStatus(jobID: "job-44", spec: JobSpec(jobType: "A3C", totalSteps: 10, workers: 1), state: .completed,
                          placement: Placement(gpuType: "K80", gpuIDs: ["x"], shardID: "shard-r2"), finishedAt: 500),
            ])),
            .cancelJob(CancelJob(jobID: "job-42", tenantToken: "tok-abc")),
            .cancelAck(CancelAck(jobID: "job-42", state: .cancelled)),
            .jobTransition(JobTransition(
                jobID: "job-42", state: .restarting, at: 77.5, stepsDone: 1500, checkpointSteps: 1400.5,
                placement: placement, reason: "resize", transitionID: 9_000_000_000, spreadPart: true)),
            .agentRegister(AgentRegister(agentID: "agent-r0-n1", address: "tcp://10.0.0.9:7100", nodes: nodes, jobs: progress)),
            .agentHeartbeat(AgentHeartbeat(agentID: "agent-r0-n1", at: 1234.5, nodes: nodes, jobs: progress)),
            .workerCommand(WorkerCommand(
                commandID: 17, kind: .resize, jobID: "job-42", jobType: "Transformer (batch size 64)",
                gpuIDs: ["r0-n1-g0", "r0-n1-g1"], workers: 2, resumeFromSteps: 1400.5, totalSteps: 50_000,
                restartDelay: 12.5, spreadWorkers: 6)),
            .commandAck(CommandAck(commandID: 17, ok: true, error: "warning: slow start", stepsDone: 1500.25, checkpointSteps: 1500.25)),
            .ping(Ping(probeID: 5, updates: updates, digests: digests)),
            .pingReq(PingReq(probeID: 6, targetID: "shard-r2", targetAddress: "tcp://10.0.0.3:7000", updates: updates, digests: digests)),
            .ack(Ack(probeID: 6, targetID: "shard-r2", updates: updates, digests: digests)),
            .tradeOffer(TradeOffer(
                offerID: 1001, buyerShard: "shard-r1", jobID: "job-42", gpuType: "V100", gpus: 4, bid: 12.75,
                round: 99, leaseSeconds: 600, buyer: 1, owner: 2, group: 3, renewingLease: "L2.7")),
            .tradeAccept(TradeAccept(
                offerID: 1001, leaseID: "L2.7", gpuIDs: ["r0-n1-g0", "r0-n1-g1"], expiresAt: 1800.5, price: 11.5, owner: 2,
                buyer: 1, jobID: "job-42", group: 3, units: 4)),
            .tradeReject(TradeReject(offerID: 1002, ask: 13.25, reason: "outbid", owner: 2, buyer: 1, jobID: "job-42", group: 3)),
            .leaseCommit(LeaseCommit(leaseID: "L2.7", buyer: 1, jobID: "job-42", round: 99, dealGpus: 6, silent: true, rehome: true)),
            .leaseRelease(LeaseRelease(leaseID: "L2.7", reason: "job finished", buyer: 1, jobID: "job-42")),
            .error(WireErrorMessage(code: .notFound, message: "no such job", field: "job_id")),
        ]
        return bodies.enumerated().map { i, body in
            Envelope(
                senderID: "shard-r\(i)", sequence: UInt64(1000 + i), hmac: [0xDE, 0xAD, 0xBE, 0xEF, UInt8(i)],
                sentAt: 1_700_000_000.5 + Double(i), body: body)
        }
    }()

    /// One envelope per body kind with every field at its default.
    static let defaults: [Envelope] = [
        .submitJob(SubmitJob()), .submitAck(SubmitAck()), .jobStatusRequest(JobStatusRequest()), .jobStatus(JobStatus()),
        .listJobsRequest(ListJobsRequest()), .listJobsReply(ListJobsReply()), .cancelJob(CancelJob()), .cancelAck(CancelAck()),
        .jobTransition(JobTransition()), .agentRegister(AgentRegister()), .agentHeartbeat(AgentHeartbeat()),
        .workerCommand(WorkerCommand()), .commandAck(CommandAck()), .ping(Ping()), .pingReq(PingReq()), .ack(Ack()),
        .tradeOffer(TradeOffer()), .tradeAccept(TradeAccept()), .tradeReject(TradeReject()), .leaseCommit(LeaseCommit()),
        .leaseRelease(LeaseRelease()), .error(WireErrorMessage()),
    ].map { Envelope(body: $0) }
}

/// Random but valid Envelopes of every kind, for property-style round trips.
struct RandomEnvelopes {
    var rng: SplitMix64

    private static let alphabet: [String] = ["a", "Z", "0", "-", " ", "_", "é", "ß", "日", "本", "🚀", "👩‍💻", "\t", "\n", "\u{7F}"]

    mutating func string() -> String {
        let n = Int.random(in: 0...12, using: &rng)
        return (0..<n).map { _ in Self.alphabet.randomElement(using: &rng)! }.joined()
    }
    mutating func strings() -> [String] { (0..<Int.random(in: 0...4, using: &rng)).map { _ in string() } }
    mutating func u64() -> UInt64 {
        switch Int.random(in: 0..<4, using: &rng) {
        case 0: 0
        case 1: UInt64.max
        case 2: UInt64.random(in: 0...300, using: &rng)
        default: rng.next()
        }
    }
    mutating func u32() -> UInt32 { UInt32(truncatingIfNeeded: u64()) }
    mutating func double() -> Double {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: 0
        case 1: [Double.infinity, -.infinity, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0].randomElement(using: &rng)!
        case 2: Double(Int.random(in: -1000...1000, using: &rng)) / 8
        default: Double.random(in: -1e12...1e12, using: &rng)
        }
    }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func raw() -> Int32 {
        Bool.random(using: &rng) ? Int32.random(in: 0...7, using: &rng) : Int32.random(in: Int32.min...Int32.max, using: &rng)
    }
    mutating func list<T>(_ make: (inout RandomEnvelopes) -> T) -> [T] {
        (0..<Int.random(in: 0...3, using: &rng)).map { _ in make(&self) }
    }
    mutating func maybe<T>(_ make: (inout RandomEnvelopes) -> T) -> T? { bool() ? make(&self) : nil }

    mutating func spec() -> JobSpec {
        JobSpec(jobType: string(), totalSteps: u64(), workers: u32(), minWorkers: u32(), maxWorkers: u32(), tenant: string(),
                weight: double(), arrivalTime: double(), slo: double(), name: string())
    }
    mutating func placement() -> Placement { Placement(gpuType: string(), gpuIDs: strings(), shardID: string()) }
    mutating func status() -> JobStatus {
        JobStatus(jobID: string(), spec: maybe { $0.spec() }, state: JobState(rawValue: raw()), stepsDone: double(),
                  checkpointSteps: double(), placement: maybe { $0.placement() }, submittedAt: double(), startedAt: double(),
                  finishedAt: double(), reason: string(), restarts: u32(), homeShard: string())
    }
    mutating func progress() -> JobProgress {
        JobProgress(jobID: string(), stepsDone: double(), checkpointSteps: double(), stepsPerSecond: double(), workers: u32(), gpuType: string())
    }
    mutating func node() -> NodeReport {
        NodeReport(nodeID: string(), rack: string(), health: NodeHealth(rawValue: raw()), gpus: list {
            GPUReport(gpuID: $0.string(), gpuType: $0.string(), healthy: $0.bool(), jobID: $0.string())
        })
    }
    mutating func update() -> MemberUpdate {
        MemberUpdate(memberID: string(), address: string(), status: MemberStatus(rawValue: raw()), incarnation: u64(),
                     role: MemberRole(rawValue: raw()))
    }
    mutating func digest() -> ShardDigest {
        ShardDigest(shardID: string(), racks: strings(), asks: list { AskPrice(gpuType: $0.string(), ask: $0.double(), freeGpus: $0.u32()) },
                    queuedJobs: u32(), round: u64(), version: u64(),
                    marketAsks: list { GroupAsk(group: $0.u32(), price: $0.double(), units: [$0.u32(), $0.u32()], costs: [$0.double()]) },
                    trading: maybe { r in
                        var t = TradingTotals()
                        (t.rounds, t.phases, t.offersSent, t.accepts, t.leasesHeld) = (r.u64(), r.u64(), r.u64(), r.u64(), r.u32())
                        return t
                    })
    }

    mutating func body(kind: Int) -> Envelope.Body {
        switch kind {
        case 0: .submitJob(SubmitJob(spec: maybe { $0.spec() }, idempotencyKey: string(), tenantToken: string()))
        case 1: .submitAck(SubmitAck(jobID: string(), homeShard: string()))
        case 2: .jobStatusRequest(JobStatusRequest(jobID: string(), tenantToken: string()))
        case 3: .jobStatus(status())
        case 4: .listJobsRequest(ListJobsRequest(tenantToken: string(), states: list { JobState(rawValue: $0.raw()) }))
        case 5: .listJobsReply(ListJobsReply(jobs: list { $0.status() }))
        case 6: .cancelJob(CancelJob(jobID: string(), tenantToken: string()))
        case 7: .cancelAck(CancelAck(jobID: string(), state: JobState(rawValue: raw())))
        case 8: .jobTransition(JobTransition(jobID: string(), state: JobState(rawValue: raw()), at: double(), stepsDone: double(),
                                              checkpointSteps: double(), placement: maybe { $0.placement() }, reason: string(), transitionID: u64(),
                                              spreadPart: bool()))
        case 9: .agentRegister(AgentRegister(agentID: string(), address: string(), nodes: list { $0.node() }, jobs: list { $0.progress() }))
        case 10: .agentHeartbeat(AgentHeartbeat(agentID: string(), at: double(), nodes: list { $0.node() }, jobs: list { $0.progress() }))
        case 11: .workerCommand(WorkerCommand(commandID: u64(), kind: WorkerCommandKind(rawValue: raw()), jobID: string(), jobType: string(),
                                               gpuIDs: strings(), workers: u32(), resumeFromSteps: double(), totalSteps: u64(), restartDelay: double(),
                                               spreadWorkers: u32()))
        case 12: .commandAck(CommandAck(commandID: u64(), ok: bool(), error: string(), stepsDone: double(), checkpointSteps: double()))
        case 13: .ping(Ping(probeID: u64(), updates: list { $0.update() }, digests: list { $0.digest() }))
        case 14: .pingReq(PingReq(probeID: u64(), targetID: string(), targetAddress: string(), updates: list { $0.update() }, digests: list { $0.digest() }))
        case 15: .ack(Ack(probeID: u64(), targetID: string(), updates: list { $0.update() }, digests: list { $0.digest() }))
        case 16: .tradeOffer(TradeOffer(offerID: u64(), buyerShard: string(), jobID: string(), gpuType: string(), gpus: u32(), bid: double(),
                                         round: u64(), leaseSeconds: double(), buyer: u32(), owner: u32(), group: u32(), renewingLease: string()))
        case 17: .tradeAccept(TradeAccept(offerID: u64(), leaseID: string(), gpuIDs: strings(), expiresAt: double(), price: double(),
                                           owner: u32(), buyer: u32(), jobID: string(), group: u32(), units: u32()))
        case 18: .tradeReject(TradeReject(offerID: u64(), ask: double(), reason: string(), owner: u32(), buyer: u32(), jobID: string(), group: u32()))
        case 19: .leaseCommit(LeaseCommit(leaseID: string(), buyer: u32(), jobID: string(), round: u64(), dealGpus: u32(), silent: bool(), rehome: bool()))
        case 20: .leaseRelease(LeaseRelease(leaseID: string(), reason: string(), buyer: u32(), jobID: string()))
        default: .error(WireErrorMessage(code: WireErrorCode(rawValue: raw()), message: string(), field: string()))
        }
    }

    mutating func envelope(kind: Int) -> Envelope {
        Envelope(senderID: string(), sequence: u64(), hmac: (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                 sentAt: double(), body: body(kind: kind))
    }
}
