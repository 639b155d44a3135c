import Foundation

/// Bourse's own policy: every round, price every job's candidate configurations and match job
/// demands to GPU groups with a per-group price auction (`PriceAuction`), then place the
/// chosen configurations on concrete GPUs. See docs/bourse-policy.md for the formula.
///
/// Pure: value types in, assignments out; the only state is where each job ran last round (so
/// restarts can be priced and jobs keep their GPUs).
public struct BourseRoundPlanner: RoundPlanner {
    public struct Parameters: Sendable, Hashable {
        /// Round length (s).
        public var roundSeconds: Double = 360
        /// Checkpoint-restart delay (s) a configuration change costs.
        public var restartSeconds: Double = 30
        /// Aging by projected finish-time fairness: a job whose projected rho (time in system
        /// plus remaining work at its fair-share throughput, over its time alone on a 1/N share
        /// of the cluster; = 1 + its lag behind its fair share / its isolated time) is r gets its
        /// value multiplied by 1 + (r / fairnessThreshold)^fairnessExponent.
        public var fairnessThreshold: Double = 0.8
        public var fairnessExponent: Double = 8
        /// Project the remaining work at the job's fair-share (isolated 1/N) throughput (false,
        /// the default: a fair-share-deficit measure) or at its best speed (true, optimistic).
        public var projectAtBestSpeed = false
        /// Latency-ratio fairness term (Hops' LR): the aging factor is further multiplied by
        /// (1 + LR)^latencyRatioWeight, LR = estimated waiting time / run time alone at the best
        /// speed. 0 (the default) leaves the price as it was; larger values favour the jobs that
        /// waited longest relative to their length (see docs/fairness.md).
        public var latencyRatioWeight: Double = 0
        /// Bonus for finishing early inside the round (fraction of a whole job's value).
        public var finishBonus: Double = 0.1
        /// Relative precision of the auction prices.
        public var epsilon: Double = 1e-7
        /// At most this many improving chains/cycles after the price phase (each costs one pass
        /// over the options).
        public var improvementLimit: Int = 64
        /// Name on the command line ("bourse" or "bourse-fixed").
        public var name: String = "bourse"

        public init() {}
    }

    /// A GPU group: identical GPUs (one type, one server size).
    public struct Group: Sendable, Hashable {
        public var typeIndex: Int
        public var serverSize: Int
        /// Servers of the group (indices into `pool.servers[typeIndex]`).
        public var servers: [Int]
        public var capacity: Int
    }

    /// Figures of the last planned round (for benchmarks and tests).
    public struct RoundStats: Sendable, Hashable {
        public var jobs = 0
        public var options = 0
        public var prunedOptions = 0
        public var probes = 0
        public var value = 0.0
        public var dualBound = 0.0
        public var prices: [Double] = []
    }

    public let pool: WorkerPool
    public let parameters: Parameters
    public let groups: [Group]
    public private(set) var allocationCount = 0
    public private(set) var lastStats = RoundStats()
    private var order: [Int] = []
    private var active = Set<Int>()
    /// Where each job ran in the previous round.
    private var current: [Int: (group: Int, workers: [Int])] = [:]
    /// server index -> server of that type holding a worker (per type).
    private let serverOfWorker: [Int: Int]

    /// The cluster the job values are computed against (capacity and largest server per type, for
    /// the fair-share aging): `pool` itself, or the whole cluster when this planner is one shard
    /// of several, so every shard values a job exactly as one central planner would.
    public let valuationPool: WorkerPool

    public init(pool: WorkerPool, parameters: Parameters = Parameters(), valuationPool: WorkerPool? = nil) {
        self.pool = pool
        self.parameters = parameters
        self.valuationPool = valuationPool ?? pool
        let groups = pool.serverClasses.map {
            Group(typeIndex: $0.typeIndex, serverSize: $0.size, servers: $0.servers, capacity: $0.size * $0.servers.count)
        }
        let serverOfWorker = pool.serverIndexOfWorker
        self.groups = groups
        self.serverOfWorker = serverOfWorker
    }

    public var name: String { parameters.name }
    public var gavelName: String { "-" }
    public var activeJobs: [Int] { order }

    public mutating func addJob(_ id: Int) {
        precondition(!active.contains(id), "job \(id) added twice")
        active.insert(id)
        order.append(id)
    }

    public mutating func removeJob(_ id: Int) {
        guard active.remove(id) != nil else { return }
        order.removeAll { $0 == id }
        current[id] = nil
    }

    public mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double) {}
    public mutating func requestAllocationReset() {}

    /// The value of running `job` with `speed` (work units/s) for the coming round: the
    /// fraction of its remaining work it completes, times its aging factor, with the restart
    /// delay taken off the round when the configuration changes. See docs/bourse-policy.md.
    public func value(of job: PolicyJob, speed: Double, changes: Bool, aging: Double) -> Double {
        let round = parameters.roundSeconds
        let delay = changes ? parameters.restartSeconds : 0
        let remaining = max(job.stepsRemaining, 1e-9)
        let work = speed * (round - delay)
        var fraction = min(work, remaining) / remaining
        if work >= remaining {
            let finish = delay + remaining / speed
            fraction += parameters.finishBonus * max(0, 1 - finish / round)
        }
        return job.priorityWeight * aging * fraction
    }

    /// 1 + (rho / threshold)^exponent, rho = the job's projected finish-time fairness: (time in
    /// system + remaining work at its fair-share throughput) / (total work / its throughput alone
    /// on a 1/N share of the cluster, N = active jobs), the share split over types as Gavel's isolated
    /// policy does (capacity_t / N / scale, scaled down to sum to at most 1).
    public func agingFactor(_ job: PolicyJob, totalWork: Double, bestSpeed: Double, activeJobs: Int) -> Double {
        let capacity = valuationPool.capacity
        let n = Double(max(activeJobs, 1))
        var share = capacity.map { Double($0) / n / Double(max(job.scaleFactor, 1)) }
        let sum = share.reduce(0, +)
        if sum > 1 { share = share.map { $0 / sum } }
        var isolated = 0.0
        for t in share.indices where t < job.throughputs.count { isolated += share[t] * job.throughputs[t] }
        guard isolated > 0, bestSpeed > 0, totalWork > 0 else { return 1 }
        let projected = parameters.projectAtBestSpeed ? bestSpeed : isolated
        let rho = (job.timeSinceArrival + job.stepsRemaining / projected) / (totalWork / isolated)
        let aging = 1 + pow(max(rho, 0) / parameters.fairnessThreshold, parameters.fairnessExponent)
        guard parameters.latencyRatioWeight > 0 else { return aging }
        // Waiting time estimated as time in system minus the time the work done took at best speed.
        let wait = max(0, job.timeSinceArrival - (totalWork - job.stepsRemaining) / bestSpeed)
        return aging * pow(1 + wait / (totalWork / bestSpeed), parameters.latencyRatioWeight)
    }

    /// A job's elastic profile (its trace configuration when it has none) and its aging factor
    /// among `activeJobs` jobs; nil when it has no work left.
    public func valuation(of job: PolicyJob, activeJobs: Int) -> (profile: ElasticProfile, aging: Double)? {
        guard job.stepsRemaining > 0 else { return nil }
        let profile =
            job.elastic
            ?? ElasticProfile(
                totalWork: job.stepsRemaining,
                options: [ElasticOption(workers: job.scaleFactor, packed: job.throughputs, spread: job.throughputs)])
        let best = profile.bestSpeed(capacity: valuationPool.capacity, maxPerServer: valuationPool.maxGPUsPerServer)
        let aging = agingFactor(job, totalWork: profile.totalWork, bestSpeed: best, activeJobs: activeJobs)
        return (profile, aging)
    }

    /// Where job `id` ran last round on this planner's GPUs: its group and GPU ids.
    public func currentPlacement(of id: Int) -> (group: Int, workers: [Int])? { current[id] }

    /// Whether the GPUs `workers` (of this pool) all sit on one server.
    public func onOneServer(_ workers: [Int]) -> Bool {
        Set(workers.map { serverOfWorker[$0] ?? -1 }).count <= 1
    }

    /// Takes `assignments` (made by someone else, e.g. the shards of a sharded run) as where jobs
    /// ran last round, so the next matching problem prices restarts against them. GPUs outside
    /// this pool are ignored.
    public mutating func adoptPlacements(_ assignments: [RoundAssignment]) {
        current = [:]
        for a in assignments {
            let mine = a.workers.filter { serverOfWorker[$0] != nil }
            guard let first = mine.first, mine.count == a.workers.count,
                let g = groups.firstIndex(where: {
                    $0.typeIndex == a.typeIndex && $0.servers.contains(serverOfWorker[first]!)
                })
            else { continue }
            current[a.jobID] = (g, a.workers)
        }
    }

    /// The matching problem of a round (exposed for tests and the benchmark): per job its
    /// undominated options (group, workers) with their values, and per option the worker count.
    /// `activeJobs`: the number of active jobs the fair share is computed over (default: `jobs`;
    /// a shard passes the cluster-wide count).
    public func matchingProblem(jobs: [PolicyJob], activeJobs: Int? = nil) -> (
        problem: MatchingProblem, workers: [[Int]], pruned: Int
    ) {
        let population = activeJobs ?? jobs.count
        var demands: [[MatchingOption]] = []
        var workersOf: [[Int]] = []
        var pruned = 0
        demands.reserveCapacity(jobs.count)
        for job in jobs {
            guard let (profile, aging) = valuation(of: job, activeJobs: population) else {
                demands.append([])
                workersOf.append([])
                continue
            }
            let now = current[job.id]
            var options: [MatchingOption] = []
            var counts: [Int] = []
            for (g, group) in groups.enumerated() {
                let t = group.typeIndex
                // (workers, value) on this group, then drop dominated ones: more GPUs, no more value.
                var here: [(w: Int, v: Double)] = []
                for o in profile.options where o.workers <= group.capacity {
                    let same = now.map { $0.group == g && $0.workers.count == o.workers } ?? false
                    var speed = o.workers <= group.serverSize ? o.packed[t] : o.spread[t]
                    if same, let now {
                        let servers = Set(now.workers.map { serverOfWorker[$0] ?? -1 })
                        speed = servers.count <= 1 ? o.packed[t] : o.spread[t]
                    }
                    guard speed > 0 else { continue }
                    here.append((o.workers, value(of: job, speed: speed, changes: !same, aging: aging)))
                }
                here.sort { $0.w != $1.w ? $0.w < $1.w : $0.v > $1.v }
                var bestSoFar = -Double.infinity
                for entry in here {
                    if entry.v <= bestSoFar {
                        pruned += 1
                        continue
                    }
                    bestSoFar = entry.v
                    options.append(MatchingOption(group: g, units: entry.w, value: entry.v))
                    counts.append(entry.w)
                }
            }
            demands.append(options)
            workersOf.append(counts)
        }
        return (MatchingProblem(capacity: groups.map(\.capacity), demands: demands), workersOf, pruned)
    }

    public mutating func planRound(now: Double, jobs: [PolicyJob]) throws -> [RoundAssignment] {
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        var ordered: [PolicyJob] = []
        ordered.reserveCapacity(order.count)
        for id in order {
            guard let job = byID[id] else { throw PolicyError("planRound: active job \(id) missing from the snapshot") }
            ordered.append(job)
        }
        let (problem, _, pruned) = matchingProblem(jobs: ordered)
        let solution = PriceAuction.solve(
            problem, epsilon: parameters.epsilon, maxImprovements: parameters.improvementLimit)
        allocationCount += 1
        lastStats = RoundStats(
            jobs: ordered.count, options: problem.demands.reduce(0) { $0 + $1.count }, prunedOptions: pruned,
            probes: solution.probes, value: solution.value, dualBound: solution.dualBound, prices: solution.prices)

        var picks: [Placement] = []
        for (j, job) in ordered.enumerated() {
            guard let c = solution.choice[j] else { continue }
            let o = problem.demands[j][c]
            picks.append(Placement(jobID: job.id, group: o.group, workers: o.units))
        }
        return try place(picks)
    }

    /// A job to place: `workers` GPUs of group `group`.
    public struct Placement: Sendable, Hashable {
        public var jobID: Int
        public var group: Int
        public var workers: Int
        public init(jobID: Int, group: Int, workers: Int) {
            self.jobID = jobID
            self.group = group
            self.workers = workers
        }
    }

    /// Places the chosen jobs on concrete GPUs (any job id: a shard also places the jobs it leased
    /// GPUs to) and makes that the current placement. Group by group: jobs keeping their
    /// configuration keep their GPUs; the others take the best-fitting server (fewest free GPUs
    /// that still hold them all), or the emptiest servers when they must spread.
    public mutating func place(_ picks: [Placement]) throws -> [RoundAssignment] {
        var chosen: [[(id: Int, workers: Int)]] = Array(repeating: [], count: groups.count)
        var used = Array(repeating: 0, count: groups.count)
        for p in picks {
            guard groups.indices.contains(p.group), p.workers > 0 else {
                throw PolicyError("placement: job \(p.jobID) asks for \(p.workers) GPUs of unknown group \(p.group)")
            }
            used[p.group] += p.workers
            chosen[p.group].append((p.jobID, p.workers))
        }
        for g in groups.indices where used[g] > groups[g].capacity {
            throw PolicyError(
                "placement: \(used[g]) GPUs chosen on group \(g) (\(pool.types[groups[g].typeIndex]), \(groups[g].capacity) GPUs)")
        }
        var assignments: [RoundAssignment] = []
        var next: [Int: (group: Int, workers: [Int])] = [:]
        for (g, group) in groups.enumerated() where !chosen[g].isEmpty {
            let t = group.typeIndex
            let size = group.serverSize
            var free: [Int: [Int]] = [:]  // server -> free GPU ids
            for s in group.servers { free[s] = pool.servers[t][s] }
            var placed: [Int: [Int]] = [:]
            for (id, w) in chosen[g] {
                guard let prev = current[id], prev.group == g, prev.workers.count == w else { continue }
                placed[id] = prev.workers
                for worker in prev.workers {
                    let s = serverOfWorker[worker]!
                    free[s]!.removeAll { $0 == worker }
                }
            }
            // Buckets of servers by free count (lazy: entries are checked when popped).
            var buckets: [[Int]] = Array(repeating: [], count: size + 1)
            for s in group.servers.reversed() { buckets[free[s]!.count].append(s) }
            func pop(_ f: Int) -> Int? {
                while let s = buckets[f].popLast() {
                    if free[s]!.count == f { return s }
                }
                return nil
            }
            func take(_ n: Int, from s: Int) -> [Int] {
                let ids = Array(free[s]!.prefix(n))
                free[s]!.removeFirst(n)
                buckets[free[s]!.count].append(s)
                return ids
            }
            let movers = chosen[g].filter { placed[$0.id] == nil }.sorted { $0.workers != $1.workers ? $0.workers > $1.workers : $0.id < $1.id }
            for (id, w) in movers {
                var mine: [Int] = []
                if w <= size {
                    for f in w...size {
                        if let s = pop(f) {
                            mine = take(w, from: s)
                            break
                        }
                    }
                }
                var f = size
                while mine.count < w && f > 0 {
                    if let s = pop(f) {
                        mine += take(min(f, w - mine.count), from: s)
                    } else {
                        f -= 1
                    }
                }
                guard mine.count == w else {
                    throw PolicyError("placement: could not find \(w) free \(pool.types[t]) GPUs for job \(id)")
                }
                placed[id] = mine
            }
            for (id, _) in chosen[g] {
                let workers = placed[id]!
                let kept = current[id].map { $0.group == g && Set($0.workers) == Set(workers) } ?? false
                assignments.append(RoundAssignment(jobID: id, typeIndex: t, workers: workers, keepsPreviousWorkers: kept))
                next[id] = (g, workers)
            }
        }
        current = next
        assignments.sort { $0.jobID < $1.jobID }
        return assignments
    }
}
