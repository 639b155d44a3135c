import BourseLP

// Gavel's heterogeneity-aware policies (Narayanan et al., OSDI 2020), formulated as linear
// programs over the allocation X[job][worker type] (fraction of time) and solved with GLPK.
// Every LP shares Gavel's base constraints:
//
//     X >= 0
//     sum_types X[i][j] <= 1                        for every job i
//     sum_jobs  X[i][j] * scaleFactor[i] <= n_j     for every worker type j
//
// Gavel solves its problems with cvxpy/ECOS, an interior-point solver: where the optimum is not
// unique it returns a point near the centre of the optimal face, not a vertex. The policies
// below therefore solve with GLPK's interior-point method by default (`lpMethod`), which lands
// on a comparable point; `.simplex` gives vertex solutions instead.

/// Builds the shared part of Gavel's allocation LPs for the jobs that can run somewhere.
struct AllocationLP {
    var lp: LinearProgram
    /// Snapshot job indices that have columns (jobs with a positive throughput somewhere).
    var jobIndices: [Int]
    /// column[k][t] = LP column of X[jobIndices[k]][t].
    var column: [[Int]]

    init(_ snapshot: PolicySnapshot, _ direction: LPDirection) {
        lp = LinearProgram(direction)
        jobIndices = snapshot.jobs.indices.filter { i in snapshot.jobs[i].throughputs.contains { $0 > 0 } }
        column = []
        let types = snapshot.workerTypes.count
        for i in jobIndices {
            let job = snapshot.jobs[i]
            var row: [Int] = []
            for t in 0..<types {
                // A job cannot use a worker type it has no throughput on.
                let usable = job.throughputs[t] > 0 && snapshot.capacity[t] > 0
                row.append(lp.addColumn(usable ? .atLeast(0) : .fixed(0)))
            }
            column.append(row)
            lp.addRow(row.map { LPTerm($0, 1) }, .atMost(1))
        }
        for t in 0..<types where !jobIndices.isEmpty {
            let terms = jobIndices.indices.map { k in LPTerm(column[k][t], Double(snapshot.jobs[jobIndices[k]].scaleFactor)) }
            lp.addRow(terms, .atMost(Double(snapshot.capacity[t])))
        }
    }

    /// Effective throughput of job k: sum_t thr[t] * X[k][t].
    func throughputTerms(_ snapshot: PolicySnapshot, _ k: Int, scale: Double = 1) -> [LPTerm] {
        let job = snapshot.jobs[jobIndices[k]]
        return job.throughputs.indices.compactMap { t in
            job.throughputs[t] > 0 ? LPTerm(column[k][t], job.throughputs[t] * scale) : nil
        }
    }

    /// The allocation in `solution`, clipped to [0, 1] as Gavel does; jobs without columns get 0.
    func allocation(_ snapshot: PolicySnapshot, _ solution: LPSolution) -> Allocation {
        var fractions: [Int: [Double]] = [:]
        for job in snapshot.jobs { fractions[job.id] = Array(repeating: 0, count: snapshot.workerTypes.count) }
        for (k, i) in jobIndices.enumerated() {
            var row = column[k].map { min(1, max(0, solution.values[$0])) }
            // Interior-point solutions may overshoot a bound by the solver's tolerance; scale
            // back so the base constraints hold exactly.
            let sum = row.reduce(0, +)
            if sum > 1 { row = row.map { $0 / sum } }
            fractions[snapshot.jobs[i].id] = row
        }
        for t in snapshot.workerTypes.indices {
            let used = snapshot.jobs.map { (fractions[$0.id]![t]) * Double($0.scaleFactor) }.reduce(0, +)
            let capacity = Double(snapshot.capacity[t])
            if used > capacity {
                let factor = capacity / used
                for job in snapshot.jobs { fractions[job.id]![t] *= factor }
            }
        }
        return Allocation(workerTypes: snapshot.workerTypes, fractions: fractions)
    }
}

/// Fractions a job would get from an equal split of the cluster: Gavel's "proportional" share,
/// X[i][j] = n_j / N on every worker type (N = all GPUs). Used to normalise throughputs.
func proportionalThroughput(_ job: PolicyJob, _ snapshot: PolicySnapshot) -> Double {
    let total = Double(snapshot.totalGPUs)
    guard total > 0 else { return 0 }
    var sum = 0.0
    for t in snapshot.workerTypes.indices { sum += job.throughputs[t] * Double(snapshot.capacity[t]) / total }
    return sum
}

/// Gavel's "isolated" share: the cluster split equally over the m active jobs in GPU terms,
/// X[i][j] = n_j / (m * s_i), scaled down so that no job gets more than all of its time.
func isolatedFractions(_ job: PolicyJob, _ snapshot: PolicySnapshot) -> [Double] {
    let m = Double(max(snapshot.jobs.count, 1))
    let s = Double(job.scaleFactor)
    var x = snapshot.capacity.map { Double($0) / m / s }
    let rowSum = x.reduce(0, +)
    if rowSum > 1 { x = x.map { $0 / rowSum } }
    return x
}

func isolatedThroughput(_ job: PolicyJob, _ snapshot: PolicySnapshot) -> Double {
    let x = isolatedFractions(job, snapshot)
    var sum = 0.0
    for t in x.indices { sum += x[t] * job.throughputs[t] }
    return sum
}

/// The highest throughput job k can reach alone under the base constraints (fill its best
/// worker types first, each up to n_j / s of its time).
func maximumThroughput(_ job: PolicyJob, _ snapshot: PolicySnapshot) -> Double {
    let order = snapshot.workerTypes.indices.sorted { job.throughputs[$0] > job.throughputs[$1] }
    var left = 1.0
    var sum = 0.0
    for t in order where job.throughputs[t] > 0 && left > 0 {
        let x = min(left, Double(snapshot.capacity[t]) / Double(job.scaleFactor))
        sum += x * job.throughputs[t]
        left -= x
    }
    return sum
}

// MARK: - fifo (Gavel: fifo_perf)

/// Heterogeneity-aware FIFO (Gavel's `fifo_perf`): in arrival order, each job gets all of its
/// time on the fastest worker type that still has `scaleFactor` free GPUs; the first job that
/// fits nowhere stops the queue (no back-filling).
public struct FIFOPolicy: AllocationPolicy {
    public let name = "fifo"
    public let gavelName = "fifo_perf"
    public var skipsZeroPriorityJobs: Bool { true }

    public init() {}

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        let n = snapshot.workerTypes.count
        var fractions: [Int: [Double]] = [:]
        for job in snapshot.jobs { fractions[job.id] = Array(repeating: 0, count: n) }
        var free = snapshot.capacity
        // Gavel walks worker types in name order; the first of equally fast types wins.
        var available = snapshot.workerTypes.indices.filter { free[$0] > 0 }
            .sorted { snapshot.workerTypes[$0] < snapshot.workerTypes[$1] }
        for job in snapshot.jobs.sorted(by: { $0.id < $1.id }) {
            if available.isEmpty { break }
            let fitting = available.filter { free[$0] >= job.scaleFactor }
            if fitting.isEmpty { break }
            var best = fitting[0]
            var bestThroughput = -1.0
            for t in fitting where job.throughputs[t] > bestThroughput {
                best = t
                bestThroughput = job.throughputs[t]
            }
            guard job.throughputs[best] > 0 else { continue }
            fractions[job.id]![best] = 1
            free[best] -= job.scaleFactor
            if free[best] == 0 { available.removeAll { $0 == best } }
        }
        return Allocation(workerTypes: snapshot.workerTypes, fractions: fractions)
    }
}

// MARK: - gavel-las (Gavel: max_min_fairness_perf)

/// Heterogeneity-aware least-attained-service / max-min fairness (Gavel's
/// `max_min_fairness_perf`): maximise the minimum over jobs of
/// `scaleFactor / weight * (sum_j thr[i][j] X[i][j]) / proportionalThroughput[i]`,
/// i.e. every job's throughput relative to what an equal split of the cluster would give it.
public struct MaxMinFairnessPolicy: AllocationPolicy {
    public let name = "gavel-las"
    public let gavelName = "max_min_fairness_perf"
    public var lpMethod: LPMethod

    public init(lpMethod: LPMethod = .interiorPoint) { self.lpMethod = lpMethod }

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        let base = AllocationLP(snapshot, .maximize)
        guard !base.jobIndices.isEmpty else { return base.allocation(snapshot, emptySolution) }
        let rows = base.jobIndices.indices.map { k -> [LPTerm] in
            let job = snapshot.jobs[base.jobIndices[k]]
            let scale = Double(job.scaleFactor) / (job.priorityWeight * proportionalThroughput(job, snapshot))
            return base.throughputTerms(snapshot, k, scale: scale)
        }
        // max t  s.t.  t <= normalised throughput of every job. The simplex method finds t*;
        // the t column touches every row, which makes interior-point steps dense and slow, so
        // the centred solution comes from a second, feasibility-only program without it.
        var lp = base.lp
        let t = lp.addColumn(.free, objective: 1)
        for terms in rows { lp.addRow(terms + [LPTerm(t, -1)], .atLeast(0)) }
        let vertex = try lp.solve(method: .simplex)
        guard lpMethod == .interiorPoint else { return base.allocation(snapshot, vertex) }
        let best = vertex.values[t]
        var centred = base.lp
        for terms in rows { centred.addRow(terms, .atLeast(best * (1 - 1e-6))) }
        guard let solution = try? centred.solve(method: .interiorPoint) else { return base.allocation(snapshot, vertex) }
        return base.allocation(snapshot, solution)
    }
}

// MARK: - gavel-ftf (Gavel: finish_time_fairness_perf)

/// Heterogeneity-aware finish-time fairness (Themis' metric, Gavel's
/// `finish_time_fairness_perf`): minimise the maximum over jobs of
///
///     rho_i = (timeSinceArrival_i + remaining_i / throughput_i(X))
///             / (isolatedTimeSoFar_i + remaining_i / isolatedThroughput_i)
///
/// where the isolated throughput is the job's 1/m share of the cluster and isolatedTimeSoFar
/// accumulates, call after call, the time the progress made so far would have taken in
/// isolation (policy state). The objective is quasi-convex: bisection on rho, each step a
/// feasibility LP `throughput_i(X) >= remaining_i / (rho * E_i - t_i)`.
public struct FinishTimeFairnessPolicy: AllocationPolicy {
    public let name = "gavel-ftf"
    public let gavelName = "finish_time_fairness_perf"
    public var lpMethod: LPMethod
    private var cumulativeIsolatedTime: [Int: Double] = [:]
    private var previousRemaining: [Int: Double] = [:]
    private var previousIsolatedThroughput: [Int: Double] = [:]

    public init(lpMethod: LPMethod = .interiorPoint) { self.lpMethod = lpMethod }

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        guard !snapshot.jobs.isEmpty else {
            previousRemaining = [:]
            previousIsolatedThroughput = [:]
            return Allocation(workerTypes: snapshot.workerTypes)
        }
        var isolated: [Double] = []
        for job in snapshot.jobs {
            let iso = isolatedThroughput(job, snapshot)
            isolated.append(iso)
            var cumulative = cumulativeIsolatedTime[job.id] ?? 0
            if let before = previousRemaining[job.id], let prevIso = previousIsolatedThroughput[job.id], prevIso > 0 {
                cumulative += (before - job.stepsRemaining) / prevIso
            }
            cumulativeIsolatedTime[job.id] = cumulative
        }
        previousRemaining = Dictionary(uniqueKeysWithValues: snapshot.jobs.map { ($0.id, $0.stepsRemaining) })
        previousIsolatedThroughput = Dictionary(
            uniqueKeysWithValues: zip(snapshot.jobs.map(\.id), isolated).map { ($0, $1) })
        // Forget jobs that left.
        let active = Set(snapshot.jobs.map(\.id))
        cumulativeIsolatedTime = cumulativeIsolatedTime.filter { active.contains($0.key) }

        if let allocation = try? solve(snapshot, isolated) { return allocation }
        // Gavel falls back to the isolated allocation when its solver returns nothing.
        var fractions: [Int: [Double]] = [:]
        for job in snapshot.jobs { fractions[job.id] = isolatedFractions(job, snapshot) }
        return Allocation(workerTypes: snapshot.workerTypes, fractions: fractions)
    }

    private func solve(_ snapshot: PolicySnapshot, _ isolated: [Double]) throws -> Allocation {
        let base = AllocationLP(snapshot, .minimize)
        guard !base.jobIndices.isEmpty else { return base.allocation(snapshot, emptySolution) }
        // Per job (with columns): t_i, R_i, E_i and the best throughput it could reach.
        var t: [Double] = []
        var r: [Double] = []
        var e: [Double] = []
        // Tenant/priority weights: a job of weight w must reach rho_i <= rho / w (weight 1 is Gavel).
        var w: [Double] = []
        var lower = 0.0
        for i in base.jobIndices {
            let job = snapshot.jobs[i]
            guard isolated[i] > 0 else { throw PolicyError("job \(job.id) has no isolated throughput") }
            let ei = (cumulativeIsolatedTime[job.id] ?? 0) + job.stepsRemaining / isolated[i]
            let best = maximumThroughput(job, snapshot)
            t.append(job.timeSinceArrival)
            r.append(job.stepsRemaining)
            e.append(ei)
            w.append(job.priorityWeight)
            lower = max(lower, job.priorityWeight * (job.timeSinceArrival + job.stepsRemaining / best) / ei)
        }
        func program(_ rho: Double) -> LinearProgram? {
            var lp = base.lp
            for k in base.jobIndices.indices {
                let slack = rho * e[k] / w[k] - t[k]
                guard slack > 0 else { return nil }
                lp.addRow(base.throughputTerms(snapshot, k), .atLeast(r[k] / slack))
            }
            return lp
        }
        func feasible(_ rho: Double) throws -> Bool {
            guard let lp = program(rho) else { return false }
            do {
                _ = try lp.solve(method: .simplex)
                return true
            } catch LPError.infeasible {
                return false
            }
        }
        var lo = lower
        var hi = lower
        if try !feasible(hi) {
            hi = lower * 1.5
            var tries = 0
            while try !feasible(hi) {
                lo = hi
                hi *= 2
                tries += 1
                if tries > 200 { throw PolicyError("finish-time fairness: no feasible rho found") }
            }
            for _ in 0..<100 where (hi - lo) > 1e-9 * hi {
                let mid = (lo + hi) / 2
                if try feasible(mid) { hi = mid } else { lo = mid }
            }
        }
        // Solve once more a hair above the optimum, so the feasible set still has an interior
        // for the interior-point method to centre in.
        guard let lp = program(hi * (1 + 1e-6)) ?? program(hi) else {
            throw PolicyError("finish-time fairness: bisection failed")
        }
        return base.allocation(snapshot, try lp.solve(method: lpMethod))
    }
}

// MARK: - gavel-maxsum (Gavel: max_sum_throughput_perf)

/// Maximise the total throughput (sum over jobs of steps/s) under the base constraints (Gavel's
/// `max_sum_throughput_perf`; throughputs are not normalised, as in Gavel).
public struct MaxSumThroughputPolicy: AllocationPolicy {
    public let name = "gavel-maxsum"
    public let gavelName = "max_sum_throughput_perf"
    public var lpMethod: LPMethod

    public init(lpMethod: LPMethod = .interiorPoint) { self.lpMethod = lpMethod }

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        var model = AllocationLP(snapshot, .maximize)
        guard !model.jobIndices.isEmpty else { return model.allocation(snapshot, emptySolution) }
        for k in model.jobIndices.indices {
            // Weighted by the job's priority (tenant) weight; weight 1 is Gavel's objective.
            let weight = snapshot.jobs[model.jobIndices[k]].priorityWeight
            for term in model.throughputTerms(snapshot, k) { model.lp.setObjective(term.column, weight * term.coefficient) }
        }
        return model.allocation(snapshot, try model.lp.solve(method: lpMethod))
    }
}

// MARK: - gavel-makespan (Gavel: min_total_duration_perf)

/// Minimise the time T by which all active jobs finish (Gavel's `min_total_duration_perf`):
/// Gavel's own search over T (halving [100 s, 10^6 s] until within 5 %, widening by 10x when
/// nothing is feasible), each step the feasibility LP `throughput_i(X) >= remaining_i / T`; the
/// allocation is that of the smallest feasible T found.
public struct MinTotalDurationPolicy: AllocationPolicy {
    public let name = "gavel-makespan"
    public let gavelName = "min_total_duration_perf"
    public var lpMethod: LPMethod

    public init(lpMethod: LPMethod = .interiorPoint) { self.lpMethod = lpMethod }

    public mutating func allocate(_ snapshot: PolicySnapshot) throws -> Allocation {
        let base = AllocationLP(snapshot, .maximize)
        guard !base.jobIndices.isEmpty else { return base.allocation(snapshot, emptySolution) }
        func program(_ horizon: Double) -> LinearProgram {
            var lp = base.lp
            for k in base.jobIndices.indices {
                let job = snapshot.jobs[base.jobIndices[k]]
                lp.addRow(base.throughputTerms(snapshot, k), .atLeast(job.stepsRemaining / horizon))
            }
            return lp
        }
        func feasible(_ horizon: Double) throws -> Bool {
            do {
                _ = try program(horizon).solve(method: .simplex)
                return true
            } catch LPError.infeasible {
                return false
            }
        }
        var maxT = 1_000_000.0
        var minT = 100.0
        var lastMaxT = maxT
        var best: Double?
        var widenings = 0
        while best == nil {
            while 1.05 * minT < maxT {
                let horizon = (minT + maxT) / 2
                if try feasible(horizon) {
                    best = horizon
                    maxT = horizon
                } else {
                    minT = horizon
                }
            }
            maxT = lastMaxT * 10
            minT = lastMaxT
            lastMaxT *= 10
            widenings += 1
            if widenings > 30 { throw PolicyError("min total duration: no feasible horizon") }
        }
        return base.allocation(snapshot, try program(best!).solve(method: lpMethod))
    }
}

private let emptySolution = LPSolution(objective: 0, values: [], rowValues: [], method: .simplex)
