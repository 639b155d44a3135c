// Swift -> C: fill protobuf-c structs (already `x__init`-ed) from Swift values. Every pointer
// stored comes from the CArena, which frees it after packing; these structs are never passed to
// `x__free_unpacked`.

internal import BourseProtoC

extension Envelope {
    func fill(_ c: inout Bourse__Envelope, _ a: CArena) throws(WireError) {
        c.sender_id = try a.string(senderID, "Envelope.sender_id")
        c.sequence = sequence
        c.hmac = try a.bytes(hmac)
        c.sent_at = sentAt
        switch body {
        case .submitJob(let m):
            (c.body_case, c.submit_job) = (BOURSE__ENVELOPE__BODY_SUBMIT_JOB, try a.message(m))
        case .submitAck(let m):
            (c.body_case, c.submit_ack) = (BOURSE__ENVELOPE__BODY_SUBMIT_ACK, try a.message(m))
        case .jobStatusRequest(let m):
            (c.body_case, c.job_status_request) = (BOURSE__ENVELOPE__BODY_JOB_STATUS_REQUEST, try a.message(m))
        case .jobStatus(let m):
            (c.body_case, c.job_status) = (BOURSE__ENVELOPE__BODY_JOB_STATUS, try a.message(m))
        case .listJobsRequest(let m):
            (c.body_case, c.list_jobs_request) = (BOURSE__ENVELOPE__BODY_LIST_JOBS_REQUEST, try a.message(m))
        case .listJobsReply(let m):
            (c.body_case, c.list_jobs_reply) = (BOURSE__ENVELOPE__BODY_LIST_JOBS_REPLY, try a.message(m))
        case .cancelJob(let m):
            (c.body_case, c.cancel_job) = (BOURSE__ENVELOPE__BODY_CANCEL_JOB, try a.message(m))
        case .cancelAck(let m):
            (c.body_case, c.cancel_ack) = (BOURSE__ENVELOPE__BODY_CANCEL_ACK, try a.message(m))
        case .jobTransition(let m):
            (c.body_case, c.job_transition) = (BOURSE__ENVELOPE__BODY_JOB_TRANSITION, try a.message(m))
        case .agentRegister(let m):
            (c.body_case, c.agent_register) = (BOURSE__ENVELOPE__BODY_AGENT_REGISTER, try a.message(m))
        case .agentHeartbeat(let m):
            (c.body_case, c.agent_heartbeat) = (BOURSE__ENVELOPE__BODY_AGENT_HEARTBEAT, try a.message(m))
        case .workerCommand(let m):
            (c.body_case, c.worker_command) = (BOURSE__ENVELOPE__BODY_WORKER_COMMAND, try a.message(m))
        case .commandAck(let m):
            (c.body_case, c.command_ack) = (BOURSE__ENVELOPE__BODY_COMMAND_ACK, try a.message(m))
        case .ping(let m):
            (c.body_case, c.ping) = (BOURSE__ENVELOPE__BODY_PING, try a.message(m))
        case .pingReq(let m):
            (c.body_case, c.ping_req) = (BOURSE__ENVELOPE__BODY_PING_REQ, try a.message(m))
        case .ack(let m):
            (c.body_case, c.ack) = (BOURSE__ENVELOPE__BODY_ACK, try a.message(m))
        case .tradeOffer(let m):
            (c.body_case, c.trade_offer) = (BOURSE__ENVELOPE__BODY_TRADE_OFFER, try a.message(m))
        case .tradeAccept(let m):
            (c.body_case, c.trade_accept) = (BOURSE__ENVELOPE__BODY_TRADE_ACCEPT, try a.message(m))
        case .tradeReject(let m):
            (c.body_case, c.trade_reject) = (BOURSE__ENVELOPE__BODY_TRADE_REJECT, try a.message(m))
        case .leaseCommit(let m):
            (c.body_case, c.lease_commit) = (BOURSE__ENVELOPE__BODY_LEASE_COMMIT, try a.message(m))
        case .leaseRelease(let m):
            (c.body_case, c.lease_release) = (BOURSE__ENVELOPE__BODY_LEASE_RELEASE, try a.message(m))
        case .error(let m):
            (c.body_case, c.error) = (BOURSE__ENVELOPE__BODY_ERROR, try a.message(m))
        }
    }
}

// MARK: - jobs

extension JobSpec {
    func fill(_ c: inout Bourse__JobSpec, _ a: CArena) throws(WireError) {
        c.job_type = try a.string(jobType, "JobSpec.job_type")
        c.total_steps = totalSteps
        c.workers = workers
        c.min_workers = minWorkers
        c.max_workers = maxWorkers
        c.tenant = try a.string(tenant, "JobSpec.tenant")
        c.weight = weight
        c.arrival_time = arrivalTime
        c.slo = slo
        c.name = try a.string(name, "JobSpec.name")
    }
}

extension SubmitJob {
    func fill(_ c: inout Bourse__SubmitJob, _ a: CArena) throws(WireError) {
        c.spec = try a.optionalMessage(spec)
        c.idempotency_key = try a.string(idempotencyKey, "SubmitJob.idempotency_key")
        c.tenant_token = try a.string(tenantToken, "SubmitJob.tenant_token")
    }
}

extension SubmitAck {
    func fill(_ c: inout Bourse__SubmitAck, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "SubmitAck.job_id")
        c.home_shard = try a.string(homeShard, "SubmitAck.home_shard")
    }
}

extension JobStatusRequest {
    func fill(_ c: inout Bourse__JobStatusRequest, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "JobStatusRequest.job_id")
        c.tenant_token = try a.string(tenantToken, "JobStatusRequest.tenant_token")
    }
}

extension Placement {
    func fill(_ c: inout Bourse__Placement, _ a: CArena) throws(WireError) {
        c.gpu_type = try a.string(gpuType, "Placement.gpu_type")
        (c.n_gpu_ids, c.gpu_ids) = try a.strings(gpuIDs, "Placement.gpu_ids")
        c.shard_id = try a.string(shardID, "Placement.shard_id")
    }
}

extension JobStatus {
    func fill(_ c: inout Bourse__JobStatus, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "JobStatus.job_id")
        c.spec = try a.optionalMessage(spec)
        c.state = state.c()
        c.steps_done = stepsDone
        c.checkpoint_steps = checkpointSteps
        c.placement = try a.optionalMessage(placement)
        c.submitted_at = submittedAt
        c.started_at = startedAt
        c.finished_at = finishedAt
        c.reason = try a.string(reason, "JobStatus.reason")
        c.restarts = restarts
        c.home_shard = try a.string(homeShard, "JobStatus.home_shard")
    }
}

extension ListJobsRequest {
    func fill(_ c: inout Bourse__ListJobsRequest, _ a: CArena) throws(WireError) {
        c.tenant_token = try a.string(tenantToken, "ListJobsRequest.tenant_token")
        (c.n_states, c.states) = try a.enums(states)
    }
}

extension ListJobsReply {
    func fill(_ c: inout Bourse__ListJobsReply, _ a: CArena) throws(WireError) {
        (c.n_jobs, c.jobs) = try a.messages(jobs)
    }
}

extension CancelJob {
    func fill(_ c: inout Bourse__CancelJob, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "CancelJob.job_id")
        c.tenant_token = try a.string(tenantToken, "CancelJob.tenant_token")
    }
}

extension CancelAck {
    func fill(_ c: inout Bourse__CancelAck, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "CancelAck.job_id")
        c.state = state.c()
    }
}

extension JobTransition {
    func fill(_ c: inout Bourse__JobTransition, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "JobTransition.job_id")
        c.state = state.c()
        c.at = at
        c.steps_done = stepsDone
        c.checkpoint_steps = checkpointSteps
        c.placement = try a.optionalMessage(placement)
        c.reason = try a.string(reason, "JobTransition.reason")
        c.transition_id = transitionID
        c.spread_part = spreadPart ? 1 : 0
    }
}

// MARK: - agents and nodes

extension GPUReport {
    func fill(_ c: inout Bourse__Gpu, _ a: CArena) throws(WireError) {
        c.gpu_id = try a.string(gpuID, "Gpu.gpu_id")
        c.gpu_type = try a.string(gpuType, "Gpu.gpu_type")
        c.healthy = healthy ? 1 : 0
        c.job_id = try a.string(jobID, "Gpu.job_id")
    }
}

extension JobProgress {
    func fill(_ c: inout Bourse__JobProgress, _ a: CArena) throws(WireError) {
        c.job_id = try a.string(jobID, "JobProgress.job_id")
        c.steps_done = stepsDone
        c.checkpoint_steps = checkpointSteps
        c.steps_per_second = stepsPerSecond
        c.workers = workers
        c.gpu_type = try a.string(gpuType, "JobProgress.gpu_type")
    }
}

extension NodeReport {
    func fill(_ c: inout Bourse__NodeReport, _ a: CArena) throws(WireError) {
        c.node_id = try a.string(nodeID, "NodeReport.node_id")
        c.rack = try a.string(rack, "NodeReport.rack")
        c.health = health.c()
        (c.n_gpus, c.gpus) = try a.messages(gpus)
    }
}

extension AgentRegister {
    func fill(_ c: inout Bourse__AgentRegister, _ a: CArena) throws(WireError) {
        c.agent_id = try a.string(agentID, "AgentRegister.agent_id")
        c.address = try a.string(address, "AgentRegister.address")
        (c.n_nodes, c.nodes) = try a.messages(nodes)
        (c.n_jobs, c.jobs) = try a.messages(jobs)
    }
}

extension AgentHeartbeat {
    func fill(_ c: inout Bourse__AgentHeartbeat, _ a: CArena) throws(WireError) {
        c.agent_id = try a.string(agentID, "AgentHeartbeat.agent_id")
        c.at = at
        (c.n_nodes, c.nodes) = try a.messages(nodes)
        (c.n_jobs, c.jobs) = try a.messages(jobs)
    }
}

extension WorkerCommand {
    func fill(_ c: inout Bourse__WorkerCommand, _ a: CArena) throws(WireError) {
        c.command_id = commandID
        c.kind = kind.c()
        c.job_id = try a.string(jobID, "WorkerCommand.job_id")
        c.job_type = try a.string(jobType, "WorkerCommand.job_type")
        (c.n_gpu_ids, c.gpu_ids) = try a.strings(gpuIDs, "WorkerCommand.gpu_ids")
        c.workers = workers
        c.resume_from_steps = resumeFromSteps
        c.total_steps = totalSteps
        c.restart_delay = restartDelay
        c.spread_workers = spreadWorkers
    }
}

extension CommandAck {
    func fill(_ c: inout Bourse__CommandAck, _ a: CArena) throws(WireError) {
        c.command_id = commandID
        c.ok = ok ? 1 : 0
        c.error = try a.string(error, "CommandAck.error")
        c.steps_done = stepsDone
        c.checkpoint_steps = checkpointSteps
    }
}

// MARK: - SWIM membership

extension MemberUpdate {
    func fill(_ c: inout Bourse__MemberUpdate, _ a: CArena) throws(WireError) {
        c.member_id = try a.string(memberID, "MemberUpdate.member_id")
        c.address = try a.string(address, "MemberUpdate.address")
        c.status = status.c()
        c.incarnation = incarnation
        c.role = role.c()
    }
}

extension AskPrice {
    func fill(_ c: inout Bourse__AskPrice, _ a: CArena) throws(WireError) {
        c.gpu_type = try a.string(gpuType, "AskPrice.gpu_type")
        c.ask = ask
        c.free_gpus = freeGpus
    }
}

extension ShardDigest {
    func fill(_ c: inout Bourse__ShardDigest, _ a: CArena) throws(WireError) {
        c.shard_id = try a.string(shardID, "ShardDigest.shard_id")
        (c.n_racks, c.racks) = try a.strings(racks, "ShardDigest.racks")
        (c.n_asks, c.asks) = try a.messages(asks)
        c.queued_jobs = queuedJobs
        c.round = round
        c.version = version
        (c.n_market_asks, c.market_asks) = try a.messages(marketAsks)
        c.trading = try a.optionalMessage(trading)
    }
}

extension TradingTotals {
    func fill(_ c: inout Bourse__TradingTotals, _ a: CArena) throws(WireError) {
        c.rounds = rounds
        c.phases = phases
        c.offers_sent = offersSent
        c.offers_received = offersReceived
        c.accepts = accepts
        c.rejects = rejects
        c.leases_granted = leasesGranted
        c.leases_ended = leasesEnded
        c.messages_sent = messagesSent
        c.leases_held = leasesHeld
        c.guests = guests
    }
}

extension GroupAsk {
    func fill(_ c: inout Bourse__GroupAsk, _ a: CArena) throws(WireError) {
        c.group = group
        c.price = price
        (c.n_units, c.units) = try a.scalars(units)
        (c.n_costs, c.costs) = try a.scalars(costs)
    }
}

extension Ping {
    func fill(_ c: inout Bourse__Ping, _ a: CArena) throws(WireError) {
        c.probe_id = probeID
        (c.n_updates, c.updates) = try a.messages(updates)
        (c.n_digests, c.digests) = try a.messages(digests)
    }
}

extension PingReq {
    func fill(_ c: inout Bourse__PingReq, _ a: CArena) throws(WireError) {
        c.probe_id = probeID
        c.target_id = try a.string(targetID, "PingReq.target_id")
        c.target_address = try a.string(targetAddress, "PingReq.target_address")
        (c.n_updates, c.updates) = try a.messages(updates)
        (c.n_digests, c.digests) = try a.messages(digests)
    }
}

extension Ack {
    func fill(_ c: inout Bourse__Ack, _ a: CArena) throws(WireError) {
        c.probe_id = probeID
        c.target_id = try a.string(targetID, "Ack.target_id")
        (c.n_updates, c.updates) = try a.messages(updates)
        (c.n_digests, c.digests) = try a.messages(digests)
    }
}

// MARK: - trading

extension TradeOffer {
    func fill(_ c: inout Bourse__TradeOffer, _ a: CArena) throws(WireError) {
        c.offer_id = offerID
        c.buyer_shard = try a.string(buyerShard, "TradeOffer.buyer_shard")
        c.job_id = try a.string(jobID, "TradeOffer.job_id")
        c.gpu_type = try a.string(gpuType, "TradeOffer.gpu_type")
        c.gpus = gpus
        c.bid = bid
        c.round = round
        c.lease_seconds = leaseSeconds
        c.buyer = buyer
        c.owner = owner
        c.group = group
        c.renewing_lease = try a.string(renewingLease, "TradeOffer.renewing_lease")
    }
}

extension TradeAccept {
    func fill(_ c: inout Bourse__TradeAccept, _ a: CArena) throws(WireError) {
        c.offer_id = offerID
        c.lease_id = try a.string(leaseID, "TradeAccept.lease_id")
        (c.n_gpu_ids, c.gpu_ids) = try a.strings(gpuIDs, "TradeAccept.gpu_ids")
        c.expires_at = expiresAt
        c.price = price
        c.owner = owner
        c.buyer = buyer
        c.job_id = try a.string(jobID, "TradeAccept.job_id")
        c.group = group
        c.units = units
    }
}

extension TradeReject {
    func fill(_ c: inout Bourse__TradeReject, _ a: CArena) throws(WireError) {
        c.offer_id = offerID
        c.ask = ask
        c.reason = try a.string(reason, "TradeReject.reason")
        c.owner = owner
        c.buyer = buyer
        c.job_id = try a.string(jobID, "TradeReject.job_id")
        c.group = group
    }
}

extension LeaseCommit {
    func fill(_ c: inout Bourse__LeaseCommit, _ a: CArena) throws(WireError) {
        c.lease_id = try a.string(leaseID, "LeaseCommit.lease_id")
        c.buyer = buyer
        c.job_id = try a.string(jobID, "LeaseCommit.job_id")
        c.round = round
        c.deal_gpus = dealGpus
        c.silent = silent ? 1 : 0
        c.rehome = rehome ? 1 : 0
    }
}

extension LeaseRelease {
    func fill(_ c: inout Bourse__LeaseRelease, _ a: CArena) throws(WireError) {
        c.lease_id = try a.string(leaseID, "LeaseRelease.lease_id")
        c.reason = try a.string(reason, "LeaseRelease.reason")
        c.buyer = buyer
        c.job_id = try a.string(jobID, "LeaseRelease.job_id")
    }
}

// MARK: - errors

extension WireErrorMessage {
    func fill(_ c: inout Bourse__Error, _ a: CArena) throws(WireError) {
        c.code = code.c()
        c.message = try a.string(message, "Error.message")
        c.field = try a.string(field, "Error.field")
    }
}
