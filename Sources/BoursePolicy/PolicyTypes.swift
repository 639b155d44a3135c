/// One job as a scheduling policy sees it: pure values, no I/O.
public struct PolicyJob: Sendable, Hashable {
    /// Stable id; smaller ids arrived earlier (FIFO order, tie-breaks).
    public var id: Int
    /// GPUs (workers) the job runs on at once.
    public var scaleFactor: Int
    public var priorityWeight: Double
    /// Steps per second of the whole job on each worker type, indexed like
    /// `PolicySnapshot.workerTypes`; 0 = cannot run there.
    public var throughputs: [Double]
    /// Steps still to run.
    public var stepsRemaining: Double
    /// Seconds since the job arrived.
    public var timeSinceArrival: Double
    /// The job's elastic configurations, for planners that resize jobs (Bourse); nil = fixed at
    /// `scaleFactor` with `throughputs` (Gavel's policies ignore it).
    public var elastic: ElasticProfile?
    /// The tenant the job belongs to (an index into the run's tenant list; 0 = the only tenant).
    public var tenant: Int = 0
    /// The tenant's weight (> 0); policies that share the cluster between tenants use it.
    public var tenantWeight: Double = 1

    public init(
        id: Int, scaleFactor: Int, priorityWeight: Double = 1, throughputs: [Double], stepsRemaining: Double,
        timeSinceArrival: Double = 0, elastic: ElasticProfile? = nil, tenant: Int = 0, tenantWeight: Double = 1
    ) {
        self.tenant = tenant
        self.tenantWeight = tenantWeight
        self.id = id
        self.scaleFactor = scaleFactor
        self.priorityWeight = priorityWeight
        self.throughputs = throughputs
        self.stepsRemaining = stepsRemaining
        self.timeSinceArrival = timeSinceArrival
        self.elastic = elastic
    }
}

/// What a policy is asked to allocate: the active jobs and the GPUs, at one instant.
public struct PolicySnapshot: Sendable, Hashable {
    /// Worker (GPU) type names, in a fixed order used by every per-type array.
    public var workerTypes: [String]
    /// GPUs of each worker type available to the policy.
    public var capacity: [Int]
    /// Active jobs, in id order.
    public var jobs: [PolicyJob]
    /// Current time (seconds), for policies that need it.
    public var now: Double

    public init(workerTypes: [String], capacity: [Int], jobs: [PolicyJob], now: Double = 0) {
        precondition(workerTypes.count == capacity.count, "one capacity per worker type")
        self.workerTypes = workerTypes
        self.capacity = capacity
        self.jobs = jobs
        self.now = now
    }

    public var totalGPUs: Int { capacity.reduce(0, +) }
}

/// A heterogeneity-aware allocation: for each job, the fraction of time it should spend on each
/// worker type (Gavel's X matrix). Per job the fractions sum to at most 1, and per worker type
/// `sum_jobs fraction * scaleFactor <= capacity`.
public struct Allocation: Sendable, Hashable {
    public var workerTypes: [String]
    /// job id -> fraction of time per worker type (indexed like `workerTypes`).
    public var fractions: [Int: [Double]]

    public init(workerTypes: [String], fractions: [Int: [Double]] = [:]) {
        self.workerTypes = workerTypes
        self.fractions = fractions
    }

    /// The fraction of time job `id` should spend on worker type `typeIndex`; 0 when unknown.
    public func fraction(job id: Int, type typeIndex: Int) -> Double {
        fractions[id]?[typeIndex] ?? 0
    }

    /// Effective throughput (steps/s) the allocation gives each job of `snapshot`.
    public func effectiveThroughput(of job: PolicyJob) -> Double {
        guard let row = fractions[job.id] else { return 0 }
        var sum = 0.0
        for (t, x) in row.enumerated() where t < job.throughputs.count { sum += x * job.throughputs[t] }
        return sum
    }
}

/// A scheduling policy that turns a snapshot into an allocation. Policies are values; a policy
/// that keeps state between calls (finish-time fairness does) updates it in `allocate`.
public protocol AllocationPolicy: Sendable {
    /// The name used on the command line (e.g. "gavel-las").
    var name: String { get }
    /// Gavel's name for the same policy (e.g. "max_min_fairness_perf").
    var gavelName: String { get }
    /// FIFO-style policies: the round mechanism never runs a job whose priority is 0 on a worker
    /// type (Gavel skips them for policies named FIFO*).
    var skipsZeroPriorityJobs: Bool { get }
    mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation
}

extension AllocationPolicy {
    public var skipsZeroPriorityJobs: Bool { false }
}

/// Why a policy or the round mechanism could not do its work.
public struct PolicyError: Error, CustomStringConvertible, Hashable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
