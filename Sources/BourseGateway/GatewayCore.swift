import BourseWire

extension JobState {
    /// Completed, failed or cancelled: nothing changes a finished job any more.
    var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }

    /// The lower-case name used in logs and by the CLI ("pending", "running", ...).
    public var name: String {
        switch self {
        case .unspecified: "unspecified"
        case .pending: "pending"
        case .running: "running"
        case .restarting: "restarting"
        case .completed: "completed"
        case .failed: "failed"
        case .cancelled: "cancelled"
        case .unrecognized(let value): "state-\(value)"
        }
    }

    /// Parses a name as printed by ``name``.
    public init?(name: String) {
        switch name.lowercased() {
        case "pending": self = .pending
        case "running": self = .running
        case "restarting": self = .restarting
        case "completed": self = .completed
        case "failed": self = .failed
        case "cancelled", "canceled": self = .cancelled
        default: return nil
        }
    }
}

/// What the gateway is configured with.
public struct GatewaySettings: Sendable, Hashable {
    /// Member id the gateway answers as (the envelope's sender id).
    public var gatewayID: String
    /// Shard member ids that can be a job's home, in cluster-config order (e.g. "shard-r0").
    /// Later, gossip will narrow this to the live shards (``GatewayCore/setHomeShards(_:)``).
    public var shards: [String]
    /// Valid job types and worker counts.
    public var catalog: JobCatalog
    /// The gateway's SWIM incarnation at start. The gateway is a member that never probes, but it
    /// refutes: a ping telling it that it is suspect or dead at incarnation i makes it answer
    /// alive at i + 1, and every ack carries its own record. A restarted gateway must start above
    /// its previous life (the shell passes its start time in milliseconds).
    public var swimIncarnation: UInt64

    public init(gatewayID: String = "gateway", shards: [String], catalog: JobCatalog, swimIncarnation: UInt64 = 0) {
        self.gatewayID = gatewayID
        self.shards = shards
        self.catalog = catalog
        self.swimIncarnation = swimIncarnation
    }
}

/// Counters of what the gateway saw.
public struct GatewayStats: Sendable, Hashable {
    public var requests = 0
    public var malformed = 0
    /// Refused with UNAUTHORIZED: bad or missing HMAC, replayed frame, bad tenant token.
    public var unauthorized = 0
    public var accepted = 0
    public var duplicateSubmissions = 0
    public var rejected = 0
    public var cancelled = 0
    public var transitionsApplied = 0
    public var transitionsDuplicate = 0
    public var transitionsIgnored = 0
    public var storeFailures = 0

    public init() {}
}

/// Something the gateway tells a shard (executed by the shell once a shard link exists: the
/// live cluster's later part of issue 5). Emitted after the matching writes are durable.
public enum ShardNotice: Sendable, Hashable {
    /// A new job for its home shard.
    case newJob(shard: String, job: JobStatus)
    /// A pending or running job was cancelled: its shard must stop it.
    case cancelled(shard: String, jobID: String)
}

/// One log line the shell should write.
public struct GatewayLogLine: Sendable, Hashable {
    public enum Level: Sendable, Hashable { case debug, info, warning, error }
    public var level: Level
    public var message: String

    public init(_ level: Level, _ message: String) {
        self.level = level
        self.message = message
    }
}

/// The outcome of one request: the reply, the store writes that must be durable before the
/// reply is sent, notices for shards, and log lines.
public struct GatewayDecision: Sendable, Hashable {
    public var reply: Envelope.Body
    public var writes: [StoreWrite]
    public var notices: [ShardNotice]
    public var log: [GatewayLogLine]

    public init(reply: Envelope.Body, writes: [StoreWrite] = [], notices: [ShardNotice] = [], log: [GatewayLogLine] = []) {
        self.reply = reply
        self.writes = writes
        self.notices = notices
        self.log = log
    }
}

/// The gateway's logic as a value-type state machine: request in, new state plus a
/// ``GatewayDecision`` out. No I/O and no clock: the shell passes `now`, executes the writes (and
/// adopts the new state only once they are durable), then sends the reply.
///
/// The state is the whole job table in memory (a gateway's jobs number in the thousands to
/// hundreds of thousands; a row is a few hundred bytes), rebuilt from ``StoreSnapshot`` at start.
public struct GatewayCore: Sendable {
    public private(set) var settings: GatewaySettings
    public private(set) var stats = GatewayStats()
    /// Current SWIM incarnation (raised by refutations).
    public private(set) var swimIncarnation: UInt64
    private var jobs: [JobRecord] = []
    private var index: [String: Int] = [:]
    private var byIdempotencyKey: [IdempotencyKey: Int] = [:]
    private var appliedTransitions: Set<TransitionKey>
    private var nextSeq: Int64
    /// Unfinished jobs per home shard (for the least-loaded choice).
    private var load: [String: Int] = [:]
    /// The parts of jobs spread over racks that shards other than the reporting one run
    /// (``JobTransition/spreadPart``), by job and shard. In memory only: a part reports every
    /// round it runs. When the reporting shard's own GPUs change (a new split restarts every
    /// part), the parts heard before its previous report go.
    private var spreadParts: [String: [String: SpreadPart]] = [:]
    /// A counter over the reports of running spread jobs and their parts (`SpreadPart.arrival`),
    /// and by job the count at its reporting shard's last report.
    private var arrivals: UInt64 = 0
    private var lastReport: [String: UInt64] = [:]

    private struct SpreadPart: Sendable, Hashable {
        var placement: Placement
        var transitionID: UInt64
        var arrival: UInt64
    }

    private struct IdempotencyKey: Hashable {
        var tenant: String
        var key: String
    }

    public init(settings: GatewaySettings, snapshot: StoreSnapshot = StoreSnapshot()) {
        self.settings = settings
        self.swimIncarnation = settings.swimIncarnation
        self.appliedTransitions = snapshot.appliedTransitions
        self.nextSeq = (snapshot.jobs.map(\.seq).max() ?? 0) + 1
        for job in snapshot.jobs.sorted(by: { $0.seq < $1.seq }) { insert(job) }
    }

    // MARK: Queries

    public var jobCount: Int { jobs.count }
    public func job(_ id: String) -> JobRecord? { index[id].map { jobs[$0] } }
    /// Jobs in `states` (all when empty), in submission order.
    public func jobs(in states: [JobState] = []) -> [JobRecord] {
        states.isEmpty ? jobs : jobs.filter { states.contains($0.state) }
    }
    /// Unfinished jobs per home shard.
    public var shardLoad: [String: Int] { load }

    /// Replaces the shards that may receive new jobs (gossip's view of live shards, later).
    /// Existing jobs keep their home; re-homing a dead shard's jobs is the adoption protocol's job.
    public mutating func setHomeShards(_ shards: [String]) { settings.shards = shards }

    // MARK: Requests

    /// Handles one decoded request received at cluster time `now`.
    ///
    /// `scope`: whom a client request acts for. `.open` (no tenants configured): every job.
    /// `.tenant(t)`: a submission is stamped with tenant t (whatever its spec says), and status,
    /// list and cancel see only t's jobs (another tenant's job is NOT_FOUND, exactly like a job
    /// that does not exist, so ids of other tenants' jobs are not even confirmed).
    public mutating func handle(_ request: Envelope, now: Double, scope: TenantScope = .open) -> GatewayDecision {
        stats.requests += 1
        switch request.body {
        case .submitJob(var submit):
            if case .tenant(let tenant) = scope, submit.spec != nil { submit.spec?.tenant = tenant }
            return submitJob(submit, now: now)
        case .jobStatusRequest(let query):
            guard let job = job(query.jobID), Self.visible(job, in: scope) else { return notFound(query.jobID) }
            return GatewayDecision(reply: .jobStatus(status(of: job)))
        case .listJobsRequest(let list):
            let visible = jobs(in: list.states).filter { Self.visible($0, in: scope) }
            return GatewayDecision(reply: .listJobsReply(ListJobsReply(jobs: visible.map(status(of:)))))
        case .cancelJob(let cancel):
            guard let job = job(cancel.jobID), Self.visible(job, in: scope) else { return notFound(cancel.jobID) }
            return cancelJob(cancel.jobID, now: now)
        case .jobTransition(let transition): return apply(transition, from: request.senderID, now: now)
        case .ping(let ping):
            return swimPing(ping, from: request.senderID)
        default:
            stats.rejected += 1
            return GatewayDecision(
                reply: .error(WireErrorMessage(
                    code: .invalid, message: "the gateway does not handle \(request.body.kindName) messages")),
                log: [GatewayLogLine(.warning, "rejected a \(request.body.kindName) from '\(request.senderID)': not a gateway message")])
        }
    }

    /// Counts a frame that did not decode and answers it with a MALFORMED error.
    public mutating func malformedFrame(bytes: Int, error: String) -> GatewayDecision {
        stats.requests += 1
        stats.malformed += 1
        return GatewayDecision(
            reply: .error(WireErrorMessage(code: .malformed, message: error)),
            log: [GatewayLogLine(.warning, "dropped malformed frame #\(stats.malformed) (\(bytes) bytes): \(error)")])
    }

    /// Counts a request refused as unauthorized (bad HMAC, replay, bad tenant token) and answers
    /// it with an UNAUTHORIZED error. `message` goes to the client and the log; it must not
    /// contain a secret.
    public mutating func unauthorized(_ message: String, field: String = "") -> GatewayDecision {
        stats.requests += 1
        stats.unauthorized += 1
        return GatewayDecision(
            reply: .error(WireErrorMessage(code: .unauthorized, message: message, field: field)),
            log: [GatewayLogLine(.warning, "refused request #\(stats.unauthorized) as unauthorized: \(message)")])
    }

    private static func visible(_ job: JobRecord, in scope: TenantScope) -> Bool {
        switch scope {
        case .open: true
        case .tenant(let tenant): job.spec.tenant == tenant
        }
    }

    /// Records that the writes of a decision could not be stored (the shell keeps the old state).
    public mutating func storeFailed() { stats.storeFailures += 1 }

    // MARK: Submit

    private mutating func submitJob(_ submit: SubmitJob, now: Double) -> GatewayDecision {
        if let problem = settings.catalog.problem(with: submit.spec) {
            stats.rejected += 1
            return GatewayDecision(
                reply: .error(WireErrorMessage(code: .invalid, message: problem.message, field: problem.field)),
                log: [GatewayLogLine(.info, "rejected a submission: \(problem)")])
        }
        let spec = submit.spec ?? JobSpec()
        if !submit.idempotencyKey.isEmpty,
           let existing = byIdempotencyKey[IdempotencyKey(tenant: spec.tenant, key: submit.idempotencyKey)] {
            let job = jobs[existing]
            guard job.spec == spec else {
                stats.rejected += 1
                return GatewayDecision(
                    reply: .error(WireErrorMessage(
                        code: .invalid,
                        message: "idempotency key '\(submit.idempotencyKey)' was already used for \(job.id) with a different spec",
                        field: "idempotency_key")),
                    log: [GatewayLogLine(.info, "rejected a submission reusing the idempotency key of \(job.id)")])
            }
            stats.duplicateSubmissions += 1
            return GatewayDecision(
                reply: .submitAck(SubmitAck(jobID: job.id, homeShard: job.homeShard)),
                log: [GatewayLogLine(.info, "repeated submission (key '\(submit.idempotencyKey)'): answered with \(job.id)")])
        }
        let seq = nextSeq
        let home = chooseHomeShard()
        let job = JobRecord(
            seq: seq, id: JobRecord.id(forSeq: seq), spec: spec, idempotencyKey: submit.idempotencyKey, state: .pending,
            homeShard: home, submittedAt: now, updatedAt: now)
        nextSeq += 1
        insert(job)
        stats.accepted += 1
        let workers = spec.minWorkers == spec.maxWorkers && spec.minWorkers == 0
            ? "\(spec.workers)" : "\(spec.workers) in [\(spec.minWorkers == 0 ? spec.workers : spec.minWorkers), \(spec.maxWorkers == 0 ? spec.workers : spec.maxWorkers)]"
        return GatewayDecision(
            reply: .submitAck(SubmitAck(jobID: job.id, homeShard: home)),
            writes: [
                .insertJob(job),
                .appendTransition(TransitionRecord(
                    jobID: job.id, from: .unspecified, to: .pending, at: now, reason: "submitted",
                    source: settings.gatewayID)),
            ],
            notices: home.isEmpty ? [] : [.newJob(shard: home, job: job.status)],
            log: [GatewayLogLine(
                .info,
                "accepted \(job.id): '\(spec.jobType)', \(spec.totalSteps) steps, \(workers) workers"
                    + (spec.tenant.isEmpty ? "" : ", tenant '\(spec.tenant)'") + "; home \(home.isEmpty ? "(none)" : home)")])
    }

    /// The home shard of a new job: the configured shard with the fewest unfinished jobs, ties
    /// broken by config order. Deterministic; gossip digests (queued jobs, ask prices) refine it later.
    private func chooseHomeShard() -> String {
        var best: (shard: String, load: Int)?
        for shard in settings.shards {
            let l = load[shard, default: 0]
            if best == nil || l < best!.load { best = (shard, l) }
        }
        return best?.shard ?? ""
    }

    // MARK: Cancel

    private mutating func cancelJob(_ id: String, now: Double) -> GatewayDecision {
        guard let position = index[id] else { return notFound(id) }
        var job = jobs[position]
        if job.state.isFinished {
            return GatewayDecision(
                reply: .cancelAck(CancelAck(jobID: id, state: job.state)),
                log: [GatewayLogLine(.info, "cancel of \(id): already \(job.state.name), left as it is")])
        }
        let from = job.state
        job.state = .cancelled
        job.reason = "cancelled by request"
        forgetSpreadParts(of: job.id)
        job.finishedAt = now
        job.updatedAt = now
        replace(position, with: job)
        stats.cancelled += 1
        return GatewayDecision(
            reply: .cancelAck(CancelAck(jobID: id, state: .cancelled)),
            writes: [
                .updateJob(job),
                .appendTransition(TransitionRecord(
                    jobID: id, from: from, to: .cancelled, at: now, reason: job.reason, source: settings.gatewayID)),
            ],
            notices: job.homeShard.isEmpty ? [] : [.cancelled(shard: job.homeShard, jobID: id)],
            log: [GatewayLogLine(.info, "cancelled \(id) (was \(from.name))")])
    }

    // MARK: Membership

    /// Answers a SWIM ping (or a liveness ping) with an ack carrying the gateway's own record.
    /// Refutation, as any SWIM member does it: a record about the gateway at least as strong as
    /// its own (suspect or dead at its incarnation or above, or alive above it, e.g. of a
    /// previous life) raises its incarnation above that, so "alive" wins again everywhere.
    private mutating func swimPing(_ ping: Ping, from sender: String) -> GatewayDecision {
        var log: [GatewayLogLine] = []
        for u in ping.updates where u.memberID == settings.gatewayID {
            let accusation = u.status == .suspect || u.status == .dead
            guard u.incarnation > swimIncarnation || (u.incarnation == swimIncarnation && accusation) else { continue }
            swimIncarnation = u.incarnation == .max ? .max : u.incarnation + 1  // a forged maximum must not trap
            if accusation {
                log.append(GatewayLogLine(
                    .info, "refuted a \(u.status == .dead ? "death" : "suspicion") of \(settings.gatewayID) heard from \(sender): incarnation \(swimIncarnation)"))
            }
        }
        let myself = MemberUpdate(memberID: settings.gatewayID, status: .alive, incarnation: swimIncarnation, role: .gateway)
        return GatewayDecision(reply: .ack(Ack(probeID: ping.probeID, targetID: settings.gatewayID, updates: [myself])), log: log)
    }

    // MARK: Transitions from shards

    private mutating func apply(_ t: JobTransition, from sender: String, now: Double) -> GatewayDecision {
        func invalid(_ field: String, _ message: String) -> GatewayDecision {
            stats.rejected += 1
            return GatewayDecision(
                reply: .error(WireErrorMessage(code: .invalid, message: message, field: field)),
                log: [GatewayLogLine(.warning, "rejected a transition from '\(sender)': \(field): \(message)")])
        }
        if sender.isEmpty { return invalid("sender_id", "a job transition must name its shard in sender_id") }
        if t.transitionID == 0 { return invalid("transition_id", "a job transition needs a non-zero transition_id") }
        let key = TransitionKey(source: sender, transitionID: t.transitionID)
        guard let position = index[t.jobID] else { return notFound(t.jobID) }
        var job = jobs[position]
        if t.spreadPart { return applySpreadPart(t, from: sender, job: job) }
        if appliedTransitions.contains(key) {
            stats.transitionsDuplicate += 1
            return GatewayDecision(
                reply: .jobStatus(job.status),
                log: [GatewayLogLine(.debug, "transition \(t.transitionID) from \(sender) for \(t.jobID) already applied")])
        }
        switch t.state {
        case .pending, .running, .restarting, .completed, .failed, .cancelled: break
        default: return invalid("state", "a transition must move a job to a known state, got \(t.state.name)")
        }
        if job.state.isFinished {
            // A late report (e.g. the shard had not yet heard of a cancellation): the job stays
            // finished, and the reply tells the shard so.
            stats.transitionsIgnored += 1
            return GatewayDecision(
                reply: .jobStatus(job.status),
                log: [GatewayLogLine(
                    .info, "ignored \(t.state.name) for \(t.jobID) from \(sender): the job is already \(job.state.name)")])
        }
        let from = job.state
        let before = job.placement?.gpuIDs ?? []
        job.state = t.state
        job.stepsDone = t.stepsDone
        job.checkpointSteps = t.checkpointSteps
        if let placement = t.placement { job.placement = placement }
        // The other racks' parts belong to the placement they were reported with (a part may
        // report before the reporting shard in the same round: it stays).
        if t.state != .running {
            forgetSpreadParts(of: job.id)
        } else if spreadParts[job.id] != nil {
            let previous = lastReport[job.id] ?? 0
            arrivals += 1
            lastReport[job.id] = arrivals
            if job.placement?.gpuIDs != before { spreadParts[job.id] = spreadParts[job.id]!.filter { $0.value.arrival > previous } }
        }
        // A restart, as `bourse sim` counts them: the job starts again from a checkpoint after its
        // first start (back from the queue, or moved to other GPUs); a node failure's restart
        // counts once, when it is reported.
        if t.state == .restarting && from != .restarting { job.restarts += 1 }
        if t.state == .running && job.startedAt != 0 && from != .restarting
            && (from != .running || (t.placement.map { $0.gpuIDs != before && !$0.gpuIDs.isEmpty } ?? false))
        {
            job.restarts += 1
        }
        if t.state == .running && job.startedAt == 0 { job.startedAt = t.at }
        if t.state.isFinished {
            job.finishedAt = t.at
            job.placement = nil
        }
        if !t.reason.isEmpty { job.reason = t.reason }
        job.updatedAt = now
        replace(position, with: job)
        appliedTransitions.insert(key)
        stats.transitionsApplied += 1
        return GatewayDecision(
            reply: .jobStatus(job.status),
            writes: [
                .updateJob(job),
                .appendTransition(TransitionRecord(
                    jobID: job.id, from: from, to: t.state, at: t.at, reason: t.reason, source: sender,
                    transitionID: t.transitionID)),
            ],
            log: [GatewayLogLine(
                from == t.state ? .debug : .info,
                "\(job.id): \(from.name) -> \(t.state.name) (\(sender) #\(t.transitionID))"
                    + (t.reason.isEmpty ? "" : ": \(t.reason)"))])
    }

    /// A part of a spread job run by a shard that does not report the job: its GPUs join the
    /// job's placement while it runs (a report of any other state removes them). The job's state,
    /// progress and restarts are the reporting shard's alone.
    private mutating func applySpreadPart(_ t: JobTransition, from sender: String, job: JobRecord) -> GatewayDecision {
        if let known = spreadParts[job.id]?[sender], known.transitionID >= t.transitionID {
            stats.transitionsDuplicate += 1
            return GatewayDecision(reply: .jobStatus(status(of: job)))
        }
        let runs = t.state == .running && !job.state.isFinished
        if runs, let placement = t.placement, !placement.gpuIDs.isEmpty {
            arrivals += 1
            spreadParts[job.id, default: [:]][sender] = SpreadPart(
                placement: placement, transitionID: t.transitionID, arrival: arrivals)
        } else {
            spreadParts[job.id]?[sender] = nil
        }
        stats.transitionsApplied += 1
        return GatewayDecision(
            reply: .jobStatus(status(of: job)),
            log: [GatewayLogLine(
                .debug,
                "\(job.id): part on \(sender) \(runs ? "runs on \(t.placement?.gpuIDs.count ?? 0) GPUs" : "ended") (spread over racks)")])
    }

    private mutating func forgetSpreadParts(of id: String) {
        spreadParts[id] = nil
        lastReport[id] = nil
    }

    /// A job's status for clients: a running spread job's placement lists the GPUs of every
    /// rack's part (the reporting shard's first).
    private func status(of job: JobRecord) -> JobStatus {
        var status = job.status
        guard job.state == .running, var placement = status.placement, let parts = spreadParts[job.id], !parts.isEmpty
        else { return status }
        for (_, part) in parts.sorted(by: { $0.key < $1.key }) where part.placement.gpuType == placement.gpuType {
            placement.gpuIDs += part.placement.gpuIDs.filter { !placement.gpuIDs.contains($0) }
        }
        status.placement = placement
        return status
    }

    // MARK: Helpers

    private mutating func notFound(_ id: String) -> GatewayDecision {
        stats.rejected += 1
        return GatewayDecision(
            reply: .error(WireErrorMessage(
                code: .notFound, message: id.isEmpty ? "no job id given" : "no job '\(id)'", field: "job_id")))
    }

    private mutating func insert(_ job: JobRecord) {
        index[job.id] = jobs.count
        if !job.idempotencyKey.isEmpty {
            byIdempotencyKey[IdempotencyKey(tenant: job.spec.tenant, key: job.idempotencyKey)] = jobs.count
        }
        jobs.append(job)
        if !job.state.isFinished { load[job.homeShard, default: 0] += 1 }
        nextSeq = max(nextSeq, job.seq + 1)
    }

    private mutating func replace(_ position: Int, with job: JobRecord) {
        let old = jobs[position]
        if !old.state.isFinished { load[old.homeShard, default: 0] -= 1 }
        if !job.state.isFinished { load[job.homeShard, default: 0] += 1 }
        jobs[position] = job
    }
}
