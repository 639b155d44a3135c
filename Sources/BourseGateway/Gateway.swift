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

/// Decides whether a request's tenant token is acceptable. The closed door (HMAC-signed tokens)
/// is issue 7; until then the gateway runs without a check (`nil`).
public typealias TenantTokenCheck = @Sendable (TenantRequest) -> Bool

/// The gateway process's shell: decodes frames, feeds them to ``GatewayCore``, makes the core's
/// writes durable in the ``JobStore`` before answering, and logs.
///
/// Threading: the actor runs on its own dedicated thread (``DedicatedThreadExecutor``), not on
/// the cooperative pool. Every request is handled synchronously within one actor turn (decide,
/// commit with fsync, adopt the new state, encode the reply), so requests are serialised and
/// never interleave between a decision and its commit, and the fsync of a durable commit never
/// blocks one of the pool's few threads.
public actor Gateway {
    private let executor: DedicatedThreadExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    private var core: GatewayCore
    private let store: JobStore
    private let clock: @Sendable () -> Double
    private let logger: Logger
    private let tokenCheck: TenantTokenCheck?
    private let noticeSink: (@Sendable (ShardNotice) -> Void)?
    private var sequence: UInt64 = 0

    /// Loads the store's snapshot and starts the gateway's thread.
    /// - Parameters:
    ///   - clock: cluster time in seconds (default: wall clock, Unix epoch; the live cluster's
    ///     sped-up clock plugs in here).
    ///   - tokenCheck: tenant token hook (nil: no check).
    ///   - noticeSink: receives ``ShardNotice``s once their writes are durable (the shard link
    ///     plugs in here; nil: dropped).
    public init(
        settings: GatewaySettings, store: sending JobStore, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        logger: Logger = Logger(label: "bourse.gateway"), tokenCheck: TenantTokenCheck? = nil,
        noticeSink: (@Sendable (ShardNotice) -> Void)? = nil
    ) throws(SQLiteError) {
        let snapshot = try store.loadSnapshot()
        self.core = GatewayCore(settings: settings, snapshot: snapshot)
        self.store = store
        self.clock = clock
        self.logger = logger
        self.tokenCheck = tokenCheck
        self.noticeSink = noticeSink
        self.executor = DedicatedThreadExecutor(name: "bourse-gateway-store")
    }

    /// The settings a cluster config gives: every rack's shard may be a home shard.
    public static func settings(cluster: ClusterConfig, catalog: JobCatalog) -> GatewaySettings {
        GatewaySettings(shards: cluster.racks.map(\.shardID), catalog: catalog)
    }

    public var stats: GatewayStats { core.stats }
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
    public func handle(frame: [UInt8]) -> [UInt8] {
        let reply: Envelope.Body
        do {
            reply = handle(try WireCodec.decode(frame))
        } catch {
            reply = run { core in core.malformedFrame(bytes: frame.count, error: error.description) }
        }
        sequence += 1
        let envelope = Envelope(senderID: core.settings.gatewayID, sequence: sequence, sentAt: clock(), body: reply)
        do {
            return try WireCodec.encode(envelope)
        } catch {
            // Only a reply too large for a frame gets here (a huge job list).
            logger.error("cannot encode a \(reply.kindName) reply: \(error)")
            let fallback = Envelope(
                senderID: core.settings.gatewayID, sequence: sequence,
                body: .error(WireErrorMessage(code: .internal, message: "cannot encode the reply: \(error)")))
            return (try? WireCodec.encode(fallback)) ?? []
        }
    }

    /// Answers one decoded request (in-process callers and tests).
    public func handle(_ request: Envelope) -> Envelope.Body {
        if let tokenCheck, let check = tenantRequest(request), !tokenCheck(check) {
            logger.warning("refused a \(check.kind) for tenant '\(check.tenant)': bad tenant token")
            return .error(WireErrorMessage(code: .unauthorized, message: "tenant token refused", field: "tenant_token"))
        }
        let now = clock()
        return run { core in core.handle(request, now: now) }
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
        for line in decision.log {
            switch line.level {
            case .debug: logger.debug("\(line.message)")
            case .info: logger.info("\(line.message)")
            case .warning: logger.warning("\(line.message)")
            case .error: logger.error("\(line.message)")
            }
        }
        if let noticeSink { decision.notices.forEach(noticeSink) }
        return decision.reply
    }

    private func tenantRequest(_ request: Envelope) -> TenantRequest? {
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
