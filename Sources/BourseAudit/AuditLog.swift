import Foundation
import Synchronization

/// One line of the append-only audit log (JSON lines). Agents write what ran where
/// (`process_start`, `worker_start`, `worker_stop`, `checkpoint`, `node_failed`, `node_recovered`);
/// shards write one `command` per worker command they sent, `lease_granted` / `lease_ended`
/// for leases and `rack_adopted` when they take over a dead shard's rack. `t` is cluster time,
/// `wall` Unix seconds, `proc` the writer's member / agent id.
public struct AuditEvent: Codable, Sendable, Hashable {
    public var t: Double
    public var wall: Double
    public var proc: String
    public var ev: String
    public var job: String?
    public var gpus: [String]?
    /// worker_start: steps the worker resumes from; worker_stop: steps done at the stop.
    public var steps: Double?
    /// worker_start: when the worker begins to compute (after its restart delay). A start on
    /// the same GPUs before then (the agent found a newer shared checkpoint) replaces it.
    public var resumeAt: Double?
    /// worker_stop / checkpoint: the checkpoint the job can resume from.
    public var checkpoint: Double?
    public var total: Double?
    public var reason: String?
    public var node: String?
    /// command: start / stop / resize; its id and whether the agent acknowledged it.
    public var kind: String?
    public var command: UInt64?
    public var ok: Bool?
    public var agent: String?
    /// Leases.
    public var lease: String?
    public var owner: String?
    public var buyer: String?

    enum CodingKeys: String, CodingKey {
        case t, wall, proc, ev, job, gpus, steps, checkpoint, total, reason, node, kind, command, ok, agent, lease, owner, buyer
        case resumeAt = "resume_at"
    }

    public init(
        t: Double, wall: Double = Date().timeIntervalSince1970, proc: String, ev: String, job: String? = nil,
        gpus: [String]? = nil, steps: Double? = nil, resumeAt: Double? = nil, checkpoint: Double? = nil, total: Double? = nil,
        reason: String? = nil, node: String? = nil, kind: String? = nil, command: UInt64? = nil, ok: Bool? = nil,
        agent: String? = nil, lease: String? = nil, owner: String? = nil, buyer: String? = nil
    ) {
        self.t = t
        self.wall = wall
        self.proc = proc
        self.ev = ev
        self.job = job
        self.gpus = gpus
        self.steps = steps
        self.resumeAt = resumeAt
        self.checkpoint = checkpoint
        self.total = total
        self.reason = reason
        self.node = node
        self.kind = kind
        self.command = command
        self.ok = ok
        self.agent = agent
        self.lease = lease
        self.owner = owner
        self.buyer = buyer
    }
}

/// Append-only JSON-lines writer. Every event is one `write(2)` on a descriptor opened with
/// `O_APPEND` (no user-space buffer), so a SIGKILLed process loses nothing it logged; there is no
/// fsync (a machine crash is not a fault the chaos runner injects).
public final class AuditLog: Sendable {
    public let path: String
    public let process: String
    private let fd: Int32
    private let clock: @Sendable () -> Double
    private let lock = Mutex(())

    public init(path: String, process: String, clock: @escaping @Sendable () -> Double) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw AuditError("cannot open the audit log \(path): errno \(errno)") }
        self.fd = fd
        self.path = path
        self.process = process
        self.clock = clock
    }

    deinit { close(fd) }

    public var now: Double { clock() }

    /// Appends `event` (its `proc` is this log's process; `t` is filled from the clock if negative).
    public func record(_ event: AuditEvent) {
        var event = event
        event.proc = process
        if event.t < 0 { event.t = clock() }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(event) else { return }
        data.append(0x0A)
        lock.withLock { _ in
            data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
        }
    }

    public func record(_ ev: String, job: String? = nil, gpus: [String]? = nil, reason: String? = nil) {
        record(AuditEvent(t: -1, proc: process, ev: ev, job: job, gpus: gpus, reason: reason))
    }

    // MARK: The process-wide log (set once at start-up by the CLI; nil = no audit).

    private static let sharedLog = Mutex<AuditLog?>(nil)

    public static var shared: AuditLog? { sharedLog.withLock { $0 } }

    /// Opens `path` as this process's audit log and records `process_start`.
    public static func configure(path: String, process: String, clock: @escaping @Sendable () -> Double) throws {
        let log = try AuditLog(path: path, process: process, clock: clock)
        sharedLog.withLock { $0 = log }
        log.record("process_start")
    }

    /// Shard hook: one worker command sent to an agent and its outcome.
    public static func workerCommand(
        kind: String, commandID: UInt64, job: String, gpus: [String], agent: String, ok: Bool, error: String? = nil
    ) {
        guard let log = shared else { return }
        log.record(AuditEvent(
            t: -1, proc: log.process, ev: "command", job: job, gpus: gpus, reason: error, kind: kind, command: commandID,
            ok: ok, agent: agent))
    }

    /// Trading hook: a lease of `gpus` from `owner` to `buyer` for `job` starts.
    public static func leaseGranted(lease: String, owner: String, buyer: String, job: String, gpus: [String], at t: Double? = nil) {
        guard let log = shared else { return }
        log.record(AuditEvent(
            t: t ?? -1, proc: log.process, ev: "lease_granted", job: job, gpus: gpus, lease: lease, owner: owner, buyer: buyer))
    }

    /// Trading hook: the lease ends (returned, expired, revoked: `reason`).
    public static func leaseEnded(
        lease: String, owner: String, buyer: String, job: String, gpus: [String], reason: String, at t: Double? = nil
    ) {
        guard let log = shared else { return }
        log.record(AuditEvent(
            t: t ?? -1, proc: log.process, ev: "lease_ended", job: job, gpus: gpus, reason: reason, lease: lease, owner: owner,
            buyer: buyer))
    }

    /// This shard adopts the rack of a shard declared dead: the dead owner's leases end with it.
    public static func rackAdopted(rack: String, from formerShard: String) {
        guard let log = shared else { return }
        log.record(AuditEvent(
            t: -1, proc: log.process, ev: "rack_adopted", reason: "rack \(rack) adopted by \(log.process)", owner: formerShard))
    }

    /// Reads a JSON-lines file; a torn last line (a kill mid-write) is skipped and counted.
    public static func read(path: String) throws -> (events: [AuditEvent], skipped: Int) {
        guard let data = FileManager.default.contents(atPath: path) else { throw AuditError("cannot read \(path)") }
        let decoder = JSONDecoder()
        var events: [AuditEvent] = []
        var skipped = 0
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            if let event = try? decoder.decode(AuditEvent.self, from: Data(line)) { events.append(event) } else { skipped += 1 }
        }
        return (events, skipped)
    }
}

public struct AuditError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
