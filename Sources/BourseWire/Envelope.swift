/// proto `Envelope`: every frame on every socket is one of these.
///
/// Naming: proto fields become lowerCamelCase with `id`/`ids` spelled `ID`/`IDs`
/// (`sender_id` -> `senderID`, `gpu_ids` -> `gpuIDs`). Every field has its proto3 default.
public struct Envelope: Sendable, Hashable {
    /// Member id of the sending process (e.g. "shard-r0", "gateway").
    public var senderID: String
    /// Per-sender, strictly increasing; used for replay rejection.
    public var sequence: UInt64
    /// HMAC-SHA256 over ``WireCodec/encodeForSigning(_:maxFrameSize:)`` when a cluster key is set.
    public var hmac: [UInt8]
    /// Sender's cluster clock when sent.
    public var sentAt: Double
    /// The message. Required: an Envelope without a body does not decode (``WireError/missingBody``).
    public var body: Body

    public init(senderID: String = "", sequence: UInt64 = 0, hmac: [UInt8] = [], sentAt: Double = 0, body: Body) {
        self.senderID = senderID
        self.sequence = sequence
        self.hmac = hmac
        self.sentAt = sentAt
        self.body = body
    }

    /// proto `oneof body`: one case per member.
    public enum Body: Sendable, Hashable {
        // clients <-> gateway
        case submitJob(SubmitJob)
        case submitAck(SubmitAck)
        case jobStatusRequest(JobStatusRequest)
        case jobStatus(JobStatus)
        case listJobsRequest(ListJobsRequest)
        case listJobsReply(ListJobsReply)
        case cancelJob(CancelJob)
        case cancelAck(CancelAck)
        // shard -> gateway
        case jobTransition(JobTransition)
        // agents <-> shards
        case agentRegister(AgentRegister)
        case agentHeartbeat(AgentHeartbeat)
        case workerCommand(WorkerCommand)
        case commandAck(CommandAck)
        // SWIM membership
        case ping(Ping)
        case pingReq(PingReq)
        case ack(Ack)
        // trading between shards
        case tradeOffer(TradeOffer)
        case tradeAccept(TradeAccept)
        case tradeReject(TradeReject)
        case leaseCommit(LeaseCommit)
        case leaseRelease(LeaseRelease)
        // any direction
        case error(WireErrorMessage)

        /// The proto field name of the oneof member, e.g. "submit_job" (for logs and diagnostics).
        public var kindName: String {
            switch self {
            case .submitJob: "submit_job"
            case .submitAck: "submit_ack"
            case .jobStatusRequest: "job_status_request"
            case .jobStatus: "job_status"
            case .listJobsRequest: "list_jobs_request"
            case .listJobsReply: "list_jobs_reply"
            case .cancelJob: "cancel_job"
            case .cancelAck: "cancel_ack"
            case .jobTransition: "job_transition"
            case .agentRegister: "agent_register"
            case .agentHeartbeat: "agent_heartbeat"
            case .workerCommand: "worker_command"
            case .commandAck: "command_ack"
            case .ping: "ping"
            case .pingReq: "ping_req"
            case .ack: "ack"
            case .tradeOffer: "trade_offer"
            case .tradeAccept: "trade_accept"
            case .tradeReject: "trade_reject"
            case .leaseCommit: "lease_commit"
            case .leaseRelease: "lease_release"
            case .error: "error"
            }
        }
    }
}
