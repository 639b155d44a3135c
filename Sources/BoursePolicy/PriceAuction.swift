/// One way a job can be served: `units` GPUs of group `group`, worth `value`.
public struct MatchingOption: Sendable, Hashable {
    public var group: Int
    public var units: Int
    public var value: Double

    public init(group: Int, units: Int, value: Double) {
        self.group = group
        self.units = units
        self.value = value
    }
}

/// The round's matching problem: job demands (each a list of alternative options) against GPU
/// groups (identical GPUs, pooled by count). Every job takes at most one option; a group's GPUs
/// are not oversubscribed. Maximising the total value is the minimum-weight full matching of the
/// design (weight = -value, plus an "idle" dummy option of weight 0 per job, which makes every
/// matching full).
public struct MatchingProblem: Sendable, Hashable {
    public var capacity: [Int]
    public var demands: [[MatchingOption]]

    public init(capacity: [Int], demands: [[MatchingOption]]) {
        self.capacity = capacity
        self.demands = demands
    }

    /// Total value of a choice (option index per job, nil = idle), or nil when it oversubscribes
    /// a group.
    public func value(of choice: [Int?]) -> Double? {
        var used = Array(repeating: 0, count: capacity.count)
        var total = 0.0
        for (j, c) in choice.enumerated() {
            guard let c else { continue }
            let o = demands[j][c]
            used[o.group] += o.units
            total += o.value
        }
        for g in used.indices where used[g] > capacity[g] { return nil }
        return total
    }
}

/// The auction's outcome.
public struct MatchingSolution: Sendable, Hashable {
    /// Option index per job; nil = idle.
    public var choice: [Int?]
    /// Final price per GPU of each group (the value of one more GPU there; published later as
    /// ask prices).
    public var prices: [Double]
    /// Total value of `choice`.
    public var value: Double
    /// The Lagrangian dual at `prices`: sum_g price_g * capacity_g + sum_j max(0, max_o value -
    /// units * price). An upper bound on the LP relaxation and so on every feasible choice.
    public var dualBound: Double
    /// Price-raising steps (bisection probes) taken.
    public var probes: Int
}

/// An ascending multi-unit auction with one price per GPU group.
///
/// At prices p each job demands the option with the largest surplus `value - units * p[group]`
/// (or nothing when no surplus is positive). While a group is over-demanded its price rises to
/// the smallest level (found by bisection, to within `epsilon` of the job values' scale) at
/// which its demand fits; raising one price can only move demand to other groups, so prices
/// only go up and the loop ends. Then the GPUs the price steps left free are filled greedily:
/// idle jobs take their best option that fits, and placed jobs grow (or move) when the extra
/// GPUs are free and the value rises.
///
/// Guarantees: the result is always feasible. With unit demands (every option takes one GPU) the
/// final prices are (within epsilon) Walrasian, so the choice is within `jobs * epsilon` of the
/// optimal assignment; with multi-GPU options it is a heuristic, bounded above by `dualBound`
/// (>= the LP relaxation optimum, which the tests check against GLPK and an exhaustive search).
public enum PriceAuction {
    public static func solve(
        _ problem: MatchingProblem, epsilon: Double = 1e-9, maxImprovements: Int = 10_000
    ) -> MatchingSolution {
        let groups = problem.capacity.count
        let jobs = problem.demands.count
        var prices = Array(repeating: 0.0, count: groups)
        var probes = 0
        var maxValue = 0.0
        for options in problem.demands { for o in options where o.value > maxValue { maxValue = o.value } }
        let tolerance = max(epsilon * max(maxValue, 1e-300), 1e-300)

        // Best option per job at the given prices, and the resulting demand per group.
        var choice = [Int?](repeating: nil, count: jobs)
        var demand = Array(repeating: 0, count: groups)
        func evaluate(_ p: [Double]) {
            for g in 0..<groups { demand[g] = 0 }
            for j in 0..<jobs {
                var best: Int? = nil
                var bestSurplus = 0.0
                let options = problem.demands[j]
                for k in options.indices {
                    let o = options[k]
                    let surplus = o.value - Double(o.units) * p[o.group]
                    if surplus > bestSurplus {
                        bestSurplus = surplus
                        best = k
                    }
                }
                choice[j] = best
                if let best { demand[options[best].group] += options[best].units }
            }
        }

        // Highest value per unit on each group: at that price nobody demands it.
        var ceiling = Array(repeating: 0.0, count: groups)
        for options in problem.demands {
            for o in options where o.units > 0 {
                ceiling[o.group] = max(ceiling[o.group], o.value / Double(o.units))
            }
        }

        evaluate(prices)
        probes += 1
        var sweeps = 0
        while sweeps < 64 {
            var raised = false
            for g in 0..<groups where demand[g] > problem.capacity[g] {
                var lo = prices[g]
                var hi = ceiling[g] * (1 + 1e-12) + tolerance
                var trial = prices
                for _ in 0..<60 {
                    if hi - lo <= tolerance { break }
                    let mid = (lo + hi) / 2
                    trial[g] = mid
                    evaluate(trial)
                    probes += 1
                    if demand[g] > problem.capacity[g] { lo = mid } else { hi = mid }
                }
                prices[g] = hi
                evaluate(prices)
                probes += 1
                raised = true
            }
            sweeps += 1
            if !raised { break }
        }
        // Safety: if something is still over-demanded (cannot happen in exact arithmetic), drop
        // the lowest-surplus demands of that group.
        for g in 0..<groups where demand[g] > problem.capacity[g] {
            let holders = (0..<jobs).filter { j in choice[j].map { problem.demands[j][$0].group == g } ?? false }
                .sorted { a, b in
                    let oa = problem.demands[a][choice[a]!]
                    let ob = problem.demands[b][choice[b]!]
                    return oa.value / Double(max(oa.units, 1)) < ob.value / Double(max(ob.units, 1))
                }
            for j in holders where demand[g] > problem.capacity[g] {
                demand[g] -= problem.demands[j][choice[j]!].units
                choice[j] = nil
            }
        }

        // Fill what the price steps left free.
        var left = (0..<groups).map { problem.capacity[$0] - demand[$0] }
        let idle = (0..<jobs).filter { choice[$0] == nil }.sorted { a, b in
            let va = problem.demands[a].map(\.value).max() ?? 0
            let vb = problem.demands[b].map(\.value).max() ?? 0
            return va != vb ? va > vb : a < b
        }
        for j in idle {
            var best: Int? = nil
            var bestValue = 0.0
            for (k, o) in problem.demands[j].enumerated() where o.units <= left[o.group] && o.value > bestValue {
                best = k
                bestValue = o.value
            }
            if let best {
                let o = problem.demands[j][best]
                left[o.group] -= o.units
                choice[j] = best
            }
        }
        // Upgrades: a placed job grows or moves when the extra GPUs are free, best gain per extra
        // GPU first; repeated while something improves (bounded).
        for _ in 0..<4 {
            var candidates: [(job: Int, option: Int, rate: Double)] = []
            for j in 0..<jobs {
                guard let c = choice[j] else { continue }
                let current = problem.demands[j][c]
                for (k, o) in problem.demands[j].enumerated() where k != c && o.value > current.value {
                    let extra = o.group == current.group ? o.units - current.units : o.units
                    guard extra <= left[o.group] else { continue }
                    candidates.append((j, k, (o.value - current.value) / Double(max(extra, 1))))
                }
            }
            if candidates.isEmpty { break }
            candidates.sort { $0.rate != $1.rate ? $0.rate > $1.rate : ($0.job, $0.option) < ($1.job, $1.option) }
            var changed = false
            var touched = Set<Int>()
            for cand in candidates where !touched.contains(cand.job) {
                let current = problem.demands[cand.job][choice[cand.job]!]
                let o = problem.demands[cand.job][cand.option]
                let extra = o.group == current.group ? o.units - current.units : o.units
                guard extra <= left[o.group] else { continue }
                left[o.group] -= extra
                if o.group != current.group { left[current.group] += current.units }
                choice[cand.job] = cand.option
                touched.insert(cand.job)
                changed = true
            }
            if !changed { break }
        }

        improveByChains(problem, &choice, &left, limit: maxImprovements)

        var value = 0.0
        for j in 0..<jobs { if let c = choice[j] { value += problem.demands[j][c].value } }
        var dual = 0.0
        for g in 0..<groups { dual += prices[g] * Double(problem.capacity[g]) }
        for options in problem.demands {
            var best = 0.0
            for o in options { best = max(best, o.value - Double(o.units) * prices[o.group]) }
            dual += best
        }
        return MatchingSolution(choice: choice, prices: prices, value: value, dualBound: dual, probes: probes)
    }

    /// Cycle cancelling on the residual graph condensed to groups: for each GPU count u, an
    /// improving chain lets an idle job enter a group, a job there move to another group, ...,
    /// until the last group has u free GPUs or drops its least valuable job; an improving cycle
    /// moves jobs round groups. Every move swaps u GPUs for u GPUs, so capacities hold. With unit
    /// demands no improving chain or cycle left means the assignment is optimal (the price phase
    /// only leaves ties to resolve); with multi-GPU options it is a local improvement.
    static func improveByChains(_ problem: MatchingProblem, _ choice: inout [Int?], _ left: inout [Int], limit: Int) {
        let groups = problem.capacity.count
        let jobs = problem.demands.count
        guard groups > 0, jobs > 0 else { return }
        var unitSizes = Set<Int>()
        for options in problem.demands { for o in options { unitSizes.insert(o.units) } }
        let source = groups
        let sink = groups + 1
        let nodes = groups + 2
        var applied = 0
        for u in unitSizes.sorted() {
            while applied < limit {
                // Best edge per (from, to): gain and the job (and its new option) realising it.
                var gain = Array(repeating: Array(repeating: -Double.infinity, count: nodes), count: nodes)
                var mover = Array(repeating: Array(repeating: (job: -1, option: -1), count: nodes), count: nodes)
                for g in 0..<groups where left[g] >= u { gain[g][sink] = 0 }
                for j in 0..<jobs {
                    let options = problem.demands[j]
                    var from = source
                    var base = 0.0
                    if let c = choice[j] {
                        guard options[c].units == u else { continue }
                        from = options[c].group
                        base = options[c].value
                        if -base > gain[from][sink] {
                            gain[from][sink] = -base
                            mover[from][sink] = (j, -1)
                        }
                    }
                    for (k, o) in options.enumerated() where o.units == u && o.group != from {
                        let delta = o.value - base
                        if delta > gain[from][o.group] {
                            gain[from][o.group] = delta
                            mover[from][o.group] = (j, k)
                        }
                    }
                }
                // Longest paths from the source (Bellman-Ford); a relaxation in round `nodes`
                // reveals a positive cycle.
                var dist = Array(repeating: -Double.infinity, count: nodes)
                var parent = Array(repeating: -1, count: nodes)
                dist[source] = 0
                var cycleNode = -1
                for round in 0..<nodes {
                    var changed = false
                    for a in 0..<nodes where dist[a] > -Double.infinity {
                        for b in 0..<nodes where b != source && gain[a][b] > -Double.infinity && a != b {
                            if a == sink { continue }
                            let d = dist[a] + gain[a][b]
                            if d > dist[b] + 1e-12 {
                                dist[b] = d
                                parent[b] = a
                                changed = true
                                if round == nodes - 1 { cycleNode = b }
                            }
                        }
                    }
                    if !changed { break }
                }
                // Positive cycles among groups not reachable from the source are found by
                // starting everywhere at 0.
                if cycleNode < 0 {
                    var d2 = Array(repeating: 0.0, count: groups)
                    var p2 = Array(repeating: -1, count: groups)
                    for round in 0..<groups {
                        var changed = false
                        for a in 0..<groups {
                            for b in 0..<groups where a != b && gain[a][b] > -Double.infinity {
                                let d = d2[a] + gain[a][b]
                                if d > d2[b] + 1e-12 {
                                    d2[b] = d
                                    p2[b] = a
                                    changed = true
                                    if round == groups - 1 { cycleNode = b }
                                }
                            }
                        }
                        if !changed { break }
                    }
                    if cycleNode >= 0 {
                        for g in 0..<groups { parent[g] = p2[g] }
                    }
                }
                var edges: [(Int, Int)] = []
                if cycleNode >= 0 {
                    var x = cycleNode
                    for _ in 0..<nodes { x = parent[x] }  // step into the cycle
                    let start = x
                    repeat {
                        let p = parent[x]
                        edges.append((p, x))
                        x = p
                    } while x != start && edges.count <= nodes
                    let total = edges.reduce(0.0) { $0 + gain[$1.0][$1.1] }
                    if total <= 1e-9 * max(1, abs(total)) || x != start { break }
                } else {
                    guard dist[sink] > 1e-9 else { break }
                    var x = sink
                    while x != source && edges.count <= nodes {
                        let p = parent[x]
                        edges.append((p, x))
                        x = p
                    }
                    if x != source { break }
                }
                // Apply: leavers first (their GPUs free), then arrivals.
                var moves: [(job: Int, option: Int?)] = []
                for (a, b) in edges {
                    let m = mover[a][b]
                    if b == sink {
                        if m.job >= 0 { moves.append((m.job, nil)) }  // drop to idle (or free GPUs: nothing)
                    } else {
                        moves.append((m.job, m.option))
                    }
                }
                let movedJobs = moves.map(\.job)
                if Set(movedJobs).count != movedJobs.count { break }
                for (j, _) in moves {
                    if let c = choice[j] { left[problem.demands[j][c].group] += problem.demands[j][c].units }
                }
                for (j, k) in moves {
                    choice[j] = k
                    if let k { left[problem.demands[j][k].group] -= problem.demands[j][k].units }
                }
                if left.contains(where: { $0 < 0 }) {
                    // Cannot happen (every move swaps u GPUs); undo defensively by dropping.
                    for (j, k) in moves where k != nil {
                        if let c = choice[j] { left[problem.demands[j][c].group] += problem.demands[j][c].units }
                        choice[j] = nil
                    }
                }
                applied += 1
            }
        }
    }

    /// The optimum by enumerating every choice (tests only; exponential).
    public static func exhaustive(_ problem: MatchingProblem) -> (value: Double, choice: [Int?]) {
        var best = 0.0
        var bestChoice = [Int?](repeating: nil, count: problem.demands.count)
        var current = bestChoice
        var used = Array(repeating: 0, count: problem.capacity.count)
        func recurse(_ j: Int, _ total: Double) {
            if j == problem.demands.count {
                if total > best {
                    best = total
                    bestChoice = current
                }
                return
            }
            current[j] = nil
            recurse(j + 1, total)
            for (k, o) in problem.demands[j].enumerated() where used[o.group] + o.units <= problem.capacity[o.group] {
                used[o.group] += o.units
                current[j] = k
                recurse(j + 1, total + o.value)
                used[o.group] -= o.units
                current[j] = nil
            }
        }
        recurse(0, 0)
        return (best, bestChoice)
    }
}
