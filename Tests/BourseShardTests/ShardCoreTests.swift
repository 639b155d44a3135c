import BourseModel
import BourseShard
import BourseWire
import BourseWorkload
import Testing

private let rack = RackSpec(
    id: "r0", shardAddress: "tcp://127.0.0.1:1", agentAddress: "tcp://127.0.0.1:2",
    nodes: [NodeSpec(id: "r0-n0", rack: "r0", gpus: ["v100": 2]), NodeSpec(id: "r0-n1", rack: "r0", gpus: ["v100": 2])])

private let table = ThroughputTable(entries: [
    "v100": [JobTypeKey(model: "ResNet", scaleFactor: 1): 10, JobTypeKey(model: "ResNet", scaleFactor: 2): 16,
             JobTypeKey(model: "ResNet", scaleFactor: 4): 30],
    "v100_unconsolidated": [JobTypeKey(model: "ResNet", scaleFactor: 2): 12, JobTypeKey(model: "ResNet", scaleFactor: 4): 20],
])

private func job(_ id: String, workers: UInt32 = 1, steps: UInt64 = 100, home: String = "shard-r0", state: JobState = .pending) -> JobStatus {
    JobStatus(jobID: id, spec: JobSpec(jobType: "ResNet", totalSteps: steps, workers: workers), state: state, homeShard: home)
}

private func register(_ core: inout ShardCore, now: Double, jobs: [JobProgress] = []) -> [ShardAction] {
    core.handle(
        .agentReport(agentID: "agent-r0", address: "tcp://127.0.0.1:2", nodes: [NodeReport(nodeID: "r0-n0", rack: "r0")],
                     jobs: jobs, at: now, isRegister: true), now: now)
}

private func heartbeat(_ core: inout ShardCore, now: Double, jobs: [JobProgress]) -> [ShardAction] {
    core.handle(.agentReport(agentID: "agent-r0", address: "", nodes: [NodeReport(nodeID: "r0-n0", rack: "r0")], jobs: jobs, at: now, isRegister: false), now: now)
}

private extension Array where Element == ShardAction {
    var commands: [WorkerCommand] { compactMap { if case .sendCommand(_, let c) = $0 { c } else { nil } } }
    var transitions: [JobTransition] { compactMap { if case .reportTransition(let t) = $0 { t } else { nil } } }
    var polls: Int { filter { $0 == .pollGateway }.count }
}

@Suite("ShardCore")
struct ShardCoreTests {
    func makeCore(policy: String = "fifo") throws -> ShardCore {
        try ShardCore(
            settings: ShardSettings(shardID: "shard-r0", roundSeconds: 360, restartSeconds: 30, firstTransitionID: 1000),
            racks: [rack], table: table, policy: policy, now: 0)
    }

    @Test("tenant weights from the config decide which tenant's job gets the GPUs")
    func tenantWeights() throws {
        func firstStart(weights: [String: Double]) throws -> String? {
            var settings = ShardSettings(shardID: "shard-r0", roundSeconds: 360, restartSeconds: 30, firstTransitionID: 1000)
            settings.tenantWeights = weights
            var core = try ShardCore(settings: settings, racks: [rack], table: table, policy: "gavel-las", now: 0)
            _ = register(&core, now: 0)
            _ = core.handle(.tick, now: 0)
            var a = job("j1", workers: 4)
            a.spec?.tenant = "alice"
            var b = job("j2", workers: 4)
            b.spec?.tenant = "bob"
            return core.handle(.gatewayJobs([a, b]), now: 1).commands.first?.jobID
        }
        #expect(try firstStart(weights: [:]) == "j1")
        #expect(try firstStart(weights: ["alice": 1, "bob": 3]) == "j2")
        #expect(try firstStart(weights: ["alice": 3, "bob": 1]) == "j1")
    }

    @Test("rounds: poll the gateway, plan the home jobs, start them, report running")
    func startsHomeJobs() throws {
        var core = try makeCore()
        #expect(core.handle(.tick, now: 0).polls == 1)
        #expect(core.handle(.tick, now: 1).isEmpty)  // round pending until the poll answers
        var out = core.handle(.gatewayJobs([job("j1"), job("j2", workers: 2), job("x", home: "shard-r1")]), now: 1)
        #expect(out.commands.isEmpty)  // no agent yet
        #expect(core.jobs.keys.sorted() == ["j1", "j2"])
        _ = register(&core, now: 2)
        #expect(core.handle(.tick, now: 100).isEmpty)
        #expect(core.handle(.tick, now: 360).polls == 1)
        out = core.handle(.gatewayJobs([job("j1"), job("j2", workers: 2)]), now: 360)
        let starts = out.commands
        #expect(starts.map(\.kind) == [.start, .start])
        #expect(starts.map(\.jobID).sorted() == ["j1", "j2"])
        let j2 = try #require(starts.first { $0.jobID == "j2" })
        #expect(j2.gpuIDs.count == 2 && Set(j2.gpuIDs.map { $0.prefix(5) }).count == 1)  // one node
        #expect(j2.restartDelay == 30 && j2.totalSteps == 100)
        let running = out.transitions
        #expect(running.map(\.state) == [.running, .running])
        #expect(running.map(\.transitionID) == [1000, 1001])
        #expect(running.allSatisfy { $0.placement?.shardID == "shard-r0" && $0.at == 360 })
        // Next round: same placement, no command; the running jobs' progress goes to the gateway.
        _ = core.handle(.tick, now: 720)
        out = core.handle(.gatewayJobs([job("j1", state: .running), job("j2", workers: 2, state: .running)]), now: 720)
        #expect(out.commands.isEmpty)
        #expect(out.transitions.map(\.state) == [.running, .running])  // progress reports only
        #expect(out.transitions.map(\.transitionID) == [1002, 1003])
    }

    @Test("an agent that re-registers without a job it ran (it restarted) sends that job back to the queue from its checkpoint")
    func agentRestartLosesWorkers() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        #expect(core.handle(.gatewayJobs([job("j1")]), now: 0).commands.map(\.kind) == [.start])
        _ = heartbeat(&core, now: 100, jobs: [JobProgress(jobID: "j1", stepsDone: 60, checkpointSteps: 40, stepsPerSecond: 1, workers: 1)])
        // The agent was killed and restarted: it registers with nothing running.
        let out = register(&core, now: 130)
        let lost = try #require(out.transitions.first)
        #expect(lost.state == .pending && lost.stepsDone == 40)
        #expect(core.queuedJobs.map(\.id) == ["j1"])
        // The next round starts it again, from its checkpoint.
        _ = core.handle(.tick, now: 360)
        #expect(core.handle(.gatewayJobs([job("j1", state: .pending)]), now: 360).commands.map(\.kind) == [.start])
    }

    @Test("completion: reported at the estimated finish time, the agent told to forget, the job removed")
    func completion() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        _ = core.handle(.gatewayJobs([job("j1")]), now: 0)  // started at 0, progress from 30
        _ = heartbeat(&core, now: 40, jobs: [JobProgress(jobID: "j1", stepsDone: 100 - 50, stepsPerSecond: 10, workers: 1)])
        // 50 steps left at 10 steps/s after 40: done at 45; the report comes at 47.
        let out = heartbeat(&core, now: 47, jobs: [JobProgress(jobID: "j1", stepsDone: 100, checkpointSteps: 100)])
        let done = try #require(out.transitions.first)
        #expect(done.state == .completed && done.at == 45 && done.stepsDone == 100)
        #expect(out.commands.map(\.kind) == [.stop])
        #expect(core.jobs.isEmpty && core.completedCount == 1)
        // Listed again by a stale poll: not re-added.
        _ = core.handle(.tick, now: 360)
        #expect(core.handle(.gatewayJobs([job("j1", state: .running)]), now: 360).commands.isEmpty)
        #expect(core.jobs.isEmpty)
    }

    @Test("FIFO on a full rack: later jobs wait; a cancelled job is stopped and its GPUs reused")
    func queueAndCancel() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        var out = core.handle(.gatewayJobs([job("j1", workers: 4), job("j2", workers: 2)]), now: 0)
        #expect(out.commands.map(\.jobID) == ["j1"])
        #expect(core.queuedJobs.map(\.id) == ["j2"])
        _ = core.handle(.tick, now: 360)
        out = core.handle(.gatewayJobs([job("j2", workers: 2)]), now: 360)  // j1 cancelled
        #expect(out.commands.map(\.kind) == [.stop, .start])
        #expect(out.commands.map(\.jobID) == ["j1", "j2"])
        #expect(out.transitions.map(\.state) == [.running])
    }

    @Test("a job too large for the shard's GPUs stays pending; a failed start goes back to the queue")
    func unrunnableAndFailedStart() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        var out = core.handle(.gatewayJobs([job("big", workers: 8), job("j1")]), now: 0)
        #expect(out.commands.map(\.jobID) == ["j1"])
        #expect(core.jobs["big"]?.runnable == false)
        let start = try #require(out.commands.first)
        out = core.handle(.commandFailed(start, error: "agent unreachable"), now: 1)
        #expect(out.transitions.map(\.state) == [.pending])
        #expect(core.runningJobs.isEmpty)
        #expect(core.freeGPUs == ["v100": 4])
    }

    @Test("the elastic bourse planner drives the same shard")
    func bourse() throws {
        var core = try makeCore(policy: "bourse")
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        let spec = JobSpec(jobType: "ResNet", totalSteps: 1000, workers: 1, minWorkers: 1, maxWorkers: 4)
        let out = core.handle(.gatewayJobs([JobStatus(jobID: "e1", spec: spec, state: .pending, homeShard: "shard-r0")]), now: 0)
        let start = try #require(out.commands.first)
        #expect(start.kind == .start && start.workers == 1 && !start.gpuIDs.isEmpty)
    }

    @Test("adoption: the successor takes the rack, keeps the workers running there, runs the dead shard's home jobs")
    func adoption() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        let rack1 = RackSpec(
            id: "r1", shardAddress: "tcp://127.0.0.1:3", agentAddress: "tcp://127.0.0.1:4",
            nodes: [NodeSpec(id: "r1-n0", rack: "r1", gpus: ["v100": 2])])
        var out = core.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 10)
        #expect(core.racks.map(\.id) == ["r0", "r1"] && core.homeShards == ["shard-r0", "shard-r1"])
        // agent-r1 re-registers with o1 running on r1-n0-g0 and o2 (unknown to the gateway) on g1.
        out = core.handle(
            .agentReport(
                agentID: "agent-r1", address: "tcp://127.0.0.1:4",
                nodes: [NodeReport(nodeID: "r1-n0", rack: "r1", gpus: [
                    GPUReport(gpuID: "r1-n0-g0", gpuType: "v100", healthy: true, jobID: "o1"),
                    GPUReport(gpuID: "r1-n0-g1", gpuType: "v100", healthy: true, jobID: "o2"),
                ])],
                jobs: [JobProgress(jobID: "o1", stepsDone: 40, stepsPerSecond: 10, workers: 1),
                       JobProgress(jobID: "o2", stepsDone: 5, stepsPerSecond: 10, workers: 1)],
                at: 11, isRegister: true), now: 11)
        #expect(core.orphans.keys.sorted() == ["o1", "o2"])
        _ = core.handle(.tick, now: 12)
        out = core.handle(.gatewayJobs([job("o1", home: "shard-r1", state: .running), job("n1", home: "shard-r1")]), now: 12)
        #expect(core.orphans.isEmpty)
        #expect(out.commands.contains { $0.kind == .stop && $0.jobID == "o2" })
        #expect(!out.commands.contains { $0.jobID == "o1" })  // kept where it runs
        #expect(out.commands.contains { $0.kind == .start && $0.jobID == "n1" })
        #expect(core.jobs["o1"]?.isPlaced == true)
    }

    @Test("a failed node leaves the pool; its job goes back to the queue and restarts elsewhere from its checkpoint")
    func nodeFailure() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        var out = core.handle(.gatewayJobs([job("j1", workers: 2, steps: 10000)]), now: 0)
        let first = try #require(out.commands.first)
        let node = String(first.gpuIDs[0].prefix(5))
        let failed = NodeReport(nodeID: node, rack: "r0", health: .failed)
        out = heartbeat(&core, now: 100, jobs: [JobProgress(jobID: "j1", stepsDone: 800, checkpointSteps: 600, workers: 0)])
        out = core.handle(
            .agentReport(agentID: "agent-r0", address: "", nodes: [failed], jobs: [JobProgress(jobID: "j1", stepsDone: 600, checkpointSteps: 600)],
                         at: 120, isRegister: false), now: 120)
        #expect(out.transitions.map(\.state) == [.pending])
        #expect(core.failedNodes == [node] && core.runningJobs.isEmpty)
        #expect(core.planner.slots.count == 2)
        _ = core.handle(.tick, now: 360)
        out = core.handle(.gatewayJobs([job("j1", workers: 2, steps: 10000, state: .pending)]), now: 360)
        let restart = try #require(out.commands.first { $0.kind == .start })
        #expect(restart.resumeFromSteps == 600)
        #expect(restart.gpuIDs.allSatisfy { !$0.hasPrefix(node) })
    }

    @Test("a home job no GPU of the shard can run is delegated to the first rack that can; that shard runs it")
    func delegation() throws {
        let k80Rack = RackSpec(
            id: "r1", shardAddress: "tcp://127.0.0.1:3", agentAddress: "tcp://127.0.0.1:4",
            nodes: [NodeSpec(id: "r1-n0", rack: "r1", gpus: ["k80": 2])])
        let table = ThroughputTable(entries: ["v100": [JobTypeKey(model: "ResNet", scaleFactor: 1): 10],
                                              "k80": [JobTypeKey(model: "K80Only", scaleFactor: 1): 3]])
        var home = try ShardCore(
            settings: ShardSettings(shardID: "shard-r0", roundSeconds: 360, restartSeconds: 30),
            racks: [rack], table: table, policy: "fifo", now: 0, clusterRacks: [rack, k80Rack])
        _ = register(&home, now: 0)
        _ = home.handle(.tick, now: 0)
        let spec = JobSpec(jobType: "K80Only", totalSteps: 100, workers: 1)
        var out = home.handle(.gatewayJobs([JobStatus(jobID: "k1", spec: spec, state: .pending, homeShard: "shard-r0")]), now: 0)
        #expect(out.commands.isEmpty)
        let handOff = try #require(out.transitions.first)
        #expect(handOff.state == .pending && handOff.placement?.shardID == "shard-r1")
        #expect(home.jobs.isEmpty && home.delegated == ["k1": "shard-r1"])
        // The gateway now names shard-r1 in the placement: shard-r0 leaves it alone, shard-r1 runs it.
        let atGateway = JobStatus(jobID: "k1", spec: spec, state: .pending, placement: Placement(shardID: "shard-r1"), homeShard: "shard-r0")
        _ = home.handle(.tick, now: 360)
        #expect(home.handle(.gatewayJobs([atGateway]), now: 360).commands.isEmpty)
        var delegate = try ShardCore(
            settings: ShardSettings(shardID: "shard-r1", roundSeconds: 360, restartSeconds: 30),
            racks: [k80Rack], table: table, policy: "fifo", now: 0, clusterRacks: [rack, k80Rack])
        _ = delegate.handle(
            .agentReport(agentID: "agent-r1", address: "tcp://127.0.0.1:4", nodes: [NodeReport(nodeID: "r1-n0", rack: "r1")],
                         jobs: [], at: 0, isRegister: true), now: 0)
        _ = delegate.handle(.tick, now: 0)
        out = delegate.handle(.gatewayJobs([atGateway]), now: 0)
        #expect(out.commands.map(\.jobID) == ["k1"] && out.commands.first?.gpuIDs.first?.hasPrefix("r1-n0") == true)
    }
}
