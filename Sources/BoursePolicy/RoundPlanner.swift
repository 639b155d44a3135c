/// One worker count an elastic job can run with, and how fast it then goes.
///
/// Speeds are in the job's own work units per second — the trace's steps at its trace scale
/// factor, so `speed(w) = steps/s(w) * w / traceScale` (a step at w workers processes
/// `batch * w` samples; the batch size cancels). Configurations with different worker counts
/// are compared in samples per second that way.
public struct ElasticOption: Sendable, Hashable {
    public var workers: Int
    /// Per pool worker type: speed when all workers sit on one server (consolidated).
    public var packed: [Double]
    /// Per pool worker type: speed when the workers are spread over servers (unconsolidated).
    public var spread: [Double]

    public init(workers: Int, packed: [Double], spread: [Double]) {
        self.workers = workers
        self.packed = packed
        self.spread = spread
    }
}

/// The elastic range of a job with its speeds (as the policy believes them: true or estimated).
public struct ElasticProfile: Sendable, Hashable {
    /// Total work in the same units as `PolicyJob.stepsRemaining`.
    public var totalWork: Double
    public var options: [ElasticOption]

    public init(totalWork: Double, options: [ElasticOption]) {
        self.totalWork = totalWork
        self.options = options
    }

    /// The best speed of any option on any type with at least `workers` GPUs of that type.
    public func bestSpeed(capacity: [Int], maxPerServer: [Int]) -> Double {
        var best = 0.0
        for o in options {
            for t in capacity.indices where capacity[t] >= o.workers {
                let s = o.workers <= maxPerServer[t] ? o.packed[t] : o.spread[t]
                best = max(best, s)
            }
        }
        return best
    }
}

/// What a simulator or a shard drives every round: jobs come and go, the planner places the
/// active ones on concrete GPUs for the next round, and is told how long each ran.
///
/// Gavel's mechanism (`GavelRoundMechanism`, a fractional allocation turned into priorities) is
/// one implementation; Bourse's price-and-matching planner (`BourseRoundPlanner`) another.
public protocol RoundPlanner: Sendable {
    /// Command-line name of the policy.
    var name: String { get }
    /// Gavel's name for it ("-" when it has none).
    var gavelName: String { get }
    /// Active jobs, in the order they were added.
    var activeJobs: [Int] { get }
    /// How many times a plan was recomputed (Gavel: allocations; Bourse: matchings).
    var allocationCount: Int { get }
    mutating func addJob(_ id: Int)
    mutating func removeJob(_ id: Int)
    mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double)
    /// The cluster went idle: allow an immediate re-plan.
    mutating func requestAllocationReset()
    /// Places the active jobs for the round starting at `now`.
    mutating func planRound(now: Double, jobs: [PolicyJob]) throws -> [RoundAssignment]
    /// Figures of a distributed planner's trading (offers, leases, messages, ...) for the metrics'
    /// `trading` object; empty for a single planner.
    var tradingFigures: [String: Double] { get }
}

extension RoundPlanner {
    public var tradingFigures: [String: Double] { [:] }
}

extension GavelRoundMechanism: RoundPlanner {
    public var name: String { policy.name }
    public var gavelName: String { policy.gavelName }
}
