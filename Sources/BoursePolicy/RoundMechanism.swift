/// The GPUs a round mechanism hands out: worker types in the order they are filled, and each
/// type's GPUs (worker ids) grouped by server.
public struct WorkerPool: Sendable, Hashable {
    /// Worker type names, in the order the mechanism fills them (Gavel: v100, p100, k80).
    public var types: [String]
    /// servers[t] = the servers of type t, each the list of its GPU (worker) ids.
    public var servers: [[[Int]]]

    public init(types: [String], servers: [[[Int]]]) {
        precondition(types.count == servers.count, "one server list per worker type")
        self.types = types
        self.servers = servers
    }

    /// GPUs per worker type.
    public var capacity: [Int] { servers.map { $0.reduce(0) { $0 + $1.count } } }
    /// The largest number of GPUs of type t on one server.
    public var maxGPUsPerServer: [Int] { servers.map { $0.map(\.count).max() ?? 0 } }

    /// Worker id -> index of its server among the servers of its type.
    public var serverIndexOfWorker: [Int: Int] {
        var out: [Int: Int] = [:]
        for list in servers { for (s, server) in list.enumerated() { for w in server { out[w] = s } } }
        return out
    }

    /// Identical servers pooled: per type, the servers of each size (largest size first).
    public var serverClasses: [(typeIndex: Int, size: Int, servers: [Int])] {
        var out: [(typeIndex: Int, size: Int, servers: [Int])] = []
        for t in types.indices {
            var bySize: [Int: [Int]] = [:]
            for (s, server) in servers[t].enumerated() where !server.isEmpty { bySize[server.count, default: []].append(s) }
            for size in bySize.keys.sorted(by: >) { out.append((t, size, bySize[size]!)) }
        }
        return out
    }

    /// The order Gavel's mechanism fills worker types in: v100, p100, k80 first (fastest first),
    /// then any other type in the given order.
    public static func gavelTypeOrder(_ types: [String]) -> [String] {
        let known = ["v100", "p100", "k80"]
        return known.filter(types.contains) + types.filter { !known.contains($0) }
    }
}

/// One job placed for the coming round.
public struct RoundAssignment: Sendable, Hashable {
    public var jobID: Int
    /// Index into `WorkerPool.types`.
    public var typeIndex: Int
    /// GPU (worker) ids, `scaleFactor` of them.
    public var workers: [Int]
    /// True when the job keeps exactly the GPUs it had in the previous round (Gavel's lease
    /// extension: no checkpoint-restart needed).
    public var keepsPreviousWorkers: Bool

    public init(jobID: Int, typeIndex: Int, workers: [Int], keepsPreviousWorkers: Bool) {
        self.jobID = jobID
        self.typeIndex = typeIndex
        self.workers = workers
        self.keepsPreviousWorkers = keepsPreviousWorkers
    }
}

/// Gavel's round-based scheduling mechanism, as a pure state machine shared by the simulator
/// and the live shards.
///
/// Each round: (1) when jobs arrived or left and enough time has passed since the last reset,
/// reset the time-received counters and ask the policy for a new allocation X; (2) priority of
/// job i on worker type j = X[i][j] / (fraction of type-j time i received since the last
/// reset); (3) walk worker types in order and, per type, jobs by decreasing (priority, deficit,
/// X), giving each job its `scaleFactor` GPUs if they are free and the job is not placed yet;
/// (4) place jobs on concrete GPUs, keeping a job on its previous GPUs when possible, largest
/// scale factors first. The caller runs the jobs for the round and reports the time each ran
/// with `recordExecution`.
///
/// Faithful to Gavel (scheduler.py at c4fa400) including its quirks: a job that arrived after
/// the last allocation has priority 0 and, although it may take GPUs in step (3), is not
/// placed until the next allocation; time counters restart at round/2 per job.
public struct GavelRoundMechanism: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Round length in seconds (Gavel's `time_per_iteration`).
        public var roundSeconds: Double
        /// An allocation is recomputed at most this often (Gavel's
        /// `minimum_time_between_allocation_resets`, 1920 s), and only when jobs changed.
        public var minimumTimeBetweenAllocationResets: Double

        public init(roundSeconds: Double = 360, minimumTimeBetweenAllocationResets: Double = 1920) {
            self.roundSeconds = roundSeconds
            self.minimumTimeBetweenAllocationResets = minimumTimeBetweenAllocationResets
        }
    }

    public private(set) var policy: any AllocationPolicy
    public let pool: WorkerPool
    public let configuration: Configuration
    /// The current allocation (for the jobs active when it was computed).
    public private(set) var allocation: Allocation
    /// How many times the policy has been asked for an allocation.
    public private(set) var allocationCount = 0
    public private(set) var lastResetTime: Double = 0
    public private(set) var needsNewAllocation = false

    /// Active jobs in the order they were added (Gavel breaks priority ties by it).
    private var order: [Int] = []
    /// Seconds each active job ran on each type since the last reset (starting at round/2).
    private var jobTime: [Int: [Double]] = [:]
    /// Sum of `jobTime` per type (plus time recorded since).
    private var workerTime: [Double]
    private var deficits: [Int: [Double]] = [:]
    /// Where each job ran in the previous round.
    private var previous: [Int: (type: Int, workers: [Int])] = [:]

    public init(policy: any AllocationPolicy, pool: WorkerPool, configuration: Configuration = Configuration()) {
        self.policy = policy
        self.pool = pool
        self.configuration = configuration
        self.allocation = Allocation(workerTypes: pool.types)
        self.workerTime = Array(repeating: 0, count: pool.types.count)
    }

    public var activeJobs: [Int] { order }

    /// A job arrived.
    public mutating func addJob(_ id: Int) {
        precondition(jobTime[id] == nil, "job \(id) added twice")
        order.append(id)
        jobTime[id] = Array(repeating: configuration.roundSeconds / 2, count: pool.types.count)
        deficits[id] = Array(repeating: 0, count: pool.types.count)
        needsNewAllocation = true
    }

    /// A job left (completed, failed or cancelled).
    public mutating func removeJob(_ id: Int) {
        guard jobTime.removeValue(forKey: id) != nil else { return }
        order.removeAll { $0 == id }
        deficits[id] = nil
        needsNewAllocation = true
    }

    /// Job `id` ran `seconds` on worker type `typeIndex` in the round that just ended.
    public mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double) {
        guard jobTime[id] != nil else { return }
        jobTime[id]![typeIndex] += seconds
        workerTime[typeIndex] += seconds
    }

    /// Forces the next `planRound` to recompute the allocation (if jobs changed) regardless of
    /// the minimum reset interval (Gavel does this when the cluster has gone idle).
    public mutating func requestAllocationReset() {
        lastResetTime = 0
    }

    /// Priority of every active job on every worker type, as `planRound` computes them.
    public func priorities(throughputs: [Int: [Double]]) -> [Int: [Double]] {
        var result: [Int: [Double]] = [:]
        for id in order {
            var row: [Double] = []
            for t in pool.types.indices {
                guard let x = allocation.fractions[id]?[t] else {
                    row.append(0)
                    continue
                }
                let fraction = workerTime[t] == 0 ? 0 : jobTime[id]![t] / workerTime[t]
                if x == 0 || (throughputs[id]?[t] ?? 0) == 0 {
                    row.append(0)
                } else if fraction > 0 {
                    row.append(x / fraction)
                } else {
                    row.append(x * 1e9)
                }
            }
            result[id] = row
        }
        return result
    }

    /// Plans the round starting at `now`. `jobs` are the active jobs (those added and not
    /// removed) with their current throughputs and remaining work.
    public mutating func planRound(now: Double, jobs: [PolicyJob]) throws -> [RoundAssignment] {
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        for id in order where byID[id] == nil { throw PolicyError("planRound: active job \(id) missing from the snapshot") }

        // (1) Reset and reallocate when due.
        let intervalElapsed = now - lastResetTime >= configuration.minimumTimeBetweenAllocationResets
        if needsNewAllocation && (intervalElapsed || lastResetTime == 0) {
            resetTimeReceived(now: now)
            let snapshot = PolicySnapshot(
                workerTypes: pool.types, capacity: pool.capacity, jobs: order.map { byID[$0]! }, now: now)
            allocation = try policy.allocate(snapshot)
            allocationCount += 1
            needsNewAllocation = false
        }

        // (2) Priorities.
        let throughputs = byID.mapValues(\.throughputs)
        let priority = priorities(throughputs: throughputs)

        // (3) Greedy selection, type by type.
        var left = pool.capacity
        var placed = Set<Int>()
        var selected: [[(id: Int, scale: Int)]] = Array(repeating: [], count: pool.types.count)
        for t in pool.types.indices {
            let entries = order.enumerated().map { position, id in
                (id: id, position: position, priority: priority[id]![t], deficit: deficits[id]![t],
                 x: allocation.fractions[id]?[t] ?? 0)
            }.sorted { a, b in
                if a.priority != b.priority { return a.priority > b.priority }
                if a.deficit != b.deficit { return a.deficit > b.deficit }
                if a.x != b.x { return a.x > b.x }
                return a.position < b.position
            }
            for entry in entries {
                if left[t] == 0 { break }
                if placed.contains(entry.id) { continue }
                let job = byID[entry.id]!
                if job.throughputs[t] <= 0 { continue }
                if policy.skipsZeroPriorityJobs && entry.priority <= 0 { continue }
                if job.scaleFactor > left[t] { continue }
                left[t] -= job.scaleFactor
                placed.insert(entry.id)
                selected[t].append((entry.id, job.scaleFactor))
            }
        }

        // (4) Placement on GPUs.
        var assignments: [RoundAssignment] = []
        var next: [Int: (type: Int, workers: [Int])] = [:]
        for t in pool.types.indices {
            var servers = pool.servers[t]
            var pointer = 0
            var taken = Set<Int>()
            var workersOf: [Int: [Int]] = [:]
            let jobsHere = selected[t].enumerated().sorted { a, b in
                a.element.scale != b.element.scale ? a.element.scale > b.element.scale : a.offset < b.offset
            }.map(\.element)
            var newOrder: [Int] = []
            for scale in Array(Set(jobsHere.map(\.scale))).sorted(by: >) {
                for (id, s) in jobsHere where s == scale {
                    if let prev = previous[id], prev.type == t, prev.workers.allSatisfy({ !taken.contains($0) }) {
                        workersOf[id] = prev.workers
                        taken.formUnion(prev.workers)
                        newOrder.append(id)
                    }
                }
                for (id, s) in jobsHere where s == scale {
                    // Gavel does not place jobs that arrived after the current allocation.
                    guard allocation.fractions[id] != nil else { continue }
                    var mine = workersOf[id] ?? []
                    while mine.count < s && pointer < servers.count {
                        if servers[pointer].isEmpty {
                            pointer += 1
                            continue
                        }
                        let worker = servers[pointer].removeFirst()
                        if !taken.contains(worker) {
                            mine.append(worker)
                            taken.insert(worker)
                        }
                    }
                    guard mine.count == s else {
                        throw PolicyError("placement: could not find \(s) free \(pool.types[t]) GPUs for job \(id)")
                    }
                    if workersOf[id] == nil { newOrder.append(id) }
                    workersOf[id] = mine
                }
            }
            for id in newOrder {
                let workers = workersOf[id]!
                let kept = previous[id].map { $0.type == t && Set($0.workers) == Set(workers) } ?? false
                assignments.append(RoundAssignment(jobID: id, typeIndex: t, workers: workers, keepsPreviousWorkers: kept))
                next[id] = (t, workers)
            }
        }
        previous = next
        return assignments
    }

    /// Gavel's `_reset_time_run_so_far`: fold the time each job should have received under the
    /// old allocation minus what it got into its deficit, and restart the counters at round/2.
    private mutating func resetTimeReceived(now: Double) {
        let elapsed = now - lastResetTime
        let half = configuration.roundSeconds / 2
        for t in pool.types.indices {
            workerTime[t] = 0
            for id in order {
                let received = jobTime[id]![t] - half
                let owed = (allocation.fractions[id]?[t] ?? 0) * elapsed
                deficits[id]![t] += owed - received
                jobTime[id]![t] = half
                workerTime[t] += half
            }
        }
        lastResetTime = now
    }
}
