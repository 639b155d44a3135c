import BourseModel
import BourseTransport
import BourseWire
import Foundation
import Logging

/// Who is asking, for the tenant token hook.
public struct TenantRequest: Sendable, Hashable {
    /// The tenant the request concerns ("" when the request does not name one).
    public var tenant: String
    public var token: String
    /// The request kind, e.g. "submit_job".
    public var kind: String
}

/// An extra check of a request's tenant token (after the ``TenantDirectory``, if any). Kept for
/// embedding; `bourse gateway` uses the directory of the config's `security.tenants`.
public typealias TenantTokenCheck = @Sendable (TenantRequest) -> Bool

/// The gateway process's shell: decodes frames, feeds them to ``GatewayCore``, makes the core's
/// writes durable in the ``JobStore`` before answering, and logs.
///
/// Threading: the actor runs on its own dedicated thread (``DedicatedThreadExecutor``), not on
/// the cooperative pool, so the fsync of a durable commit never blocks one of the pool's few
/// threads. Requests are decided, committed and adopted within one actor turn (no suspension
/// between a decision and its commit); frames that queue up meanwhile are group-committed
/// (see ``handle(frame:)``).
public actor Gateway {
    private let executor: DedicatedThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var core: GatewayCore
    private let store: JobStore
    private let clock: @Sendable () -> Double
    private let logger: Logger
    private let tokenCheck: TenantTokenCheck?
    private let noticeSink: (@Sendable (ShardNotice) -> Void)?
    private let tenants: TenantDirectory?
    /// Stamps (and with a cluster key signs) replies; checks requests' HMACs and sequences.
    private var wire: WireEndpoint

    /// Loads the store's snapshot and starts the gateway's thread.
    /// - Parameters:
    ///   - clock: cluster time in seconds (default: wall clock, Unix epoch; the live cluster's
    ///     sped-up clock plugs in here).
    ///   - tokenCheck: tenant token hook (nil: no check).
    ///   - clusterKey: with a key, every request must carry a valid HMAC and a fresh sequence
    ///     (else UNAUTHORIZED), and replies are signed. nil: nothing is signed or checked.
    ///   - tenants: with a directory, client requests need a tenant token and are scoped to its
    ///     tenant. nil: one open tenant (any request sees every job).
    ///   - noticeSink: receives ``ShardNotice``s once their writes are durable (the shard link
    ///     plugs in here; nil: dropped).
    public init(
        settings: GatewaySettings, store: sending JobStore, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        logger: Logger = Logger(label: "bourse.gateway"), tokenCheck: TenantTokenCheck? = nil,
        noticeSink: (@Sendable (ShardNotice) -> Void)? = nil, clusterKey: ClusterKey? = nil, tenants: TenantDirectory? = nil
    ) throws(SQLiteError) {
        let snapshot = try store.loadSnapshot()
        self.core = GatewayCore(settings: settings, snapshot: snapshot)
        self.store = store
        self.clock = clock
        self.logger = logger
        self.tokenCheck = tokenCheck
        self.noticeSink = noticeSink
        self.tenants = tenants
        self.wire = WireEndpoint(senderID: settings.gatewayID, key: clusterKey)
        self.executor = DedicatedThreadExecutor(name: "bourse-gateway-store")
    }

    /// The settings a cluster config gives: every rack's shard may be a home shard.
    public static func settings(cluster: ClusterConfig, catalog: JobCatalog) -> GatewaySettings {
        GatewaySettings(shards: cluster.racks.map(\.shardID), catalog: catalog)
    }

    public var stats: GatewayStats { core.stats }
    /// The wire's counters: malformed frames, bad HMACs, replays.
    public var wireCounters: (malformed: Int, unauthenticated: Int, replayed: Int) {
        (wire.malformedFrames, wire.unauthenticatedFrames, wire.replayedFrames)
    }
    public var jobCount: Int { core.jobCount }
    public func job(_ id: String) -> JobRecord? { core.job(id) }
    public func history(jobID: String) throws(SQLiteError) -> [TransitionRecord] { try store.history(jobID: jobID) }

    /// Closes the store (releasing its lock). Later requests that must write are refused with
    /// UNAVAILABLE; reads still answer from memory.
    public func shutdown() {
        store.close()
        logger.info("job store closed")
    }

    /// Answers one frame with one frame. Never fails: bad input gets an Error envelope.
    ///
    /// Group commit: frames that arrive while the store is busy committing wait in a queue; the
    /// next turn decides all of them on one copy of the core and commits their writes in ONE
    /// durable transaction (one fsync), then answers each. If that transaction fails, the batch
    /// is redone one request per transaction, so one bad write cannot fail the others. A reply is
    /// never sent before its writes are durable.
    public func handle(frame: [UInt8]) async -> [UInt8] {
        await withCheckedContinuation { (continuation: CheckedContinuation<[UInt8], Never>) in
            queued.append((frame, continuation))
            if !drainScheduled {
                drainScheduled = true
                // Runs on this actor's executor after the turns already queued there (FIFO), so
                // frames arriving meanwhile join this batch.
                Task { self.drain() }
            }
        }
    }

    private var queued: [(frame: [UInt8], continuation: CheckedContinuation<[UInt8], Never>)] = []
    private var drainScheduled = false
    /// Durable transactions written, and the requests they carried (batch size = ratio).
    public private(set) var commits = (transactions: 0, requests: 0)

    private func drain() {
        let batch = queued
        queued.removeAll(keepingCapacity: true)
        drainScheduled = false
        guard !batch.isEmpty else { return }
        let now = clock()
        // Each frame is checked once (HMAC, replay window), before any decision: a batch redone
        // after a failed commit must not see its own frames as replays.
        let admitted = batch.map { admit($0.frame) }
        var next = core
        let decisions = admitted.map { decide($0, core: &next, now: now) }
        let writes = decisions.flatMap(\.writes)
        do {
            try store.apply(writes)
        } catch {
            if batch.count > 1 { logger.warning("group commit of \(batch.count) requests failed (\(error)); retrying one by one") }
            for (item, admission) in zip(batch, admitted) {
                let reply = run { core in decide(admission, core: &core, now: clock()) }
                item.continuation.resume(returning: encode(reply))
            }
            return
        }
        core = next
        if !writes.isEmpty {
            commits.transactions += 1
            commits.requests += decisions.count { !$0.writes.isEmpty }
        }
        for (item, decision) in zip(batch, decisions) {
            emit(decision)
            item.continuation.resume(returning: encode(decision.reply))
        }
    }

    /// A received frame after the wire's checks: a request, or why it was refused.
    private enum Admission {
        case request(Envelope)
        case refused(WireRejection, bytes: Int)
    }

    private func admit(_ frame: [UInt8]) -> Admission {
        switch wire.decode(frame) {
        case .success(let envelope): .request(envelope)
        case .failure(let rejection): .refused(rejection, bytes: frame.count)
        }
    }

    /// Decides one admitted frame on `core` (a copy the caller adopts after committing).
    private func decide(_ admission: Admission, core: inout GatewayCore, now: Double) -> GatewayDecision {
        switch admission {
        case .request(let request):
            return decide(request, core: &core, now: now)
        case .refused(.malformed(let error), let bytes):
            return core.malformedFrame(bytes: bytes, error: error.description)
        case .refused(let rejection, _):
            var decision = core.unauthorized(rejection.description)
            decision.log = decision.log.map { GatewayLogLine($0.level, "\($0.message) (frames refused: \(wire.counters))") }
            return decision
        }
    }

    private func decide(_ request: Envelope, core: inout GatewayCore, now: Double) -> GatewayDecision {
        var scope = TenantScope.open
        if let tenants, let token = Self.tenantToken(of: request.body) {
            if let tenant = tenants.tenant(forToken: token) {
                scope = .tenant(tenant)
            } else if token.isEmpty && tenants.internalSenders.contains(request.senderID) {
                scope = .open
            } else {
                return core.unauthorized(
                    token.isEmpty
                        ? "a \(request.body.kindName) needs a tenant token (--tenant-token or BOURSE_TENANT_TOKEN)"
                        : "unknown tenant token in a \(request.body.kindName) from '\(request.senderID)'",
                    field: "tenant_token")
            }
        }
        if let tokenCheck, let check = tenantRequest(request, core: core), !tokenCheck(check) {
            return core.unauthorized("tenant token refused for a \(check.kind) of tenant '\(check.tenant)'", field: "tenant_token")
        }
        return core.handle(request, now: now, scope: scope)
    }

    /// The tenant token of a client request; nil for other messages.
    private static func tenantToken(of body: Envelope.Body) -> String? {
        switch body {
        case .submitJob(let s): s.tenantToken
        case .jobStatusRequest(let q): q.tenantToken
        case .listJobsRequest(let l): l.tenantToken
        case .cancelJob(let c): c.tenantToken
        default: nil
        }
    }

    private func encode(_ reply: Envelope.Body) -> [UInt8] {
        let now = clock()
        do {
            return try wire.seal(reply, sentAt: now)
        } catch {
            // Only a reply too large for a frame gets here (a huge job list).
            logger.error("cannot encode a \(reply.kindName) reply: \(error)")
            return wire.encode(.error(WireErrorMessage(code: .internal, message: "cannot encode the reply: \(error)")), sentAt: now)
        }
    }

    /// Answers one decoded request in its own transaction (in-process callers and tests). The
    /// wire's checks (HMAC, replay) do not apply: the request did not come over the wire.
    public func handle(_ request: Envelope) -> Envelope.Body {
        let now = clock()
        return run { core in decide(request, core: &core, now: now) }
    }

    /// Runs a core step on a copy; adopts the copy only if its writes were committed.
    private func run(_ step: (inout GatewayCore) -> GatewayDecision) -> Envelope.Body {
        var next = core
        let decision = step(&next)
        do {
            try store.apply(decision.writes)
        } catch {
            core.storeFailed()
            logger.error("store write failed, request not applied: \(error)")
            return .error(WireErrorMessage(code: .unavailable, message: "the job store could not record this: \(error.message)"))
        }
        core = next
        if !decision.writes.isEmpty {
            commits.transactions += 1
            commits.requests += 1
        }
        emit(decision)
        return decision.reply
    }

    private func emit(_ decision: GatewayDecision) {
        for line in decision.log {
            switch line.level {
            case .debug: logger.debug("\(line.message)")
            case .info: logger.info("\(line.message)")
            case .warning: logger.warning("\(line.message)")
            case .error: logger.error("\(line.message)")
            }
        }
        if let noticeSink { decision.notices.forEach(noticeSink) }
    }

    private func tenantRequest(_ request: Envelope, core: GatewayCore) -> TenantRequest? {
        let kind = request.body.kindName
        switch request.body {
        case .submitJob(let s): return TenantRequest(tenant: s.spec?.tenant ?? "", token: s.tenantToken, kind: kind)
        case .jobStatusRequest(let q):
            return TenantRequest(tenant: core.job(q.jobID)?.spec.tenant ?? "", token: q.tenantToken, kind: kind)
        case .listJobsRequest(let l): return TenantRequest(tenant: "", token: l.tenantToken, kind: kind)
        case .cancelJob(let c):
            return TenantRequest(tenant: core.job(c.jobID)?.spec.tenant ?? "", token: c.tenantToken, kind: kind)
        default: return nil
        }
    }

    /// Serves `server` until it is closed: `concurrency` NNG contexts receive at once, and each
    /// request hops onto the gateway's thread.
    public nonisolated func serve(_ server: ReplyServer, concurrency: Int = 16) async throws(NNGError) {
        try await server.serve(concurrency: concurrency) { frame in await self.handle(frame: frame) }
    }
}

/// A serial executor with one thread of its own: jobs run in order, one at a time, on that
/// thread. Used so that SQLite's fsyncs happen off Swift's cooperative pool. The thread lives as
/// long as the process (one per gateway).
final class DedicatedThreadExecutor: SerialExecutor, @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var pending: [UnownedJob] = []

    init(name: String) {
        let thread = Thread { [self] in self.run() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        pending.append(job)
        condition.signal()
        condition.unlock()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    private func run() {
        while true {
            condition.lock()
            while pending.isEmpty { condition.wait() }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
        }
    }
}
