import BourseLP
import BourseModel
import BoursePolicy
import BourseTrading
import BourseWorkload

/// Which throughput a multi-GPU job gets.
public enum ThroughputMode: String, Sendable, Hashable, CaseIterable {
    /// By placement: a job whose GPUs sit on one server runs at the table's consolidated speed,
    /// one spread over servers at the `*_unconsolidated` speed; policies plan with the speed the
    /// job would get on that GPU type's largest server. On a 1-GPU-per-server cluster every
    /// multi-GPU job is unconsolidated.
    case placement
    /// Always the consolidated entry, whatever the placement (what Gavel's simulator does).
    case consolidated
}

/// Knobs of a simulation run.
public struct SimulationOptions: Sendable, Hashable {
    /// Round length in seconds (Gavel's `time_per_iteration`, 360 s).
    public var roundSeconds: Double = 360
    /// Checkpoint-restart delay charged when a job starts, moves or resumes on other GPUs; 0 as in
    /// Gavel's simulator.
    public var restartSeconds: Double = 0
    /// Recorded in the output; the five Gavel baselines are deterministic and draw no random
    /// numbers.
    public var seed: UInt64 = 0
    /// Gavel's `minimum_time_between_allocation_resets` (1920 s).
    public var minimumTimeBetweenAllocationResets: Double = 1920
    public var throughputMode: ThroughputMode = .placement
    /// How the LP policies solve (interior point mimics Gavel's ECOS).
    public var lpMethod: LPMethod = .interiorPoint
    /// Where Bourse's planners get throughputs from (the Gavel policies always use the table).
    public var estimator: EstimatorMode = .oracle
    /// Knobs of Bourse's planners (`bourse`, `bourse-fixed`); the round length and restart
    /// delay are taken from this struct's `roundSeconds` and `restartSeconds`.
    public var bourse = BourseRoundPlanner.Parameters()
    /// `--estimator cf`: fraction of the table's cells known beforehand, and the measurement noise
    /// of those, of profiling runs and of feedback from running jobs.
    public var estimatorPriorFraction = 0.3
    public var estimatorNoise = 0.05
    /// Bourse's policies only: run the policy as this many shards that trade GPUs
    /// (`ShardedRoundPlanner`); nil = one central planner.
    public var shards: Int? = nil
    /// The sharded run's trading protocol and simulated network (delay, loss, duplication).
    public var sharding = ShardedRoundPlanner.Configuration()
    /// Tenants sharing the cluster (name, weight > 0); jobs are assigned to them round-robin in
    /// an order drawn from `seed`. One tenant (the default) changes nothing.
    public var tenants: [Tenant] = [Tenant(name: "default")]
    /// Knobs of `hops-lrf`.
    public var hops = HopsLRFPlanner.Parameters()

    public init() {}
}

/// Where Bourse's planners get throughputs from.
public enum EstimatorMode: String, Sendable, Hashable, CaseIterable {
    /// The true table (an oracle).
    case oracle
    /// Collaborative-filtering estimates from profiled and observed cells (BourseEstimator).
    case cf
}

/// Where a run is, for progress bars.
public struct SimulationProgress: Sendable {
    public var simulatedSeconds: Double
    public var completedJobs: Int
    public var totalJobs: Int
    public var rounds: Int
}

/// A trace, a cluster and a policy, ready to simulate.
///
/// The simulation is Gavel's (scheduler.py `simulate`, commit c4fa400) on a virtual clock:
/// jobs are added when the clock passes their arrival; each round the shared
/// `GavelRoundMechanism` picks and places jobs; every placed job runs
/// `min(floor(throughput * round), remaining)` steps, so a job finishing inside a round completes
/// at exactly `start + steps / throughput`; the round ends when its last job stops (GPUs of jobs
/// that finished early stay idle until then, new arrivals wait for it); with nothing running
/// the clock jumps to the next arrival.
public struct Simulation: Sendable {
    public let trace: [TraceJob]
    public let cluster: ClusterConfig
    public let options: SimulationOptions
    public let policyName: String
    public let gavelPolicyName: String
    let pool: WorkerPool
    let serverOf: [Int: Int]
    let rackOfServer: [Int: String]
    let speedModel: NetworkSpeedModel
    /// Per job, per pool type: steps/s as the policy sees it.
    let plannedThroughput: [[Double]]
    /// Per job, per pool type: consolidated and unconsolidated steps/s.
    let consolidatedThroughput: [[Double]]
    let spreadThroughput: [[Double]]
    /// Bourse planners only: per job, its elastic configurations with their true speeds (work
    /// units/s; the simulator runs jobs at these) and what the planner believes.
    let elasticTruth: [ElasticProfile]?
    let elasticBelief: [ElasticProfile]?
    /// `--estimator cf`: the estimator state at the start of the run (prior observations).
    let initialEstimates: EstimatedThroughputs?
    /// Tenant (index into `options.tenants`) of every trace job.
    let tenantOf: [Int]
    var mechanism: any RoundPlanner

    public init(
        trace: [TraceJob], cluster: ClusterConfig, table: ThroughputTable, policy: String,
        options: SimulationOptions = SimulationOptions()
    ) throws {
        try table.validate(cluster: cluster)
        guard options.roundSeconds > 0, options.roundSeconds.isFinite else {
            throw SimulationError("the round length must be > 0 seconds, got \(options.roundSeconds)")
        }
        guard options.restartSeconds >= 0, options.restartSeconds < options.roundSeconds else {
            throw SimulationError(
                "the restart delay must be >= 0 and shorter than a round (\(options.roundSeconds) s), got \(options.restartSeconds)")
        }
        do {
            try Tenant.validate(options.tenants)
        } catch {
            throw SimulationError("\(error)")
        }
        self.trace = trace
        self.cluster = cluster
        self.options = options
        // A job naming its tenant keeps it (it must be declared); the others go round-robin.
        var tenantOf =
            options.tenants.count > 1
            ? Tenant.roundRobin(jobs: trace.count, tenants: options.tenants.count, seed: options.seed)
            : Array(repeating: 0, count: trace.count)
        for (i, job) in trace.enumerated() {
            guard let name = job.tenant else { continue }
            do {
                tenantOf[i] = try Tenant.index(of: name, in: options.tenants)
            } catch {
                throw SimulationError("job \(i) (trace line \(i + 1)): \(error)")
            }
        }
        self.tenantOf = tenantOf
        let isBourse = PolicyCatalog.isBourse(policy)
        let isHops = PolicyCatalog.isHops(policy)
        let policyObject: (any AllocationPolicy)? =
            isBourse || isHops ? nil : try PolicyCatalog.make(policy, lpMethod: options.lpMethod)
        self.policyName = policyObject?.name ?? policy
        self.gavelPolicyName = policyObject?.gavelName ?? "-"

        // GPUs: types in Gavel's fill order, servers in config order, ids in config order.
        let counts = cluster.gpuCounts.filter { $0.value > 0 }
        let types = WorkerPool.gavelTypeOrder(
            cluster.gpuTypes.map(\.name).filter { counts[$0] != nil }
                + counts.keys.sorted().filter { name in !cluster.gpuTypes.contains { $0.name == name } })
        guard !types.isEmpty else { throw SimulationError("cluster '\(cluster.name)' has no GPUs") }
        var servers: [[[Int]]] = Array(repeating: [], count: types.count)
        var serverOf: [Int: Int] = [:]
        var nextID = 0
        for (serverIndex, node) in cluster.nodes.enumerated() {
            for (t, type) in types.enumerated() {
                let n = node.gpus[type] ?? 0
                guard n > 0 else { continue }
                let ids = Array(nextID..<(nextID + n))
                nextID += n
                for id in ids { serverOf[id] = serverIndex }
                servers[t].append(ids)
            }
        }
        pool = WorkerPool(types: types, servers: servers)
        self.serverOf = serverOf

        let speedModel = NetworkSpeedModel(table: table, network: cluster.network, gpuTypes: types)
        self.speedModel = speedModel
        var rackOf: [Int: String] = [:]
        for (serverIndex, node) in cluster.nodes.enumerated() { rackOf[serverIndex] = node.rack }
        self.rackOfServer = rackOf
        var planned: [[Double]] = []
        var together: [[Double]] = []
        var spread: [[Double]] = []
        let maxPerServer = pool.maxGPUsPerServer
        let capacity = pool.capacity
        for (i, job) in trace.enumerated() {
            let key = JobTypeKey(model: job.jobType, scaleFactor: job.scaleFactor)
            if let problem = table.problem(with: key) {
                throw SimulationError("job \(i) (trace line \(i + 1)): \(problem)")
            }
            let c = types.map { table.throughput(key, gpuType: $0, consolidated: true) }
            let u = types.map { speedModel.stepsPerSecond(model: job.jobType, workers: job.scaleFactor, gpuType: $0, tier: .rack) }
            together.append(c)
            switch options.throughputMode {
            case .consolidated:
                spread.append(c)
                planned.append(c)
            case .placement:
                spread.append(u)
                planned.append(types.indices.map { maxPerServer[$0] >= job.scaleFactor ? c[$0] : u[$0] })
            }
            let runnable = types.indices.contains { planned[i][$0] > 0 && capacity[$0] >= job.scaleFactor }
            guard runnable else {
                throw SimulationError(
                    "job \(i) (trace line \(i + 1), \(key)) cannot run on cluster '\(cluster.name)': no GPU type with \(job.scaleFactor) GPUs and a throughput for it"
                )
            }
        }
        plannedThroughput = planned
        consolidatedThroughput = together
        spreadThroughput = spread
        if isHops {
            // Fixed at the trace's scale factor; the planner sees packed and spread speeds.
            let truth = try trace.enumerated().map { i, job in
                try Simulation.elasticProfile(
                    job: job, line: i + 1, table: table, types: types, mode: options.throughputMode, fixed: true,
                    speedModel: speedModel)
            }
            elasticTruth = truth
            elasticBelief = truth
            initialEstimates = nil
            var parameters = options.hops
            parameters.name = policy
            mechanism = HopsLRFPlanner(pool: pool, parameters: parameters)
        } else if let policyObject {
            elasticTruth = nil
            elasticBelief = nil
            initialEstimates = nil
            mechanism = GavelRoundMechanism(
                policy: policyObject, pool: pool,
                configuration: .init(
                    roundSeconds: options.roundSeconds,
                    minimumTimeBetweenAllocationResets: options.minimumTimeBetweenAllocationResets))
        } else {
            let truth = try trace.enumerated().map { i, job in
                try Simulation.elasticProfile(
                    job: job, line: i + 1, table: table, types: types, mode: options.throughputMode,
                    fixed: policy == "bourse-fixed", speedModel: speedModel)
            }
            elasticTruth = truth
            if options.estimator == .cf {
                var settings = EstimatedThroughputs.Settings()
                settings.seed = options.seed
                settings.priorFraction = options.estimatorPriorFraction
                settings.noise = options.estimatorNoise
                do {
                    initialEstimates = try EstimatedThroughputs(table: table, gpuTypes: types, settings: settings)
                } catch {
                    throw SimulationError("estimator: \(error)")
                }
                elasticBelief = nil
            } else {
                initialEstimates = nil
                elasticBelief = truth
            }
            var parameters = options.bourse
            parameters.roundSeconds = options.roundSeconds
            parameters.restartSeconds = options.restartSeconds
            parameters.name = policy
            if let shards = options.shards {
                var configuration = options.sharding
                configuration.seed = options.seed
                let split = try Simulation.shardSplit(cluster: cluster, shards: shards)
                let shardOfServer = servers.map { list in list.map { split[serverOf[$0[0]]!] } }
                do {
                    mechanism = try ShardedRoundPlanner(
                        pool: pool, shardOfServer: shardOfServer, shards: shards, parameters: parameters,
                        configuration: configuration)
                } catch {
                    throw SimulationError("\(error)")
                }
            } else {
                mechanism = BourseRoundPlanner(pool: pool, parameters: parameters)
            }
        }
        if options.shards != nil && !isBourse {
            throw SimulationError("--shards needs a Bourse policy (bourse, bourse-fixed): shards trade at Bourse's prices")
        }
    }

    /// Which shard owns each node (index into `cluster.nodes`) when the cluster is run by `shards`
    /// shards: with no more shards than racks, whole racks in config order, cut where the GPU
    /// count is closest to an equal share; with more, every rack gets at least one shard, the
    /// extra shards go to the racks with the most GPUs, and a rack's nodes are cut the same way.
    public static func shardSplit(cluster: ClusterConfig, shards: Int) throws -> [Int] {
        let nodes = cluster.nodes
        guard shards >= 1 else { throw SimulationError("--shards must be at least 1, got \(shards)") }
        guard shards <= nodes.count else {
            throw SimulationError(
                "--shards \(shards) is more than the \(nodes.count) nodes of cluster '\(cluster.name)': a shard owns at least one node")
        }
        func gpus(_ n: NodeSpec) -> Int { n.gpus.values.reduce(0, +) }
        /// Cuts weights into `parts` contiguous runs of near-equal total (each non-empty).
        func cut(_ weights: [Int], into parts: Int) -> [Int] {
            let total = Double(max(weights.reduce(0, +), 1))
            var out: [Int] = []
            var before = 0.0
            for (i, w) in weights.enumerated() {
                let previous = out.last ?? -1
                var part = Int((before + Double(w) / 2) / total * Double(parts))
                part = max(part, previous, parts - (weights.count - i))  // enough items left for the rest
                part = min(part, previous + 1, parts - 1)  // no part left empty
                out.append(part)
                before += Double(w)
            }
            return out
        }
        let racks = cluster.racks.map(\.id)
        let rackOfNode = nodes.map { n in racks.firstIndex(of: n.rack) ?? 0 }
        var result = Array(repeating: 0, count: nodes.count)
        if shards <= racks.count {
            let rackGPUs = racks.indices.map { r in nodes.indices.filter { rackOfNode[$0] == r }.map { gpus(nodes[$0]) }.reduce(0, +) }
            let shardOfRack = cut(rackGPUs, into: shards)
            for i in nodes.indices { result[i] = shardOfRack[rackOfNode[i]] }
            return result
        }
        // More shards than racks: one each, the rest by largest GPU count per shard so far.
        let members = racks.indices.map { r in nodes.indices.filter { rackOfNode[$0] == r } }
        var count = members.map { $0.isEmpty ? 0 : 1 }
        for _ in 0..<(shards - count.reduce(0, +)) {
            let r = members.indices.filter { count[$0] < members[$0].count }.max { a, b in
                let ga = Double(members[a].map { gpus(nodes[$0]) }.reduce(0, +)) / Double(count[a])
                let gb = Double(members[b].map { gpus(nodes[$0]) }.reduce(0, +)) / Double(count[b])
                return ga != gb ? ga < gb : a > b
            }!
            count[r] += 1
        }
        var next = 0
        for r in members.indices where !members[r].isEmpty {
            let parts = cut(members[r].map { gpus(nodes[$0]) }, into: count[r])
            for (k, i) in members[r].enumerated() { result[i] = next + parts[k] }
            next += count[r]
        }
        return result
    }

    /// A job's elastic range with its speeds in trace steps per second: every scale factor the
    /// table has for the model (narrowed by the job's min/max workers; only the trace's scale
    /// factor when `fixed`), speed(w) = steps/s(w) * w / traceScale.
    public static func elasticProfile(
        job: TraceJob, line: Int = 0, table: ThroughputTable, types: [String], mode: ThroughputMode, fixed: Bool,
        speedModel: NetworkSpeedModel? = nil
    ) throws -> ElasticProfile {
        let model = speedModel ?? NetworkSpeedModel(table: table, network: .default, gpuTypes: types)
        var counts = fixed ? [job.scaleFactor] : table.scaleFactors(model: job.jobType)
        if !fixed {
            if let lo = job.minWorkers { counts = counts.filter { $0 >= lo } }
            if let hi = job.maxWorkers { counts = counts.filter { $0 <= hi } }
            if counts.isEmpty {
                throw SimulationError(
                    "job \(line - 1) (trace line \(line)): no scale factor of '\(job.jobType)' lies in its elastic range")
            }
        }
        let s = Double(job.scaleFactor)
        let options = counts.map { w -> ElasticOption in
            let key = JobTypeKey(model: job.jobType, scaleFactor: w)
            let scale = Double(w) / s
            let packed = types.map { table.throughput(key, gpuType: $0, consolidated: true) * scale }
            let spread =
                mode == .consolidated
                ? packed
                : types.map { model.stepsPerSecond(model: job.jobType, workers: w, gpuType: $0, tier: .rack) * scale }
            return ElasticOption(workers: w, packed: packed, spread: spread)
        }
        return ElasticProfile(totalWork: Double(job.totalSteps), options: options)
    }

    /// Steps/s of job `i` on `workers` of type `t`.
    func runThroughput(job i: Int, type t: Int, workers: [Int]) -> Double {
        let servers = Set(workers.map { serverOf[$0]! })
        let spine =
            options.throughputMode == .placement && speedModel.modelledTypes.contains(pool.types[t])
            && Set(servers.map { rackOfServer[$0]! }).count > 1
        if let elasticTruth {
            guard let option = elasticTruth[i].options.first(where: { $0.workers == workers.count }) else { return 0 }
            if spine {
                return speedModel.stepsPerSecond(
                    model: trace[i].jobType, workers: workers.count, gpuType: pool.types[t], tier: .spine)
                    * Double(workers.count) / Double(trace[i].scaleFactor)
            }
            return servers.count <= 1 ? option.packed[t] : option.spread[t]
        }
        switch options.throughputMode {
        case .consolidated: return consolidatedThroughput[i][t]
        case .placement:
            if spine {
                return speedModel.stepsPerSecond(
                    model: trace[i].jobType, workers: workers.count, gpuType: pool.types[t], tier: .spine)
            }
            return servers.count <= 1 ? consolidatedThroughput[i][t] : spreadThroughput[i][t]
        }
    }

    /// Runs the simulation to the last completion.
    public func run(progress: ((SimulationProgress) -> Void)? = nil) throws -> SimulationResult {
        var engine = Engine(simulation: self)
        return try engine.run(progress: progress)
    }
}

public struct SimulationError: Error, CustomStringConvertible, Hashable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The mutable state of one run.
struct Engine {
    struct Task {
        var job: Int
        var type: Int
        var workers: [Int]
        var steps: Int
        var start: Double
        var finish: Double
    }

    let sim: Simulation
    var mechanism: any RoundPlanner
    var estimates: EstimatedThroughputs?
    var stepsDone: [Int]
    var completion: [Double?]
    var runSeconds: [Double]
    var runSecondsByType: [[Double]]
    var restarts: [Int]
    var dispatches: [Int]
    var everRan: [Bool]
    var busyGPUSeconds = 0.0
    var gavelWorkerTime: [Int: Double] = [:]
    var fragmentationSum = 0.0
    var fragmentationRounds = 0
    /// GPU-seconds each tenant's jobs ran, per pool type.
    var tenantGPUSeconds: [[Double]]
    /// Per tenant, over the rounds it had active jobs: GPU-seconds all jobs ran, and the part of
    /// them its weight entitled it to (w_k / weights of the tenants active in the round).
    var tenantRoundGPUSeconds: [Double]
    var tenantEntitledGPUSeconds: [Double]
    /// Weight share of each tenant in the round being run (0 = not active).
    var roundEntitlement: [Double]
    var rounds = 0
    var events = 0

    init(simulation: Simulation) {
        sim = simulation
        mechanism = simulation.mechanism
        estimates = simulation.initialEstimates
        let n = simulation.trace.count
        stepsDone = Array(repeating: 0, count: n)
        completion = Array(repeating: nil, count: n)
        runSeconds = Array(repeating: 0, count: n)
        runSecondsByType = Array(repeating: Array(repeating: 0, count: simulation.pool.types.count), count: n)
        restarts = Array(repeating: 0, count: n)
        dispatches = Array(repeating: 0, count: n)
        everRan = Array(repeating: false, count: n)
        tenantGPUSeconds = Array(
            repeating: Array(repeating: 0, count: simulation.pool.types.count), count: simulation.options.tenants.count)
        tenantRoundGPUSeconds = Array(repeating: 0, count: simulation.options.tenants.count)
        tenantEntitledGPUSeconds = Array(repeating: 0, count: simulation.options.tenants.count)
        roundEntitlement = Array(repeating: 0, count: simulation.options.tenants.count)
    }

    mutating func run(progress: ((SimulationProgress) -> Void)?) throws -> SimulationResult {
        let trace = sim.trace
        let round = sim.options.roundSeconds
        let restartDelay = sim.options.restartSeconds
        let totalGPUs = sim.pool.capacity.reduce(0, +)
        var nextArrival = 0
        var remaining = trace.count
        var now = trace.first?.arrivalTime ?? 0
        var running: [Task] = []
        // Gavel's bookkeeping of round boundaries (used for the time credited to jobs).
        var roundStart = 0.0
        var roundEnd: Double?
        var idlePlans = 0
        var completed = 0

        while remaining > 0 {
            let arrivalPending = nextArrival < trace.count
            if !arrivalPending && running.isEmpty { mechanism.requestAllocationReset() }

            // Jump to the end of the round (the last running job's finish) or the next arrival.
            if let last = running.map(\.finish).max() {
                if let end = roundEnd { roundStart = end }
                roundEnd = last
                now = last
            } else if arrivalPending {
                now = trace[nextArrival].arrivalTime
            }

            // Account the round that just ended, latest finish first (Gavel's heap order).
            running.sort { $0.finish != $1.finish ? $0.finish > $1.finish : $0.job < $1.job }
            let roundGPUSeconds = running.reduce(0.0) { $0 + Double($1.workers.count) * ($1.finish - $1.start) }
            for k in roundEntitlement.indices where roundEntitlement[k] > 0 {
                tenantRoundGPUSeconds[k] += roundGPUSeconds
                tenantEntitledGPUSeconds[k] += roundEntitlement[k] * roundGPUSeconds
            }
            for task in running {
                events += 1
                let credited = task.finish - roundStart
                stepsDone[task.job] += task.steps
                runSeconds[task.job] += task.finish - task.start
                runSecondsByType[task.job][task.type] += task.finish - task.start
                busyGPUSeconds += Double(task.workers.count) * (task.finish - task.start)
                tenantGPUSeconds[sim.tenantOf[task.job]][task.type] += Double(task.workers.count) * (task.finish - task.start)
                for worker in task.workers { gavelWorkerTime[worker, default: 0] += credited }
                mechanism.recordExecution(job: task.job, typeIndex: task.type, seconds: credited)
                if estimates != nil { try feedBack(task) }
                if stepsDone[task.job] >= trace[task.job].totalSteps {
                    completion[task.job] = task.finish
                    mechanism.removeJob(task.job)
                    remaining -= 1
                    completed += 1
                }
            }
            running.removeAll()
            if remaining == 0 { break }

            // Add the jobs that have arrived.
            while nextArrival < trace.count && trace[nextArrival].arrivalTime <= now {
                mechanism.addJob(nextArrival)
                nextArrival += 1
                events += 1
            }

            // Plan and start the next round.
            let active = mechanism.activeJobs
            let tenantShare = tenantShares(active: active)
            let snapshot = try active.map { id in
                let (throughputs, elastic) = try belief(job: id)
                let tenant = sim.tenantOf[id]
                return PolicyJob(
                    id: id, scaleFactor: trace[id].scaleFactor,
                    priorityWeight: trace[id].priorityWeight * tenantShare[tenant],
                    throughputs: throughputs, stepsRemaining: Double(trace[id].totalSteps - stepsDone[id]),
                    timeSinceArrival: now - trace[id].arrivalTime, elastic: elastic, tenant: tenant,
                    tenantWeight: sim.options.tenants[tenant].weight)
            }
            let plan = try mechanism.planRound(now: now, jobs: snapshot)
            let activeTenants = Set(active.map { sim.tenantOf[$0] })
            let activeWeight = activeTenants.reduce(0.0) { $0 + sim.options.tenants[$1].weight }
            for k in roundEntitlement.indices {
                roundEntitlement[k] = activeTenants.contains(k) ? sim.options.tenants[k].weight / activeWeight : 0
            }
            rounds += 1
            events += 1
            if !active.isEmpty { recordFragmentation(plan: plan, active: active, totalGPUs: totalGPUs) }
            for assignment in plan {
                let id = assignment.jobID
                let throughput = sim.runThroughput(job: id, type: assignment.typeIndex, workers: assignment.workers)
                guard throughput > 0 else {
                    if estimates != nil {
                        // Planned on an estimate for a configuration that cannot run (e.g. out of
                        // memory): the start fails after the restart delay; feedback remembers it.
                        dispatches[id] += 1
                        running.append(
                            Task(
                                job: id, type: assignment.typeIndex, workers: assignment.workers, steps: 0, start: now,
                                finish: now + restartDelay))
                        continue
                    }
                    throw SimulationError("job \(id) was placed on GPUs where it has no throughput")
                }
                dispatches[id] += 1
                let fresh = !assignment.keepsPreviousWorkers
                if fresh && everRan[id] { restarts[id] += 1 }
                everRan[id] = true
                let delay = fresh ? restartDelay : 0
                let left = trace[id].totalSteps - stepsDone[id]
                let steps = min(Int(throughput * (round - delay)), left)
                running.append(
                    Task(
                        job: id, type: assignment.typeIndex, workers: assignment.workers, steps: steps, start: now,
                        finish: now + delay + Double(steps) / throughput))
            }
            if running.isEmpty && nextArrival >= trace.count {
                idlePlans += 1
                if idlePlans > 2 {
                    throw SimulationError(
                        "the simulation stalled at t=\(now) s: \(remaining) jobs are waiting but the policy runs none of them")
                }
            } else {
                idlePlans = 0
            }
            progress?(
                SimulationProgress(simulatedSeconds: now, completedJobs: completed, totalJobs: trace.count, rounds: rounds))
        }
        return makeResult(end: now)
    }

    /// The factor each tenant's jobs' priority weights are multiplied by, so that a tenant's
    /// jobs together weigh what its weight entitles it to: (w_k / sum of the weights of tenants
    /// with active jobs) * (active jobs / active jobs of tenant k). Exactly 1 with one tenant, and
    /// with equally weighted tenants that have equally many jobs.
    func tenantShares(active: [Int]) -> [Double] {
        let tenants = sim.options.tenants
        guard tenants.count > 1 else { return [1] }
        var count = Array(repeating: 0, count: tenants.count)
        for id in active { count[sim.tenantOf[id]] += 1 }
        let weightSum = tenants.indices.filter { count[$0] > 0 }.reduce(0.0) { $0 + tenants[$1].weight }
        return tenants.indices.map { k in
            count[k] > 0 ? tenants[k].weight / weightSum * Double(active.count) / Double(count[k]) : 1
        }
    }

    /// What the planner believes about job `id`: throughputs of its trace configuration per type
    /// and its elastic profile (the truth with `--estimator oracle`, estimates with `cf`).
    mutating func belief(job id: Int) throws -> (throughputs: [Double], elastic: ElasticProfile?) {
        // (Mutated in place through `estimates!`: a local copy would copy the estimator.)
        if estimates == nil { return (sim.plannedThroughput[id], sim.elasticBelief?[id]) }
        let job = sim.trace[id]
        let maxPerServer = sim.pool.maxGPUsPerServer
        let consolidatedOnly = sim.options.throughputMode == .consolidated
        do {
            try estimates!.profileIfNew(
                jobType: job.jobType, requestedWorkers: job.scaleFactor,
                spread: !consolidatedOnly && job.scaleFactor > (maxPerServer.max() ?? 1))
        } catch {
            throw SimulationError("estimator: \(error)")
        }
        estimates!.refitIfNeeded()
        let truth = sim.elasticTruth![id]
        let profile = estimates!.profile(
            jobType: job.jobType, traceScale: job.scaleFactor, workers: truth.options.map(\.workers),
            totalWork: truth.totalWork, consolidatedOnly: consolidatedOnly)
        var throughputs = sim.plannedThroughput[id]
        if let own = profile.options.first(where: { $0.workers == job.scaleFactor }) {
            throughputs = own.packed.indices.map { t in
                job.scaleFactor <= maxPerServer[t] ? own.packed[t] : own.spread[t]
            }
        }
        return (throughputs, profile)
    }

    /// Feeds the throughput a job got in the round back to the estimator.
    mutating func feedBack(_ task: Task) throws {
        if estimates == nil { return }
        let spread =
            sim.options.throughputMode == .placement && Set(task.workers.map { sim.serverOf[$0]! }).count > 1
        do {
            try estimates!.feedBack(
                jobType: sim.trace[task.job].jobType, gpuType: sim.pool.types[task.type], workers: task.workers.count,
                spread: spread)
        } catch {
            throw SimulationError("estimator: \(error)")
        }
    }

    /// GPUs left idle this round although a waiting job could have used that many.
    mutating func recordFragmentation(plan: [RoundAssignment], active: [Int], totalGPUs: Int) {
        var idle = sim.pool.capacity
        var placed = Set<Int>()
        for a in plan {
            idle[a.typeIndex] -= a.workers.count
            placed.insert(a.jobID)
        }
        let waiting = active.filter { !placed.contains($0) }
        var wasted = 0
        for t in idle.indices where idle[t] > 0 {
            let usable = waiting.contains { id in
                sim.trace[id].scaleFactor <= idle[t] && sim.plannedThroughput[id][t] > 0
            }
            if usable { wasted += idle[t] }
        }
        fragmentationSum += Double(wasted) / Double(max(totalGPUs, 1))
        fragmentationRounds += 1
    }

    func makeResult(end: Double) -> SimulationResult {
        let trace = sim.trace
        let firstArrival = trace.first?.arrivalTime ?? 0
        var records: [JobRecord] = []
        let averageActive = ActiveJobIntegral(
            arrivals: trace.map(\.arrivalTime), completions: completion.map { $0 ?? end })
        let snapshotTypes = sim.pool.types
        let capacity = sim.pool.capacity
        for (i, job) in trace.enumerated() {
            let done = completion[i] ?? end
            let jct = done - job.arrivalTime
            let n = averageActive.average(from: job.arrivalTime, to: done)
            // Running alone on a 1/N share of the cluster (Gavel's isolated share with m = N).
            let policyJob = PolicyJob(
                id: i, scaleFactor: job.scaleFactor, throughputs: sim.plannedThroughput[i],
                stepsRemaining: Double(job.totalSteps))
            var share = capacity.map { Double($0) / max(n, 1) / Double(job.scaleFactor) }
            let sum = share.reduce(0, +)
            if sum > 1 { share = share.map { $0 / sum } }
            var isolated = 0.0
            for t in share.indices { isolated += share[t] * policyJob.throughputs[t] }
            let isolatedTime = isolated > 0 ? Double(job.totalSteps) / isolated : .infinity
            let best = sim.plannedThroughput[i].enumerated()
                .filter { capacity[$0.offset] >= job.scaleFactor }.map(\.element).max() ?? 0
            let ideal = best > 0 ? Double(job.totalSteps) / best : .infinity
            let wait = max(0, jct - runSeconds[i])
            records.append(
                JobRecord(
                    id: i, jobType: job.jobType, scaleFactor: job.scaleFactor, totalSteps: job.totalSteps,
                    arrival: job.arrivalTime, completion: completion[i], jct: jct, runSeconds: runSeconds[i],
                    runSecondsByType: Dictionary(uniqueKeysWithValues: zip(snapshotTypes, runSecondsByType[i])),
                    waitSeconds: wait, restarts: restarts[i], dispatches: dispatches[i], averageActiveJobs: n,
                    finishTimeFairness: jct / isolatedTime, latencyRatio: wait / ideal, tenant: sim.tenantOf[i]))
        }
        let totalGPUs = Double(capacity.reduce(0, +))
        let span = end - firstArrival
        let gavelUtilization =
            end > 0
            ? sim.pool.servers.flatMap { $0.flatMap { $0 } }.map { (gavelWorkerTime[$0] ?? 0) / end }.reduce(0, +)
                / totalGPUs : 0
        let metrics = SimulationMetrics(
            records: records, makespan: span,
            utilization: span > 0 ? busyGPUSeconds / (totalGPUs * span) : 0,
            gavelUtilization: gavelUtilization,
            fragmentation: fragmentationRounds > 0 ? fragmentationSum / Double(fragmentationRounds) : 0,
            tenants: tenantMetrics(records: records))
        return SimulationResult(
            policy: sim.policyName, gavelPolicy: sim.gavelPolicyName, cluster: sim.cluster.name,
            gpus: Dictionary(uniqueKeysWithValues: zip(snapshotTypes, capacity)), options: sim.options,
            records: records, metrics: metrics, rounds: rounds, events: events,
            allocations: mechanism.allocationCount, trading: mechanism.tradingFigures)
    }
}

extension Engine {
    /// Per tenant: jobs, average JCT, share of the GPU-seconds received vs entitled (over the
    /// rounds the tenant had jobs in the system, entitled = its weight / the weights of the tenants
    /// with jobs in the system, round by round), and the
    /// largest envy between tenants over the run (`TenantFairness.maxEnvy` on each tenant's
    /// GPU-seconds per type, valued with its speed-up vector over all its jobs).
    func tenantMetrics(records: [JobRecord]) -> [TenantMetrics] {
        let tenants = sim.options.tenants
        let types = sim.pool.types.count
        var jobsOf: [[Int]] = Array(repeating: [], count: tenants.count)
        for r in records { jobsOf[r.tenant].append(r.id) }
        let used = tenantGPUSeconds.map { $0.reduce(0, +) }
        return tenants.indices.map { k in
            let jcts = jobsOf[k].map { records[$0].jct }
            let jobs = jobsOf[k].map { PolicyJob(id: $0, scaleFactor: 1, throughputs: sim.plannedThroughput[$0], stepsRemaining: 1) }
            return TenantMetrics(
                name: tenants[k].name, weight: tenants[k].weight, jobs: jcts.count,
                avgJCT: jcts.isEmpty ? 0 : jcts.reduce(0, +) / Double(jcts.count),
                shareReceived: tenantRoundGPUSeconds[k] > 0 ? used[k] / tenantRoundGPUSeconds[k] : 0,
                shareEntitled: tenantRoundGPUSeconds[k] > 0 ? tenantEntitledGPUSeconds[k] / tenantRoundGPUSeconds[k] : 0,
                gpuSecondsByType: tenantGPUSeconds[k], speedUp: TenantFairness.speedUp(of: jobs, types: types))
        }
    }
}

/// The number of active jobs as a step function of time, integrated, so the average number of
/// jobs present while one job was in the system is an O(log n) lookup.
struct ActiveJobIntegral {
    var times: [Double] = []
    /// integral[k] = integral of the active count from times[0] to times[k].
    var integral: [Double] = []
    var counts: [Int] = []

    init(arrivals: [Double], completions: [Double]) {
        var changes: [(Double, Int)] = arrivals.map { ($0, 1) } + completions.map { ($0, -1) }
        changes.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        var count = 0
        var area = 0.0
        for (time, delta) in changes {
            if let last = times.last {
                area += Double(count) * (time - last)
            }
            if times.last == time {
                count += delta
                counts[counts.count - 1] = count
                integral[integral.count - 1] = area
            } else {
                count += delta
                times.append(time)
                integral.append(area)
                counts.append(count)
            }
        }
    }

    /// Integral of the active count from times[0] to t.
    func area(at t: Double) -> Double {
        guard let first = times.first, t > first else { return 0 }
        var lo = 0
        var hi = times.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if times[mid] <= t { lo = mid } else { hi = mid - 1 }
        }
        return integral[lo] + Double(counts[lo]) * (t - times[lo])
    }

    func average(from a: Double, to b: Double) -> Double {
        guard b > a else { return Double(max(1, counts.first ?? 1)) }
        return (area(at: b) - area(at: a)) / (b - a)
    }
}
