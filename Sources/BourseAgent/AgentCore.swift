import BourseModel
import BourseWire
import BourseWorkload

/// Settings of an emulating agent.
public struct AgentSettings: Sendable, Hashable {
    /// Cluster seconds between periodic checkpoints of a running worker.
    public var checkpointSeconds: Double
    /// Relative throughput noise: a configuration runs at table x (1 +- noise), fixed per
    /// (job, GPU type, worker count, placement) and seed.
    public var noise: Double
    public var seed: UInt64

    /// The network: what a job spread over servers runs at when the table has no
    /// `*_unconsolidated` entry for its GPU type (``NetworkSpeedModel``, as in the simulator).
    public var network: NetworkSpec

    public init(checkpointSeconds: Double = 120, noise: Double = 0.05, seed: UInt64 = 0, network: NetworkSpec = .default) {
        self.checkpointSeconds = checkpointSeconds
        self.noise = noise
        self.seed = seed
        self.network = network
    }
}

/// The data plane of one rack as a pure state machine: the rack's nodes and GPUs, and emulated
/// workers that make progress on the cluster clock.
///
/// Inputs: worker commands (`apply`), node failures (`failNode`), and the passage of time (every
/// input takes `now`; `advance(to:)` alone just moves time). Outputs: command acks, the jobs that
/// completed, and the register / heartbeat reports the shell sends to the rack's shard.
///
/// Progress is a pure function of time: a worker started (or resumed) at `resumeAt` from
/// `resumeSteps` runs at `rate` job steps per second, so steps(t) = resumeSteps + rate (t -
/// resumeAt), capped at the total. `resumeAt` includes the checkpoint-restart delay. Checkpoints
/// are taken every `checkpointSeconds` of progress; a graceful stop (or move/resize) checkpoints
/// at once, a node failure loses the progress since the last periodic checkpoint.
///
/// Units: `WorkerCommand.workers` is the job's preferred worker count (the unit of
/// `total_steps`: steps at that count); `gpu_ids.count` is the number of workers to run now. With
/// w workers a job advances at table(w) x w / preferred of its steps per second (a step at w
/// workers processes w/preferred times the samples).
public struct AgentCore: Sendable {
    public struct GPU: Sendable, Hashable {
        public var id: String
        public var type: String
        public var nodeID: String
        public var healthy: Bool
        public var jobID: String?
    }

    public struct Worker: Sendable, Hashable {
        public var jobID: String
        public var jobType: String
        public var preferredWorkers: Int
        public var gpuIDs: [String]
        public var gpuType: String
        public var consolidated: Bool
        /// The workers of the whole job (more than `gpuIDs` when it is spread over racks).
        public var jobWorkers: Int
        public var totalSteps: Double
        public var resumeSteps: Double
        /// Progress starts (after the restart delay) at this cluster time.
        public var resumeAt: Double
        /// Job steps per second once running.
        public var rate: Double

        public func steps(at t: Double) -> Double {
            guard t > resumeAt else { return resumeSteps }
            return min(totalSteps, resumeSteps + rate * (t - resumeAt))
        }

        public func checkpoint(at t: Double, period: Double) -> Double {
            guard t > resumeAt, period > 0 else { return resumeSteps }
            let k = ((t - resumeAt) / period).rounded(.down)
            return min(totalSteps, resumeSteps + rate * k * period)
        }

        /// When the last step is done.
        public var finishAt: Double {
            rate > 0 ? resumeAt + max(0, totalSteps - resumeSteps) / rate : .infinity
        }
    }

    public let agentID: String
    public let rackID: String
    public let address: String
    public let settings: AgentSettings
    public private(set) var now: Double
    public private(set) var gpus: [String: GPU] = [:]
    /// GPU ids in config order.
    public private(set) var gpuOrder: [String] = []
    public private(set) var nodes: [NodeSpec]
    public private(set) var failedNodes: Set<String> = []
    public private(set) var workers: [String: Worker] = [:]
    /// Stopped, completed or failed-over jobs: their last progress, reported until the shard
    /// starts them again or forgets them with a STOP.
    public private(set) var parked: [String: JobProgress] = [:]
    public private(set) var commandsApplied = 0
    public private(set) var commandsRejected = 0
    private let table: ThroughputTable
    private let speedModel: NetworkSpeedModel
    private var recentCommands: [UInt64: CommandAck] = [:]
    private var recentOrder: [UInt64] = []

    public init(rack: RackSpec, table: ThroughputTable, settings: AgentSettings = AgentSettings(), now: Double) {
        self.agentID = "agent-\(rack.id)"
        self.rackID = rack.id
        self.address = rack.agentAddress
        self.settings = settings
        self.table = table
        self.speedModel = NetworkSpeedModel(
            table: table, network: settings.network, gpuTypes: Array(Set(rack.nodes.flatMap { $0.gpuIDs.map(\.type) })))
        self.nodes = rack.nodes
        self.now = now
        for node in rack.nodes {
            for gpu in node.gpuIDs {
                gpus[gpu.id] = GPU(id: gpu.id, type: gpu.type, nodeID: node.id, healthy: true, jobID: nil)
                gpuOrder.append(gpu.id)
            }
        }
    }

    // MARK: Time

    /// Moves time to `t` (never backwards); returns the jobs that completed on the way, in
    /// completion order. Their GPUs are free again; they stay in `parked` with all steps done.
    @discardableResult
    public mutating func advance(to t: Double) -> [String] {
        if t > now { now = t }
        let done = workers.values.filter { $0.finishAt <= now }.sorted { ($0.finishAt, $0.jobID) < ($1.finishAt, $1.jobID) }
        for worker in done {
            release(worker)
            parked[worker.jobID] = JobProgress(
                jobID: worker.jobID, stepsDone: worker.totalSteps, checkpointSteps: worker.totalSteps, stepsPerSecond: 0,
                workers: 0, gpuType: worker.gpuType)
        }
        return done.map(\.jobID)
    }

    /// The next time something happens by itself (a completion), if any.
    public var nextEventTime: Double? { workers.values.map(\.finishAt).filter(\.isFinite).min() }

    // MARK: Commands

    /// Applies one command at `now`. Retries of a command id get the first answer again.
    public mutating func apply(_ command: WorkerCommand, now t: Double) -> CommandAck {
        advance(to: t)
        if command.commandID != 0, let earlier = recentCommands[command.commandID] { return earlier }
        let ack: CommandAck
        switch command.kind {
        case .start, .resize: ack = start(command)
        case .stop: ack = stop(command)
        default: ack = CommandAck(commandID: command.commandID, ok: false, error: "unknown command kind \(command.kind.rawValue)")
        }
        if ack.ok { commandsApplied += 1 } else { commandsRejected += 1 }
        if command.commandID != 0 {
            recentCommands[command.commandID] = ack
            recentOrder.append(command.commandID)
            if recentOrder.count > 4096 { recentCommands[recentOrder.removeFirst()] = nil }
        }
        return ack
    }

    private mutating func start(_ c: WorkerCommand) -> CommandAck {
        func fail(_ message: String) -> CommandAck { CommandAck(commandID: c.commandID, ok: false, error: message) }
        if c.jobID.isEmpty { return fail("job_id is empty") }
        if c.gpuIDs.isEmpty { return fail("\(c.jobID): no gpu_ids") }
        if c.totalSteps == 0 { return fail("\(c.jobID): total_steps is 0") }
        if Set(c.gpuIDs).count != c.gpuIDs.count { return fail("\(c.jobID): duplicate gpu_ids") }
        var type: String?
        var nodesUsed = Set<String>()
        for id in c.gpuIDs {
            guard let gpu = gpus[id] else { return fail("\(c.jobID): no GPU '\(id)' in rack \(rackID)") }
            guard gpu.healthy else { return fail("\(c.jobID): GPU \(id) is not healthy") }
            if let holder = gpu.jobID, holder != c.jobID { return fail("\(c.jobID): GPU \(id) is busy with \(holder)") }
            if let type, type != gpu.type { return fail("\(c.jobID): GPUs of different types (\(type), \(gpu.type))") }
            type = gpu.type
            nodesUsed.insert(gpu.nodeID)
        }
        let gpuType = type!
        let n = c.gpuIDs.count
        let preferred = c.workers == 0 ? n : Int(c.workers)
        // A part of a job spread over racks runs at the speed of the whole job across the spine
        // (every part advances alike; the part its shard reports for is the job's progress).
        let total = max(n, Int(c.spreadWorkers))
        let consolidated = nodesUsed.count == 1 && total == n
        let tier: NetworkTier = total > n ? .spine : consolidated ? .node : .rack
        let base = speedModel.stepsPerSecond(model: c.jobType, workers: total, gpuType: gpuType, tier: tier)
        guard base > 0 else {
            return fail("\(c.jobID): the throughput table has no entry for '\(c.jobType)' with \(total) workers on \(gpuType)")
        }
        if let current = workers[c.jobID], Set(current.gpuIDs) == Set(c.gpuIDs), current.jobWorkers == total {
            return CommandAck(commandID: c.commandID, ok: true)  // already running there
        }
        let progress: Double
        if let current = workers[c.jobID] {
            progress = current.steps(at: now)  // graceful move/resize: checkpoint now
            release(current)
        } else {
            progress = max(c.resumeFromSteps, parked[c.jobID]?.checkpointSteps ?? 0)
        }
        parked[c.jobID] = nil
        let factor = 1 + settings.noise * (2 * noiseUnit(c.jobID, gpuType, total, consolidated) - 1)
        let worker = Worker(
            jobID: c.jobID, jobType: c.jobType, preferredWorkers: preferred, gpuIDs: c.gpuIDs, gpuType: gpuType,
            consolidated: consolidated, jobWorkers: total, totalSteps: Double(c.totalSteps), resumeSteps: min(progress, Double(c.totalSteps)),
            resumeAt: now + max(0, c.restartDelay), rate: base * Double(total) / Double(preferred) * factor)
        workers[c.jobID] = worker
        for id in c.gpuIDs { gpus[id]?.jobID = c.jobID }
        return CommandAck(commandID: c.commandID, ok: true)
    }

    /// The ack carries the job's progress at the stop: the checkpoint a graceful stop takes, or
    /// (no worker any more) the last progress parked here, e.g. a completion; so a shard moving
    /// the job to another agent resumes from it, not from the last heartbeat.
    private mutating func stop(_ c: WorkerCommand) -> CommandAck {
        if let worker = workers[c.jobID] {
            let steps = worker.steps(at: now)
            release(worker)
            parked[c.jobID] = JobProgress(
                jobID: c.jobID, stepsDone: steps, checkpointSteps: steps, stepsPerSecond: 0, workers: 0,
                gpuType: worker.gpuType)
            return CommandAck(commandID: c.commandID, ok: true, stepsDone: steps, checkpointSteps: steps)
        }
        // The shard has seen its final progress (or moves it): forget it, and say what it was.
        let last = parked.removeValue(forKey: c.jobID)
        return CommandAck(
            commandID: c.commandID, ok: true, stepsDone: last?.stepsDone ?? 0, checkpointSteps: last?.checkpointSteps ?? 0)
    }

    private mutating func release(_ worker: Worker) {
        for id in worker.gpuIDs where gpus[id]?.jobID == worker.jobID { gpus[id]?.jobID = nil }
        workers[worker.jobID] = nil
    }

    /// A newer checkpoint of `jobID` from the shared store (a worker on another rack saved it
    /// when it stopped): a worker of the job that has not got that far restarts from it now, as
    /// a worker loading the newest checkpoint does. Returns true when it did.
    public mutating func adoptCheckpoint(jobID: String, steps: Double, now t: Double) -> Bool {
        advance(to: t)
        guard var worker = workers[jobID], steps > worker.steps(at: t) else { return false }
        worker.resumeSteps = min(steps, worker.totalSteps)
        worker.resumeAt = max(worker.resumeAt, t)
        workers[jobID] = worker
        return true
    }

    // MARK: Failures

    /// A node fails at `now`: its GPUs become unhealthy and the workers on it stop, keeping only
    /// their last periodic checkpoint.
    public mutating func failNode(_ nodeID: String, now t: Double) {
        advance(to: t)
        failedNodes.insert(nodeID)
        for id in gpuOrder where gpus[id]?.nodeID == nodeID { gpus[id]?.healthy = false }
        for worker in workers.values where worker.gpuIDs.contains(where: { gpus[$0]?.nodeID == nodeID }) {
            let checkpoint = worker.checkpoint(at: now, period: settings.checkpointSeconds)
            release(worker)
            parked[worker.jobID] = JobProgress(
                jobID: worker.jobID, stepsDone: checkpoint, checkpointSteps: checkpoint, stepsPerSecond: 0, workers: 0,
                gpuType: worker.gpuType)
        }
    }

    /// A failed node is repaired at `now`: its GPUs are healthy (and free) again.
    public mutating func recoverNode(_ nodeID: String, now t: Double) {
        advance(to: t)
        guard failedNodes.remove(nodeID) != nil else { return }
        for id in gpuOrder where gpus[id]?.nodeID == nodeID { gpus[id]?.healthy = true }
    }

    // MARK: Reports

    public var nodeReports: [NodeReport] {
        nodes.map { node in
            NodeReport(
                nodeID: node.id, rack: rackID, health: failedNodes.contains(node.id) ? .failed : .healthy,
                gpus: gpuOrder.compactMap { gpus[$0] }.filter { $0.nodeID == node.id }.map {
                    GPUReport(gpuID: $0.id, gpuType: $0.type, healthy: $0.healthy, jobID: $0.jobID ?? "")
                })
        }
    }

    /// Progress of every running worker, then of every parked job, by job id.
    public var jobReports: [JobProgress] {
        let running = workers.values.map { w in
            JobProgress(
                jobID: w.jobID, stepsDone: w.steps(at: now),
                checkpointSteps: w.checkpoint(at: now, period: settings.checkpointSeconds),
                stepsPerSecond: w.rate, workers: UInt32(w.gpuIDs.count), gpuType: w.gpuType)
        }
        return (running + parked.values).sorted { $0.jobID < $1.jobID }
    }

    public mutating func register(now t: Double) -> AgentRegister {
        advance(to: t)
        return AgentRegister(agentID: agentID, address: address, nodes: nodeReports, jobs: jobReports)
    }

    public mutating func heartbeat(now t: Double) -> AgentHeartbeat {
        advance(to: t)
        return AgentHeartbeat(agentID: agentID, at: now, nodes: nodeReports, jobs: jobReports)
    }

    // MARK: Noise

    private func noiseUnit(_ jobID: String, _ type: String, _ n: Int, _ consolidated: Bool) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: stable across runs and platforms
        for byte in "\(jobID)|\(type)|\(n)|\(consolidated)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
        }
        var random = SeededRandom(seed: settings.seed ^ hash)
        return random.nextUnitDouble()
    }
}
