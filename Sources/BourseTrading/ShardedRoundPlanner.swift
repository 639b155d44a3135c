import BourseWorkload
import BoursePolicy

/// What the trading did over a run (sums over rounds unless named otherwise).
public struct TradingReport: Sendable, Hashable {
    public var shards = 1
    public var rounds = 0
    public var counters = TradingCounters()
    /// Trading phases (message exchanges) per scheduling round: sum and maximum.
    public var phases = 0
    public var maxPhases = 0
    public var phaseMs = 0.0
    /// Leases active (placed) after each round, summed.
    public var leasesActive = 0
    /// Jobs placed across several shards, summed over rounds.
    public var spreadJobs = 0
    /// Jobs moved to the shard whose lease they ran on (`Configuration.rehome`).
    public var rehomed = 0
    /// Jobs dropped for the round because a part of their deal was not placed (a lost commit).
    public var incompleteDeals = 0
    /// Per measured round: sharded objective / centralised objective on the same snapshot.
    public var objectiveRatioSum = 0.0
    public var objectiveRatioMin = Double.infinity
    /// Sharded objective / the central matching's dual bound (a bound on the optimum).
    public var boundRatioSum = 0.0
    public var measuredRounds = 0
    public var network = InMemoryNetwork<TradingMessage>.Counters()

    public var objectiveRatioMean: Double { measuredRounds > 0 ? objectiveRatioSum / Double(measuredRounds) : 1 }

    /// The figures for the metrics JSON's `trading` object.
    public var figures: [String: Double] {
        let r = Double(max(rounds, 1))
        return [
            "shards": Double(shards),
            "rounds": Double(rounds),
            "offers": Double(counters.offersSent),
            "accepts": Double(counters.accepts),
            "rejects": Double(counters.rejects),
            "releases": Double(counters.releasesSent),
            "commits": Double(counters.commitsSent),
            "leases_granted": Double(counters.leasesGranted),
            "leases_renewed": Double(counters.leasesRenewed),
            "leases_ended": Double(counters.leasesEnded),
            "leases_expired": Double(counters.leasesExpired),
            "leases_active_mean": Double(leasesActive) / r,
            "deals_confirmed": Double(counters.dealsConfirmed),
            "deals_failed": Double(counters.dealsFailed),
            "spread_jobs_per_round": Double(spreadJobs) / r,
            "incomplete_deals": Double(incompleteDeals),
            "jobs_rehomed": Double(rehomed),
            "messages": Double(counters.messagesSent),
            "messages_per_round": Double(counters.messagesSent) / r,
            "phases_per_round_mean": Double(phases) / r,
            "phases_per_round_max": Double(maxPhases),
            "trading_ms_per_round_mean": Double(phases) / r * phaseMs,
            "objective_ratio_mean": objectiveRatioMean,
            "objective_ratio_min": measuredRounds > 0 ? objectiveRatioMin : 1,
            "objective_bound_ratio_mean": measuredRounds > 0 ? boundRatioSum / Double(measuredRounds) : 1,
            "messages_lost": Double(network.lost),
            "messages_duplicated": Double(network.duplicated),
        ]
    }
}

/// Bourse's policy run by K shards that each own a part of the cluster and trade GPUs over an
/// in-memory network (`bourse sim --shards K`): the same `TradingShard` state machine the live
/// shards run, in one process, so sharding can be compared with one central planner.
///
/// Every round: each job has a home shard (chosen on arrival: the least loaded shard per GPU
/// whose racks can run it, else the least loaded); the shards exchange bids in phases until no
/// message is in flight (at most `maxPhases`), close (commits), and place; the planner merges the
/// owners' assignments, keeping a job spread over shards only if every part of its deal was
/// placed. It also solves the central problem on the same snapshot, to report how close the
/// shards came (`TradingReport.objectiveRatioMean`).
public struct ShardedRoundPlanner: RoundPlanner {
    public struct Configuration: Sendable, Hashable {
        public var trading = TradingParameters()
        public var network = InMemoryNetwork<TradingMessage>.Settings()
        /// A round's trading stops after this many phases even if messages are in flight. At
        /// the network's default 1 ms per phase, 120 phases are the live market's window (0.12 s).
        public var maxPhases = 120
        /// A job whose whole deal is one other shard's lease becomes that shard's home job from
        /// the next round (the gateway's home is a first guess; where the job runs is a better one).
        public var rehome = true
        /// Solve the central problem every round to report the objective ratio.
        public var measureObjective = true
        public var seed: UInt64 = 0

        public init() {}
    }

    public let pool: WorkerPool
    public let configuration: Configuration
    public let layout: MarketLayout
    public private(set) var shards: [TradingShard]
    public private(set) var report = TradingReport()
    /// Each job's home shard.
    public private(set) var home: [Int: Int] = [:]
    private var central: BourseRoundPlanner
    private var network: InMemoryNetwork<TradingMessage>
    private let shardGPUs: [Int]
    private var order: [Int] = []
    private var gossip: [Int: MarketAsk] = [:]
    private var previous: [RoundAssignment] = []
    private var phase = 0
    private var random: SeededRandom

    /// `shardOfServer[t][s]`: the shard owning server `s` of type `t` (parallel to `pool.servers`).
    public init(
        pool: WorkerPool, shardOfServer: [[Int]], shards count: Int, parameters: BourseRoundPlanner.Parameters,
        configuration: Configuration = Configuration()
    ) throws {
        guard count >= 1 else { throw PolicyError("--shards must be at least 1, got \(count)") }
        guard shardOfServer.count == pool.servers.count,
            zip(shardOfServer, pool.servers).allSatisfy({ $0.count == $1.count }),
            shardOfServer.allSatisfy({ $0.allSatisfy { (0..<count).contains($0) } })
        else { throw PolicyError("sharded planner: every server needs a shard in 0..<\(count)") }
        self.pool = pool
        var planners: [BourseRoundPlanner] = []
        var gpus: [Int] = []
        for k in 0..<count {
            let servers = pool.servers.indices.map { t in
                pool.servers[t].indices.filter { shardOfServer[t][$0] == k }.map { pool.servers[t][$0] }
            }
            let local = WorkerPool(types: pool.types, servers: servers)
            guard local.capacity.reduce(0, +) > 0 else { throw PolicyError("sharded planner: shard \(k) owns no GPU") }
            planners.append(BourseRoundPlanner(pool: local, parameters: parameters, valuationPool: pool))
            gpus.append(local.capacity.reduce(0, +))
        }
        // An answer may take two one-way trips of up to (1 + jitter) x delay: wait that long
        // (in phases) plus one before giving a deal up, and let a round trade long enough for a
        // few such exchanges.
        var configuration = configuration
        let net = configuration.network
        let trip = 1 + Int((net.delayMs * (1 + net.jitter) / net.effectivePhaseMs).rounded(.down))
        configuration.trading.offerTimeoutPhases = max(configuration.trading.offerTimeoutPhases, 2 * trip + 1)
        configuration.maxPhases = max(configuration.maxPhases, 4 * (2 * trip + 1))
        self.configuration = configuration
        let market = MarketLayout(shardGroups: planners.map(\.groups))
        layout = market
        shards = planners.enumerated().map { k, p in
            TradingShard(id: k, layout: market, planner: p, parameters: configuration.trading)
        }
        shardGPUs = gpus
        central = BourseRoundPlanner(pool: pool, parameters: parameters)
        network = InMemoryNetwork(settings: configuration.network, seed: configuration.seed)
        random = SeededRandom(seed: configuration.seed ^ 0x676F_7373_6970_2121)
        report.shards = count
        report.phaseMs = configuration.network.effectivePhaseMs
    }

    public var name: String { central.parameters.name }
    public var gavelName: String { "-" }
    public var activeJobs: [Int] { order }
    public var allocationCount: Int { report.rounds }
    public var tradingFigures: [String: Double] { report.figures }

    public mutating func addJob(_ id: Int) {
        precondition(!order.contains(id), "job \(id) added twice")
        order.append(id)
    }

    public mutating func removeJob(_ id: Int) {
        order.removeAll { $0 == id }
        home[id] = nil
    }

    public mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double) {}
    public mutating func requestAllocationReset() {}

    /// The least loaded shard (home jobs per GPU) whose GPUs can run some configuration of `job`
    /// alone; the least loaded of all when none can (trades will place it).
    func chooseHome(for job: PolicyJob) -> Int {
        var load = Array(repeating: 0, count: shards.count)
        for (_, h) in home { load[h] += 1 }
        let profile = central.valuation(of: job, activeJobs: 1)?.profile
        let able = shards.indices.filter { k in
            let local = shards[k].planner.pool
            return profile?.bestSpeed(capacity: local.capacity, maxPerServer: local.maxGPUsPerServer) ?? 0 > 0
        }
        let candidates = able.isEmpty ? Array(shards.indices) : able
        return candidates.min { a, b in
            let la = Double(load[a]) / Double(shardGPUs[a])
            let lb = Double(load[b]) / Double(shardGPUs[b])
            return la != lb ? la < lb : a < b
        }!
    }

    public mutating func planRound(now: Double, jobs: [PolicyJob]) throws -> [RoundAssignment] {
        let byID = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        var ordered: [PolicyJob] = []
        for id in order {
            guard let job = byID[id] else { throw PolicyError("planRound: active job \(id) missing from the snapshot") }
            ordered.append(job)
            if home[id] == nil { home[id] = chooseHome(for: job) }
        }
        report.rounds += 1
        let round = report.rounds

        // Open the round: renewals and releases.
        for k in shards.indices {
            var known: [Int: MarketAsk] = [:]
            for (g, ask) in gossip where !lostGossip() { known[g] = ask }
            let mine = ordered.filter { home[$0.id] == k }
            let out = shards[k].beginRound(round: round, now: now, homeJobs: mine, activeJobs: ordered.count, gossip: known)
            for m in out { network.send(m, phase: phase) }
        }
        // Trade until quiet.
        var phases = 0
        while phases < configuration.maxPhases {
            phase += 1
            phases += 1
            for m in network.deliver(phase: phase) { shards[m.recipient].receive(m) }
            var produced = 0
            for k in shards.indices {
                let out = shards[k].phase()
                produced += out.count
                for m in out { network.send(m, phase: phase) }
            }
            // Gossip: every shard's current prices reach the others (piggybacked on SWIM, not
            // counted as trading messages; lost with the network's loss rate).
            let published = shards.map(\.ownAsks)
            for k in shards.indices {
                for (j, asks) in published.enumerated() where j != k && !lostGossip() { shards[k].learnAsks(asks) }
            }
            if produced == 0 && network.inFlight == 0 && shards.allSatisfy(\.isQuiet) { break }
        }
        report.phases += phases
        report.maxPhases = max(report.maxPhases, phases)
        // Close: commits travel (and may be lost), then every owner places.
        phase += 1
        for k in shards.indices {
            for m in shards[k].closeRound() { network.send(m, phase: phase, immediate: true) }
        }
        for m in network.deliver(phase: phase) { shards[m.recipient].receive(m) }
        var parts: [Int: [(owner: Int, assignment: RoundAssignment)]] = [:]
        var leases = 0
        for k in shards.indices {
            let outcome = try shards[k].placeRound()
            for (local, g) in layout.ids[k].enumerated() { gossip[g] = outcome.asks[local] }
            for a in outcome.assignments { parts[a.jobID, default: []].append((k, a)) }
            leases += shards[k].leases.count
        }
        report.leasesActive += leases

        // Merge: a job runs where its home says it runs, and only with every part placed.
        var merged: [RoundAssignment] = []
        var moves: [Int: Int] = [:]
        var gpuHolder: [Int: Int] = [:]
        let confirmed = shards.map(\.confirmedDeals)
        for job in ordered {
            let h = home[job.id]!
            let got = parts[job.id] ?? []
            let deal = confirmed[h][job.id]
            var assignment: RoundAssignment?
            if let deal {
                let expected = Dictionary(uniqueKeysWithValues: deal.parts.map { ($0.owner, $0.units) })
                let placed = Dictionary(got.map { ($0.owner, $0.assignment.workers.count) }, uniquingKeysWith: +)
                let types = Set(got.map(\.assignment.typeIndex))
                if placed == expected, types.count == 1 {
                    let sorted = got.sorted { $0.owner < $1.owner }
                    assignment = RoundAssignment(
                        jobID: job.id, typeIndex: types.first!, workers: sorted.flatMap(\.assignment.workers),
                        keepsPreviousWorkers: sorted.allSatisfy(\.assignment.keepsPreviousWorkers))
                    if deal.parts.count > 1 { report.spreadJobs += 1 }
                } else if !got.isEmpty {
                    report.incompleteDeals += 1
                }
            } else if got.count == 1, got[0].owner == h {
                assignment = got[0].assignment
            }
            guard let assignment else { continue }
            if configuration.rehome, let owners = deal.map({ Set($0.parts.map(\.owner)) }), owners.count == 1,
                let owner = owners.first, owner != h
            {
                moves[job.id] = owner
            }
            for w in assignment.workers {
                if let other = gpuHolder[w] {
                    throw PolicyError("sharded planner: GPU \(w) given to jobs \(other) and \(job.id) in round \(round)")
                }
                gpuHolder[w] = job.id
            }
            merged.append(assignment)
        }

        if configuration.measureObjective, !ordered.isEmpty {
            central.adoptPlacements(previous)
            let (problem, _, _) = central.matchingProblem(jobs: ordered, activeJobs: ordered.count)
            let best = PriceAuction.solve(
                problem, epsilon: central.parameters.epsilon, maxImprovements: central.parameters.improvementLimit)
            if best.value > 0 {
                let achieved = objective(of: merged, jobs: byID, population: ordered.count)
                let ratio = achieved / best.value
                report.objectiveRatioSum += ratio
                report.objectiveRatioMin = min(report.objectiveRatioMin, ratio)
                report.boundRatioSum += best.dualBound > 0 ? achieved / best.dualBound : 1
                report.measuredRounds += 1
            }
        }
        report.counters = shards.map(\.counters).reduce(TradingCounters(), +)
        report.network = network.counters
        // A job that runs on one other shard's lease moves home there: next round it is that
        // shard's own job (no renewal to win, no round trip), and its old home's lease ends.
        for (job, owner) in moves { home[job] = owner }
        report.rehomed += moves.count
        previous = merged
        return merged.sorted { $0.jobID < $1.jobID }
    }

    /// The total value of `assignments`, valued as the central planner values them.
    func objective(of assignments: [RoundAssignment], jobs: [Int: PolicyJob], population: Int) -> Double {
        var total = 0.0
        for a in assignments {
            guard let job = jobs[a.jobID], let (profile, aging) = central.valuation(of: job, activeJobs: population),
                let option = profile.options.first(where: { $0.workers == a.workers.count })
            else { continue }
            let speed = central.onOneServer(a.workers) ? option.packed[a.typeIndex] : option.spread[a.typeIndex]
            total += central.value(of: job, speed: speed, changes: !a.keepsPreviousWorkers, aging: aging)
        }
        return total
    }

    /// Gossip is lossy too: a shard misses a published ask with the network's loss rate.
    private mutating func lostGossip() -> Bool {
        configuration.network.loss > 0 && random.nextUnitDouble() < configuration.network.loss
    }
}
