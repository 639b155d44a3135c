import BourseWire

/// One job as the gateway keeps it: the spec as submitted plus everything shards reported.
public struct JobRecord: Sendable, Hashable {
    /// Monotonic, durable sequence number; the job id is derived from it.
    public var seq: Int64
    public var id: String
    public var spec: JobSpec
    /// "" = none. Unique per tenant.
    public var idempotencyKey: String
    public var state: JobState
    public var homeShard: String
    public var submittedAt: Double
    /// First start; 0 = never.
    public var startedAt: Double
    /// 0 = not finished.
    public var finishedAt: Double
    public var updatedAt: Double
    public var stepsDone: Double
    public var checkpointSteps: Double
    public var restarts: UInt32
    /// Why it failed or was cancelled (or the last reason a shard gave).
    public var reason: String
    public var placement: Placement?

    public init(
        seq: Int64, id: String, spec: JobSpec, idempotencyKey: String = "", state: JobState = .pending,
        homeShard: String = "", submittedAt: Double = 0, startedAt: Double = 0, finishedAt: Double = 0,
        updatedAt: Double = 0, stepsDone: Double = 0, checkpointSteps: Double = 0, restarts: UInt32 = 0,
        reason: String = "", placement: Placement? = nil
    ) {
        self.seq = seq
        self.id = id
        self.spec = spec
        self.idempotencyKey = idempotencyKey
        self.state = state
        self.homeShard = homeShard
        self.submittedAt = submittedAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.updatedAt = updatedAt
        self.stepsDone = stepsDone
        self.checkpointSteps = checkpointSteps
        self.restarts = restarts
        self.reason = reason
        self.placement = placement
    }

    /// The job id of sequence number `seq`: `j-000001`, `j-000002`, ... (wider past a million).
    public static func id(forSeq seq: Int64) -> String {
        let digits = String(seq)
        return "j-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The wire view.
    public var status: JobStatus {
        JobStatus(
            jobID: id, spec: spec, state: state, stepsDone: stepsDone, checkpointSteps: checkpointSteps,
            placement: placement, submittedAt: submittedAt, startedAt: startedAt, finishedAt: finishedAt,
            reason: reason, restarts: restarts, homeShard: homeShard)
    }
}

/// One row of the append-only state history.
public struct TransitionRecord: Sendable, Hashable {
    public var jobID: String
    public var from: JobState
    public var to: JobState
    public var at: Double
    public var reason: String
    /// Who made it: the gateway's id for submissions and cancellations, else the reporting shard.
    public var source: String
    /// The shard's transition id (idempotent application); nil for the gateway's own transitions.
    public var transitionID: UInt64?

    public init(
        jobID: String, from: JobState, to: JobState, at: Double, reason: String = "", source: String,
        transitionID: UInt64? = nil
    ) {
        self.jobID = jobID
        self.from = from
        self.to = to
        self.at = at
        self.reason = reason
        self.source = source
        self.transitionID = transitionID
    }
}

/// Identifies a shard's transition for idempotent application.
public struct TransitionKey: Sendable, Hashable {
    public var source: String
    public var transitionID: UInt64

    public init(source: String, transitionID: UInt64) {
        self.source = source
        self.transitionID = transitionID
    }
}

/// A change to the store, as decided by ``GatewayCore``. A batch is applied in one transaction.
public enum StoreWrite: Sendable, Hashable {
    case insertJob(JobRecord)
    case updateJob(JobRecord)
    case appendTransition(TransitionRecord)
}

/// Everything the gateway needs in memory after a (re)start.
public struct StoreSnapshot: Sendable, Hashable {
    /// Every job, by ascending sequence number.
    public var jobs: [JobRecord]
    /// Every shard transition already applied.
    public var appliedTransitions: Set<TransitionKey>

    public init(jobs: [JobRecord] = [], appliedTransitions: Set<TransitionKey> = []) {
        self.jobs = jobs
        self.appliedTransitions = appliedTransitions
    }
}

/// The gateway's durable job store: SQLite in WAL mode with `synchronous=FULL`, so a committed
/// batch survives a crash of the process or the machine.
///
/// Schema (version 1):
/// - `jobs`: one row per accepted job (spec fields, tenant, state, home shard, timestamps,
///   progress, restarts, reason, placement, idempotency key unique per tenant).
/// - `transitions`: append-only history (triggers refuse UPDATE and DELETE); `(source,
///   transition_id)` is unique, so a shard's transition is recorded at most once.
///
/// The connection takes SQLite's exclusive locking mode: while one gateway has the store open,
/// another process cannot write it (it fails at startup with "database is locked"), so two
/// gateways never hand out the same job id. The lock dies with the process, SIGKILL included.
///
/// Not `Sendable`: one owner uses it (``Gateway`` keeps it on its dedicated thread).
public final class JobStore {
    public let path: String
    private let connection: SQLiteConnection

    public static let schemaVersion = 1

    /// Opens (creating if needed) the store at `path`; ":memory:" gives a private in-memory store
    /// (tests).
    public init(path: String) throws(SQLiteError) {
        self.path = path
        connection = try SQLiteConnection(path: path)
        try connection.execute("PRAGMA busy_timeout = 2000", operation: "set busy timeout")
        try connection.execute("PRAGMA locking_mode = EXCLUSIVE", operation: "set exclusive locking")
        let mode = try connection.query("PRAGMA journal_mode = WAL").first?.first?.string ?? ""
        if path != ":memory:" && !path.isEmpty && mode.lowercased() != "wal" {
            throw SQLiteError(operation: "set WAL journal mode on \(path)", code: 1, message: "journal mode is '\(mode)'")
        }
        try connection.execute("PRAGMA synchronous = FULL", operation: "set synchronous=FULL")
        try connection.execute("PRAGMA foreign_keys = ON", operation: "enable foreign keys")
        try connection.transaction { () throws(SQLiteError) in
            try connection.execute(Self.schema, operation: "create schema")
            let version = try connection.query("PRAGMA user_version").first?.first?.int64 ?? 0
            if version == 0 {
                try connection.execute("PRAGMA user_version = \(Self.schemaVersion)", operation: "set schema version")
            } else if version != Int64(Self.schemaVersion) {
                throw SQLiteError(
                    operation: "open \(path)", code: 1,
                    message: "store schema version \(version), this gateway knows \(Self.schemaVersion)")
            }
        }
    }

    /// Closes the connection (finalising its statements). Further calls throw.
    public func close() { connection.close() }

    /// The journal mode and synchronous setting in force ("wal", 2 = FULL), for diagnostics.
    public func durabilitySettings() throws(SQLiteError) -> (journalMode: String, synchronous: Int64) {
        let mode = try connection.query("PRAGMA journal_mode").first?.first?.string ?? ""
        let sync = try connection.query("PRAGMA synchronous").first?.first?.int64 ?? -1
        return (mode, sync)
    }

    static let schema = """
        CREATE TABLE IF NOT EXISTS jobs (
            seq              INTEGER PRIMARY KEY,
            id               TEXT    NOT NULL UNIQUE,
            job_type         TEXT    NOT NULL,
            total_steps      INTEGER NOT NULL CHECK (total_steps > 0),
            workers          INTEGER NOT NULL,
            min_workers      INTEGER NOT NULL,
            max_workers      INTEGER NOT NULL,
            tenant           TEXT    NOT NULL,
            weight           REAL    NOT NULL,
            arrival_time     REAL    NOT NULL,
            slo              REAL    NOT NULL,
            name             TEXT    NOT NULL,
            idempotency_key  TEXT,
            state            INTEGER NOT NULL,
            home_shard       TEXT    NOT NULL,
            submitted_at     REAL    NOT NULL,
            started_at       REAL    NOT NULL,
            finished_at      REAL    NOT NULL,
            updated_at       REAL    NOT NULL,
            steps_done       REAL    NOT NULL,
            checkpoint_steps REAL    NOT NULL,
            restarts         INTEGER NOT NULL,
            reason           TEXT    NOT NULL,
            placement_gpu_type TEXT,
            placement_gpu_ids  TEXT,
            placement_shard    TEXT
        );
        CREATE UNIQUE INDEX IF NOT EXISTS jobs_idempotency ON jobs (tenant, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
        CREATE TABLE IF NOT EXISTS transitions (
            seq           INTEGER PRIMARY KEY AUTOINCREMENT,
            job_id        TEXT    NOT NULL REFERENCES jobs (id),
            from_state    INTEGER NOT NULL,
            to_state      INTEGER NOT NULL,
            at            REAL    NOT NULL,
            reason        TEXT    NOT NULL,
            source        TEXT    NOT NULL,
            transition_id INTEGER,
            UNIQUE (source, transition_id)
        );
        CREATE INDEX IF NOT EXISTS transitions_job ON transitions (job_id, seq);
        CREATE TRIGGER IF NOT EXISTS transitions_no_update BEFORE UPDATE ON transitions
            BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END;
        CREATE TRIGGER IF NOT EXISTS transitions_no_delete BEFORE DELETE ON transitions
            BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END;
        """

    // MARK: Writing

    /// Applies `writes` in one transaction; returns once it is durable. All or nothing.
    public func apply(_ writes: [StoreWrite]) throws(SQLiteError) {
        guard !writes.isEmpty else { return }
        try connection.transaction { () throws(SQLiteError) in
            for write in writes {
                switch write {
                case .insertJob(let job): try connection.query(Self.insertJob, Self.parameters(of: job))
                case .updateJob(let job): try connection.query(Self.updateJob, Self.parameters(of: job))
                case .appendTransition(let t):
                    try connection.query(
                        Self.insertTransition,
                        [
                            .text(t.jobID), .integer(Int64(t.from.rawValue)), .integer(Int64(t.to.rawValue)), .real(t.at),
                            .text(t.reason), .text(t.source),
                            t.transitionID.map { .integer(Int64(bitPattern: $0)) } ?? .null,
                        ])
                }
            }
        }
    }

    private static let jobColumns = """
        seq, id, job_type, total_steps, workers, min_workers, max_workers, tenant, weight, arrival_time, slo, name,
        idempotency_key, state, home_shard, submitted_at, started_at, finished_at, updated_at, steps_done,
        checkpoint_steps, restarts, reason, placement_gpu_type, placement_gpu_ids, placement_shard
        """
    private static let insertJob =
        "INSERT INTO jobs (\(jobColumns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
    // The spec, id and idempotency key never change after submission.
    private static let updateJob = """
        UPDATE jobs SET state = ?14, home_shard = ?15, started_at = ?17, finished_at = ?18, updated_at = ?19,
        steps_done = ?20, checkpoint_steps = ?21, restarts = ?22, reason = ?23, placement_gpu_type = ?24,
        placement_gpu_ids = ?25, placement_shard = ?26 WHERE seq = ?1 AND id = ?2
        """
    private static let insertTransition =
        "INSERT INTO transitions (job_id, from_state, to_state, at, reason, source, transition_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"

    private static func parameters(of job: JobRecord) -> [SQLValue] {
        let s = job.spec
        return [
            .integer(job.seq), .text(job.id), .text(s.jobType), .integer(Int64(bitPattern: s.totalSteps)),
            .integer(Int64(s.workers)), .integer(Int64(s.minWorkers)), .integer(Int64(s.maxWorkers)), .text(s.tenant),
            .real(s.weight), .real(s.arrivalTime), .real(s.slo), .text(s.name),
            job.idempotencyKey.isEmpty ? .null : .text(job.idempotencyKey), .integer(Int64(job.state.rawValue)),
            .text(job.homeShard), .real(job.submittedAt), .real(job.startedAt), .real(job.finishedAt),
            .real(job.updatedAt), .real(job.stepsDone), .real(job.checkpointSteps), .integer(Int64(job.restarts)),
            .text(job.reason), .optionalText(job.placement?.gpuType),
            .optionalText(job.placement.map { $0.gpuIDs.joined(separator: "\n") }),
            .optionalText(job.placement?.shardID),
        ]
    }

    // MARK: Reading

    /// Every job and every applied shard transition: what a restarted gateway starts from.
    public func loadSnapshot() throws(SQLiteError) -> StoreSnapshot {
        let jobs = try jobs()
        let rows = try connection.query("SELECT source, transition_id FROM transitions WHERE transition_id IS NOT NULL")
        var applied = Set<TransitionKey>()
        for row in rows {
            applied.insert(TransitionKey(source: row[0].string ?? "", transitionID: UInt64(bitPattern: row[1].int64)))
        }
        return StoreSnapshot(jobs: jobs, appliedTransitions: applied)
    }

    /// Jobs in `states` (all when empty), by ascending sequence number.
    public func jobs(states: [JobState] = []) throws(SQLiteError) -> [JobRecord] {
        let rows: [[SQLValue]]
        if states.isEmpty {
            rows = try connection.query("SELECT \(Self.jobColumns) FROM jobs ORDER BY seq")
        } else {
            let list = states.map { String($0.rawValue) }.joined(separator: ", ")
            rows = try connection.query("SELECT \(Self.jobColumns) FROM jobs WHERE state IN (\(list)) ORDER BY seq")
        }
        return rows.map(Self.job(from:))
    }

    /// One job, or nil.
    public func job(id: String) throws(SQLiteError) -> JobRecord? {
        try connection.query("SELECT \(Self.jobColumns) FROM jobs WHERE id = ?1", [.text(id)]).first.map(Self.job(from:))
    }

    /// The state history of one job, oldest first.
    public func history(jobID: String) throws(SQLiteError) -> [TransitionRecord] {
        let rows = try connection.query(
            "SELECT job_id, from_state, to_state, at, reason, source, transition_id FROM transitions WHERE job_id = ?1 ORDER BY seq",
            [.text(jobID)])
        return rows.map { row in
            TransitionRecord(
                jobID: row[0].string ?? "", from: JobState(rawValue: Int32(truncatingIfNeeded: row[1].int64)),
                to: JobState(rawValue: Int32(truncatingIfNeeded: row[2].int64)), at: row[3].double,
                reason: row[4].string ?? "", source: row[5].string ?? "",
                transitionID: row[6] == .null ? nil : UInt64(bitPattern: row[6].int64))
        }
    }

    /// Runs raw SQL (tests use it to check the append-only triggers).
    func executeRaw(_ sql: String) throws(SQLiteError) { try connection.execute(sql) }

    private static func job(from row: [SQLValue]) -> JobRecord {
        let spec = JobSpec(
            jobType: row[2].string ?? "", totalSteps: UInt64(bitPattern: row[3].int64),
            workers: UInt32(truncatingIfNeeded: row[4].int64), minWorkers: UInt32(truncatingIfNeeded: row[5].int64),
            maxWorkers: UInt32(truncatingIfNeeded: row[6].int64), tenant: row[7].string ?? "", weight: row[8].double,
            arrivalTime: row[9].double, slo: row[10].double, name: row[11].string ?? "")
        var placement: Placement?
        if row[23] != .null || row[24] != .null || row[25] != .null {
            let ids = row[24].string ?? ""
            placement = Placement(
                gpuType: row[23].string ?? "", gpuIDs: ids.isEmpty ? [] : ids.split(separator: "\n").map(String.init),
                shardID: row[25].string ?? "")
        }
        return JobRecord(
            seq: row[0].int64, id: row[1].string ?? "", spec: spec, idempotencyKey: row[12].string ?? "",
            state: JobState(rawValue: Int32(truncatingIfNeeded: row[13].int64)), homeShard: row[14].string ?? "",
            submittedAt: row[15].double, startedAt: row[16].double, finishedAt: row[17].double, updatedAt: row[18].double,
            stepsDone: row[19].double, checkpointSteps: row[20].double, restarts: UInt32(truncatingIfNeeded: row[21].int64),
            reason: row[22].string ?? "", placement: placement)
    }
}
