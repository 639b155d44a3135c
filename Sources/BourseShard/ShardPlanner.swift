import BourseModel
import BoursePolicy
import BourseWorkload

/// The one place the shard uses the policy module: it builds the round planner for the GPUs the
/// shard owns and turns the shard's jobs into the planner's `PolicyJob`s.
///
/// Gavel's policies go through `GavelRoundMechanism`; "bourse" / "bourse-fixed" through
/// `BourseRoundPlanner` (elastic: its assignments may use another worker count than the job's
/// preferred one). Both sit behind the `RoundPlanner` protocol.
public struct ShardPlanner: Sendable {
    /// GPU of the pool by planner worker id.
    public struct GPUSlot: Sendable, Hashable {
        public var id: String
        public var type: String
        public var nodeID: String
        public var rackID: String
    }

    public let policyName: String
    public let pool: WorkerPool
    public let slots: [GPUSlot]
    public private(set) var planner: any RoundPlanner
    private let table: ThroughputTable
    /// Speeds of jobs spread over servers (the table's `*_unconsolidated` entries, else the
    /// network model), as the agents run them and the simulator models them.
    private let speedModel: NetworkSpeedModel
    private let maxPerServer: [Int]
    private let elastic: Bool
    private let fixed: Bool
    /// The Bourse planner's parameters (nil for the other policies): what a trading shard's
    /// market planner is built with.
    public let bourseParameters: BourseRoundPlanner.Parameters?

    public init(
        policy: String, racks: [RackSpec], table: ThroughputTable, roundSeconds: Double, restartSeconds: Double,
        excludedNodes: Set<String> = [], minimumTimeBetweenAllocationResets: Double = 1920, allTypes: [String] = [],
        network: NetworkSpec = .default
    ) throws {
        var slots: [GPUSlot] = []
        var typesSeen: [String] = []
        for rack in racks {
            for node in rack.nodes where !excludedNodes.contains(node.id) {
                for gpu in node.gpuIDs {
                    slots.append(GPUSlot(id: gpu.id, type: gpu.type, nodeID: node.id, rackID: rack.id))
                    if !typesSeen.contains(gpu.type) { typesSeen.append(gpu.type) }
                }
            }
        }
        // Trading shards share one type list (the whole cluster's), so type indices agree.
        let types = WorkerPool.gavelTypeOrder(typesSeen + allTypes.filter { !typesSeen.contains($0) })
        var servers: [[[Int]]] = types.map { _ in [] }
        var serverIndex: [String: Int] = [:]  // "type|node" -> index in servers[t]
        for (i, slot) in slots.enumerated() {
            let t = types.firstIndex(of: slot.type)!
            let key = "\(slot.type)|\(slot.nodeID)"
            if let s = serverIndex[key] {
                servers[t][s].append(i)
            } else {
                serverIndex[key] = servers[t].count
                servers[t].append([i])
            }
        }
        let pool = WorkerPool(types: types, servers: servers)
        self.policyName = policy
        self.pool = pool
        self.slots = slots
        self.table = table
        self.speedModel = NetworkSpeedModel(table: table, network: network, gpuTypes: types)
        self.maxPerServer = pool.maxGPUsPerServer
        if PolicyCatalog.isBourse(policy) {
            var parameters = BourseRoundPlanner.Parameters()
            parameters.roundSeconds = roundSeconds
            parameters.restartSeconds = restartSeconds
            parameters.name = policy
            planner = BourseRoundPlanner(pool: pool, parameters: parameters)
            bourseParameters = parameters
            elastic = true
            fixed = policy == "bourse-fixed"
        } else if PolicyCatalog.isHops(policy) {
            planner = HopsLRFPlanner(pool: pool)
            bourseParameters = nil
            elastic = false
            fixed = true
        } else {
            planner = GavelRoundMechanism(
                policy: try PolicyCatalog.make(policy), pool: pool,
                configuration: .init(
                    roundSeconds: roundSeconds, minimumTimeBetweenAllocationResets: minimumTimeBetweenAllocationResets))
            bourseParameters = nil
            elastic = false
            fixed = true
        }
    }

    public mutating func addJob(_ id: Int) { planner.addJob(id) }
    public mutating func removeJob(_ id: Int) { planner.removeJob(id) }
    public mutating func recordExecution(job id: Int, typeIndex: Int, seconds: Double) {
        planner.recordExecution(job: id, typeIndex: typeIndex, seconds: seconds)
    }

    /// What the planner needs to know of a job.
    public struct JobInput: Sendable, Hashable {
        public var id: Int
        public var model: String
        public var workers: Int
        public var minWorkers: Int
        public var maxWorkers: Int
        public var weight: Double
        public var totalSteps: Double
        public var stepsDone: Double
        public var waited: Double

        public init(
            id: Int, model: String, workers: Int, minWorkers: Int, maxWorkers: Int, weight: Double, totalSteps: Double,
            stepsDone: Double, waited: Double
        ) {
            self.id = id
            self.model = model
            self.workers = workers
            self.minWorkers = minWorkers
            self.maxWorkers = maxWorkers
            self.weight = weight
            self.totalSteps = totalSteps
            self.stepsDone = stepsDone
            self.waited = waited
        }
    }

    /// True when the job can run on this pool at its preferred worker count (or, elastic, at some count).
    public func canRun(_ job: JobInput) -> Bool {
        policyJob(job).throughputs.indices.contains { t in
            let counts = elastic && !fixed ? workerCounts(job) : [job.workers]
            return counts.contains { w in
                pool.capacity[t] >= w && speed(job.model, workers: w, type: pool.types[t], packed: w <= maxPerServer[t]) > 0
            }
        }
    }

    /// Plans the round starting at `now` over `jobs` (the planner's active jobs).
    public mutating func planRound(now: Double, jobs: [JobInput]) throws -> [RoundAssignment] {
        try planner.planRound(now: now, jobs: jobs.map(policyJob))
    }

    private func workerCounts(_ job: JobInput) -> [Int] {
        var counts = table.scaleFactors(model: job.model)
        counts = counts.filter { $0 >= job.minWorkers && $0 <= job.maxWorkers }
        return counts.isEmpty ? [job.workers] : counts
    }

    /// A Bourse planner over this pool that values jobs against `valuationPool` (the whole
    /// cluster): the market planner of a trading shard. Nil for the other policies.
    public func marketPlanner(valuationPool: WorkerPool) -> BourseRoundPlanner? {
        bourseParameters.map { BourseRoundPlanner(pool: pool, parameters: $0, valuationPool: valuationPool) }
    }

    /// Steps/s of `model` at `workers` workers of `type`, on one server or spread over a rack.
    private func speed(_ model: String, workers: Int, type: String, packed: Bool) -> Double {
        speedModel.stepsPerSecond(model: model, workers: workers, gpuType: type, tier: packed ? .node : .rack)
    }

    public func policyJob(_ job: JobInput) -> PolicyJob {
        let key = JobTypeKey(model: job.model, scaleFactor: job.workers)
        let throughputs = pool.types.indices.map { t in
            table.throughput(key, gpuType: pool.types[t], consolidated: job.workers <= maxPerServer[t])
        }
        var profile: ElasticProfile?
        if elastic {
            let counts = fixed ? [job.workers] : workerCounts(job)
            let s = Double(max(1, job.workers))
            profile = ElasticProfile(
                totalWork: job.totalSteps,
                options: counts.map { w in
                    let key = JobTypeKey(model: job.model, scaleFactor: w)
                    let scale = Double(w) / s
                    return ElasticOption(
                        workers: w,
                        packed: pool.types.map { table.throughput(key, gpuType: $0, consolidated: true) * scale },
                        spread: pool.types.map { speed(job.model, workers: w, type: $0, packed: false) * scale })
                })
        }
        return PolicyJob(
            id: job.id, scaleFactor: job.workers, priorityWeight: job.weight > 0 ? job.weight : 1, throughputs: throughputs,
            stepsRemaining: max(0, job.totalSteps - job.stepsDone), timeSinceArrival: max(0, job.waited), elastic: profile)
    }
}
