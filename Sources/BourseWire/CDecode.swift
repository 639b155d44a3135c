// C -> Swift: copy an unpacked protobuf-c tree into Swift values. The C memory belongs to
// protobuf-c and is freed by WireCodec.decode right after this conversion.

internal import BourseProtoC

extension Envelope {
    init(c: Bourse__Envelope) throws(WireError) {
        let body: Body
        switch c.body_case {
        case BOURSE__ENVELOPE__BODY__NOT_SET:
            throw .missingBody
        case BOURSE__ENVELOPE__BODY_SUBMIT_JOB:
            body = .submitJob(try decodeRequiredMessage(c.submit_job, "Envelope.submit_job"))
        case BOURSE__ENVELOPE__BODY_SUBMIT_ACK:
            body = .submitAck(try decodeRequiredMessage(c.submit_ack, "Envelope.submit_ack"))
        case BOURSE__ENVELOPE__BODY_JOB_STATUS_REQUEST:
            body = .jobStatusRequest(try decodeRequiredMessage(c.job_status_request, "Envelope.job_status_request"))
        case BOURSE__ENVELOPE__BODY_JOB_STATUS:
            body = .jobStatus(try decodeRequiredMessage(c.job_status, "Envelope.job_status"))
        case BOURSE__ENVELOPE__BODY_LIST_JOBS_REQUEST:
            body = .listJobsRequest(try decodeRequiredMessage(c.list_jobs_request, "Envelope.list_jobs_request"))
        case BOURSE__ENVELOPE__BODY_LIST_JOBS_REPLY:
            body = .listJobsReply(try decodeRequiredMessage(c.list_jobs_reply, "Envelope.list_jobs_reply"))
        case BOURSE__ENVELOPE__BODY_CANCEL_JOB:
            body = .cancelJob(try decodeRequiredMessage(c.cancel_job, "Envelope.cancel_job"))
        case BOURSE__ENVELOPE__BODY_CANCEL_ACK:
            body = .cancelAck(try decodeRequiredMessage(c.cancel_ack, "Envelope.cancel_ack"))
        case BOURSE__ENVELOPE__BODY_JOB_TRANSITION:
            body = .jobTransition(try decodeRequiredMessage(c.job_transition, "Envelope.job_transition"))
        case BOURSE__ENVELOPE__BODY_AGENT_REGISTER:
            body = .agentRegister(try decodeRequiredMessage(c.agent_register, "Envelope.agent_register"))
        case BOURSE__ENVELOPE__BODY_AGENT_HEARTBEAT:
            body = .agentHeartbeat(try decodeRequiredMessage(c.agent_heartbeat, "Envelope.agent_heartbeat"))
        case BOURSE__ENVELOPE__BODY_WORKER_COMMAND:
            body = .workerCommand(try decodeRequiredMessage(c.worker_command, "Envelope.worker_command"))
        case BOURSE__ENVELOPE__BODY_COMMAND_ACK:
            body = .commandAck(try decodeRequiredMessage(c.command_ack, "Envelope.command_ack"))
        case BOURSE__ENVELOPE__BODY_PING:
            body = .ping(try decodeRequiredMessage(c.ping, "Envelope.ping"))
        case BOURSE__ENVELOPE__BODY_PING_REQ:
            body = .pingReq(try decodeRequiredMessage(c.ping_req, "Envelope.ping_req"))
        case BOURSE__ENVELOPE__BODY_ACK:
            body = .ack(try decodeRequiredMessage(c.ack, "Envelope.ack"))
        case BOURSE__ENVELOPE__BODY_TRADE_OFFER:
            body = .tradeOffer(try decodeRequiredMessage(c.trade_offer, "Envelope.trade_offer"))
        case BOURSE__ENVELOPE__BODY_TRADE_ACCEPT:
            body = .tradeAccept(try decodeRequiredMessage(c.trade_accept, "Envelope.trade_accept"))
        case BOURSE__ENVELOPE__BODY_TRADE_REJECT:
            body = .tradeReject(try decodeRequiredMessage(c.trade_reject, "Envelope.trade_reject"))
        case BOURSE__ENVELOPE__BODY_LEASE_COMMIT:
            body = .leaseCommit(try decodeRequiredMessage(c.lease_commit, "Envelope.lease_commit"))
        case BOURSE__ENVELOPE__BODY_LEASE_RELEASE:
            body = .leaseRelease(try decodeRequiredMessage(c.lease_release, "Envelope.lease_release"))
        case BOURSE__ENVELOPE__BODY_ERROR:
            body = .error(try decodeRequiredMessage(c.error, "Envelope.error"))
        default:
            throw .malformed("Envelope.body has unexpected case \(c.body_case.rawValue)")
        }
        try self.init(
            senderID: decodeString(c.sender_id, "Envelope.sender_id"),
            sequence: c.sequence,
            hmac: decodeBytes(c.hmac),
            sentAt: c.sent_at,
            body: body)
    }
}

// MARK: - jobs

extension JobSpec {
    init(c: Bourse__JobSpec) throws(WireError) {
        try self.init(
            jobType: decodeString(c.job_type, "JobSpec.job_type"),
            totalSteps: c.total_steps,
            workers: c.workers,
            minWorkers: c.min_workers,
            maxWorkers: c.max_workers,
            tenant: decodeString(c.tenant, "JobSpec.tenant"),
            weight: c.weight,
            arrivalTime: c.arrival_time,
            slo: c.slo,
            name: decodeString(c.name, "JobSpec.name"))
    }
}

extension SubmitJob {
    init(c: Bourse__SubmitJob) throws(WireError) {
        try self.init(
            spec: decodeMessage(c.spec),
            idempotencyKey: decodeString(c.idempotency_key, "SubmitJob.idempotency_key"),
            tenantToken: decodeString(c.tenant_token, "SubmitJob.tenant_token"))
    }
}

extension SubmitAck {
    init(c: Bourse__SubmitAck) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "SubmitAck.job_id"),
            homeShard: decodeString(c.home_shard, "SubmitAck.home_shard"))
    }
}

extension JobStatusRequest {
    init(c: Bourse__JobStatusRequest) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "JobStatusRequest.job_id"),
            tenantToken: decodeString(c.tenant_token, "JobStatusRequest.tenant_token"))
    }
}

extension Placement {
    init(c: Bourse__Placement) throws(WireError) {
        try self.init(
            gpuType: decodeString(c.gpu_type, "Placement.gpu_type"),
            gpuIDs: decodeStrings(c.n_gpu_ids, c.gpu_ids, "Placement.gpu_ids"),
            shardID: decodeString(c.shard_id, "Placement.shard_id"))
    }
}

extension JobStatus {
    init(c: Bourse__JobStatus) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "JobStatus.job_id"),
            spec: decodeMessage(c.spec),
            state: JobState(c: c.state),
            stepsDone: c.steps_done,
            checkpointSteps: c.checkpoint_steps,
            placement: decodeMessage(c.placement),
            submittedAt: c.submitted_at,
            startedAt: c.started_at,
            finishedAt: c.finished_at,
            reason: decodeString(c.reason, "JobStatus.reason"),
            restarts: c.restarts,
            homeShard: decodeString(c.home_shard, "JobStatus.home_shard"))
    }
}

extension ListJobsRequest {
    init(c: Bourse__ListJobsRequest) throws(WireError) {
        try self.init(
            tenantToken: decodeString(c.tenant_token, "ListJobsRequest.tenant_token"),
            states: decodeEnums(c.n_states, c.states, "ListJobsRequest.states"))
    }
}

extension ListJobsReply {
    init(c: Bourse__ListJobsReply) throws(WireError) {
        try self.init(jobs: decodeMessages(c.n_jobs, c.jobs, "ListJobsReply.jobs"))
    }
}

extension CancelJob {
    init(c: Bourse__CancelJob) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "CancelJob.job_id"),
            tenantToken: decodeString(c.tenant_token, "CancelJob.tenant_token"))
    }
}

extension CancelAck {
    init(c: Bourse__CancelAck) throws(WireError) {
        try self.init(jobID: decodeString(c.job_id, "CancelAck.job_id"), state: JobState(c: c.state))
    }
}

extension JobTransition {
    init(c: Bourse__JobTransition) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "JobTransition.job_id"),
            state: JobState(c: c.state),
            at: c.at,
            stepsDone: c.steps_done,
            checkpointSteps: c.checkpoint_steps,
            placement: decodeMessage(c.placement),
            reason: decodeString(c.reason, "JobTransition.reason"),
            transitionID: c.transition_id,
            spreadPart: c.spread_part != 0)
    }
}

// MARK: - agents and nodes

extension GPUReport {
    init(c: Bourse__Gpu) throws(WireError) {
        try self.init(
            gpuID: decodeString(c.gpu_id, "Gpu.gpu_id"),
            gpuType: decodeString(c.gpu_type, "Gpu.gpu_type"),
            healthy: c.healthy != 0,
            jobID: decodeString(c.job_id, "Gpu.job_id"))
    }
}

extension JobProgress {
    init(c: Bourse__JobProgress) throws(WireError) {
        try self.init(
            jobID: decodeString(c.job_id, "JobProgress.job_id"),
            stepsDone: c.steps_done,
            checkpointSteps: c.checkpoint_steps,
            stepsPerSecond: c.steps_per_second,
            workers: c.workers,
            gpuType: decodeString(c.gpu_type, "JobProgress.gpu_type"))
    }
}

extension NodeReport {
    init(c: Bourse__NodeReport) throws(WireError) {
        try self.init(
            nodeID: decodeString(c.node_id, "NodeReport.node_id"),
            rack: decodeString(c.rack, "NodeReport.rack"),
            health: NodeHealth(c: c.health),
            gpus: decodeMessages(c.n_gpus, c.gpus, "NodeReport.gpus"))
    }
}

extension AgentRegister {
    init(c: Bourse__AgentRegister) throws(WireError) {
        try self.init(
            agentID: decodeString(c.agent_id, "AgentRegister.agent_id"),
            address: decodeString(c.address, "AgentRegister.address"),
            nodes: decodeMessages(c.n_nodes, c.nodes, "AgentRegister.nodes"),
            jobs: decodeMessages(c.n_jobs, c.jobs, "AgentRegister.jobs"))
    }
}

extension AgentHeartbeat {
    init(c: Bourse__AgentHeartbeat) throws(WireError) {
        try self.init(
            agentID: decodeString(c.agent_id, "AgentHeartbeat.agent_id"),
            at: c.at,
            nodes: decodeMessages(c.n_nodes, c.nodes, "AgentHeartbeat.nodes"),
            jobs: decodeMessages(c.n_jobs, c.jobs, "AgentHeartbeat.jobs"))
    }
}

extension WorkerCommand {
    init(c: Bourse__WorkerCommand) throws(WireError) {
        try self.init(
            commandID: c.command_id,
            kind: WorkerCommandKind(c: c.kind),
            jobID: decodeString(c.job_id, "WorkerCommand.job_id"),
            jobType: decodeString(c.job_type, "WorkerCommand.job_type"),
            gpuIDs: decodeStrings(c.n_gpu_ids, c.gpu_ids, "WorkerCommand.gpu_ids"),
            workers: c.workers,
            resumeFromSteps: c.resume_from_steps,
            totalSteps: c.total_steps,
            restartDelay: c.restart_delay,
            spreadWorkers: c.spread_workers)
    }
}

extension CommandAck {
    init(c: Bourse__CommandAck) throws(WireError) {
        try self.init(
            commandID: c.command_id, ok: c.ok != 0, error: decodeString(c.error, "CommandAck.error"),
            stepsDone: c.steps_done, checkpointSteps: c.checkpoint_steps)
    }
}

// MARK: - SWIM membership

extension MemberUpdate {
    init(c: Bourse__MemberUpdate) throws(WireError) {
        try self.init(
            memberID: decodeString(c.member_id, "MemberUpdate.member_id"),
            address: decodeString(c.address, "MemberUpdate.address"),
            status: MemberStatus(c: c.status),
            incarnation: c.incarnation,
            role: MemberRole(c: c.role))
    }
}

extension AskPrice {
    init(c: Bourse__AskPrice) throws(WireError) {
        try self.init(gpuType: decodeString(c.gpu_type, "AskPrice.gpu_type"), ask: c.ask, freeGpus: c.free_gpus)
    }
}

extension ShardDigest {
    init(c: Bourse__ShardDigest) throws(WireError) {
        try self.init(
            shardID: decodeString(c.shard_id, "ShardDigest.shard_id"),
            racks: decodeStrings(c.n_racks, c.racks, "ShardDigest.racks"),
            asks: decodeMessages(c.n_asks, c.asks, "ShardDigest.asks"),
            queuedJobs: c.queued_jobs,
            round: c.round,
            version: c.version,
            marketAsks: decodeMessages(c.n_market_asks, c.market_asks, "ShardDigest.market_asks"),
            trading: decodeMessage(c.trading))
    }
}

extension TradingTotals {
    init(c: Bourse__TradingTotals) throws(WireError) {
        self.init()
        rounds = c.rounds
        phases = c.phases
        offersSent = c.offers_sent
        offersReceived = c.offers_received
        accepts = c.accepts
        rejects = c.rejects
        leasesGranted = c.leases_granted
        leasesEnded = c.leases_ended
        messagesSent = c.messages_sent
        leasesHeld = c.leases_held
        guests = c.guests
    }
}

extension GroupAsk {
    init(c: Bourse__GroupAsk) throws(WireError) {
        try self.init(
            group: c.group, price: c.price, units: decodeScalars(c.n_units, c.units, "GroupAsk.units"),
            costs: decodeScalars(c.n_costs, c.costs, "GroupAsk.costs"))
    }
}

extension Ping {
    init(c: Bourse__Ping) throws(WireError) {
        try self.init(
            probeID: c.probe_id,
            updates: decodeMessages(c.n_updates, c.updates, "Ping.updates"),
            digests: decodeMessages(c.n_digests, c.digests, "Ping.digests"))
    }
}

extension PingReq {
    init(c: Bourse__PingReq) throws(WireError) {
        try self.init(
            probeID: c.probe_id,
            targetID: decodeString(c.target_id, "PingReq.target_id"),
            targetAddress: decodeString(c.target_address, "PingReq.target_address"),
            updates: decodeMessages(c.n_updates, c.updates, "PingReq.updates"),
            digests: decodeMessages(c.n_digests, c.digests, "PingReq.digests"))
    }
}

extension Ack {
    init(c: Bourse__Ack) throws(WireError) {
        try self.init(
            probeID: c.probe_id,
            targetID: decodeString(c.target_id, "Ack.target_id"),
            updates: decodeMessages(c.n_updates, c.updates, "Ack.updates"),
            digests: decodeMessages(c.n_digests, c.digests, "Ack.digests"))
    }
}

// MARK: - trading

extension TradeOffer {
    init(c: Bourse__TradeOffer) throws(WireError) {
        try self.init(
            offerID: c.offer_id,
            buyerShard: decodeString(c.buyer_shard, "TradeOffer.buyer_shard"),
            jobID: decodeString(c.job_id, "TradeOffer.job_id"),
            gpuType: decodeString(c.gpu_type, "TradeOffer.gpu_type"),
            gpus: c.gpus,
            bid: c.bid,
            round: c.round,
            leaseSeconds: c.lease_seconds,
            buyer: c.buyer,
            owner: c.owner,
            group: c.group,
            renewingLease: decodeString(c.renewing_lease, "TradeOffer.renewing_lease"))
    }
}

extension TradeAccept {
    init(c: Bourse__TradeAccept) throws(WireError) {
        try self.init(
            offerID: c.offer_id,
            leaseID: decodeString(c.lease_id, "TradeAccept.lease_id"),
            gpuIDs: decodeStrings(c.n_gpu_ids, c.gpu_ids, "TradeAccept.gpu_ids"),
            expiresAt: c.expires_at,
            price: c.price,
            owner: c.owner,
            buyer: c.buyer,
            jobID: decodeString(c.job_id, "TradeAccept.job_id"),
            group: c.group,
            units: c.units)
    }
}

extension TradeReject {
    init(c: Bourse__TradeReject) throws(WireError) {
        try self.init(
            offerID: c.offer_id, ask: c.ask, reason: decodeString(c.reason, "TradeReject.reason"), owner: c.owner,
            buyer: c.buyer, jobID: decodeString(c.job_id, "TradeReject.job_id"), group: c.group)
    }
}

extension LeaseCommit {
    init(c: Bourse__LeaseCommit) throws(WireError) {
        try self.init(
            leaseID: decodeString(c.lease_id, "LeaseCommit.lease_id"), buyer: c.buyer,
            jobID: decodeString(c.job_id, "LeaseCommit.job_id"), round: c.round, dealGpus: c.deal_gpus,
            silent: c.silent != 0, rehome: c.rehome != 0)
    }
}

extension LeaseRelease {
    init(c: Bourse__LeaseRelease) throws(WireError) {
        try self.init(
            leaseID: decodeString(c.lease_id, "LeaseRelease.lease_id"),
            reason: decodeString(c.reason, "LeaseRelease.reason"),
            buyer: c.buyer,
            jobID: decodeString(c.job_id, "LeaseRelease.job_id"))
    }
}

// MARK: - errors

extension WireErrorMessage {
    init(c: Bourse__Error) throws(WireError) {
        try self.init(
            code: WireErrorCode(c: c.code),
            message: decodeString(c.message, "Error.message"),
            field: decodeString(c.field, "Error.field"))
    }
}
