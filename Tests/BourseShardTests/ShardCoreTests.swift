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

// MARK: - Failover (findings 1, 2 and 4 of docs/chaos.md)

private let rack1 = RackSpec(
    id: "r1", shardAddress: "tcp://127.0.0.1:3", agentAddress: "tcp://127.0.0.1:4",
    nodes: [NodeSpec(id: "r1-n0", rack: "r1", gpus: ["v100": 2])])

/// agent-r1's report: `running` maps GPU ids of r1-n0 to the job on them.
private func reportR1(
    _ core: inout ShardCore, now: Double, running: [String: String] = [:], jobs: [JobProgress] = [], register: Bool = true
) -> [ShardAction] {
    let gpus = ["r1-n0-g0", "r1-n0-g1"].map { GPUReport(gpuID: $0, gpuType: "v100", healthy: true, jobID: running[$0] ?? "") }
    return core.handle(
        .agentReport(agentID: "agent-r1", address: "tcp://127.0.0.1:4", nodes: [NodeReport(nodeID: "r1-n0", rack: "r1", gpus: gpus)],
                     jobs: jobs, at: now, isRegister: register), now: now)
}

private func running(_ id: String, home: String, on gpus: [String], by shard: String, steps: Double, checkpoint: Double, total: UInt64 = 1000) -> JobStatus {
    JobStatus(
        jobID: id, spec: JobSpec(jobType: "ResNet", totalSteps: total, workers: UInt32(gpus.count)), state: .running,
        stepsDone: steps, checkpointSteps: checkpoint, placement: Placement(gpuType: "v100", gpuIDs: gpus, shardID: shard),
        homeShard: home)
}

@Suite("ShardCore failover")
struct ShardFailoverTests {
    func makeCore(_ id: String = "shard-r0", racks: [RackSpec] = [rack], policy: String = "fifo", wait: Double = 1000) throws -> ShardCore {
        var settings = ShardSettings(shardID: id, roundSeconds: 360, restartSeconds: 30, firstTransitionID: 1000)
        settings.agentWaitSeconds = wait
        return try ShardCore(settings: settings, racks: racks, table: table, policy: policy, now: 0)
    }

    @Test("adoption: the dead shard's jobs wait for its rack's agent, then resume from what the agent reports, not the gateway's stale progress")
    func adoptedJobsWaitForTheAgent() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 10)
        #expect(core.awaitingAgent.keys.contains("r1"))
        // The gateway's view (1-2 s of wall time before agent-r1 finds its new shard): o1 runs on
        // r1 at 400 steps, c1 at 100; n1 waits. Nothing of shard-r1's is planned yet, though r0 has room.
        _ = core.handle(.tick, now: 360)
        var out = core.handle(.gatewayJobs([
            running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 400, checkpoint: 300),
            running("c1", home: "shard-r1", on: ["r1-n0-g1"], by: "shard-r1", steps: 100, checkpoint: 100),
            job("n1", home: "shard-r1"),
        ]), now: 360)
        #expect(out.commands.isEmpty)
        #expect(core.jobs["o1"]?.heldFor == "r1" && core.jobs["n1"]?.heldFor == "r1")
        // agent-r1 registers: o1 still runs there, at 700 steps; c1 completed there meanwhile.
        out = reportR1(&core, now: 380, running: ["r1-n0-g0": "o1"], jobs: [
            JobProgress(jobID: "c1", stepsDone: 1000, checkpointSteps: 1000),
            JobProgress(jobID: "o1", stepsDone: 700, checkpointSteps: 600, stepsPerSecond: 2, workers: 1),
        ])
        #expect(core.awaitingAgent["r1"] == nil)
        #expect(core.jobs.values.allSatisfy { $0.heldFor == nil })
        #expect(out.transitions.contains { $0.jobID == "c1" && $0.state == .completed })
        #expect(core.jobs["c1"] == nil && core.finished.contains("c1"))
        let o1 = try #require(core.jobs["o1"])
        #expect(o1.isPlaced && o1.stepsDone == 700 && o1.checkpointSteps == 600)
        // Next round: o1 stays where it runs (no command), n1 starts; c1 is not started again.
        _ = core.handle(.tick, now: 720)
        out = core.handle(.gatewayJobs([
            running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 400, checkpoint: 300),
            job("n1", home: "shard-r1"),
        ]), now: 720)
        #expect(out.commands.map(\.jobID) == ["n1"])
    }

    @Test("a job the rack's agent reported before the gateway listed it here takes the agent's progress (a completion included)")
    func agentReportsFirst() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 10)
        // agent-r1 first: c1 completed on it while it had no shard; p1 was stopped there at 500.
        _ = reportR1(&core, now: 11, jobs: [
            JobProgress(jobID: "c1", stepsDone: 1000, checkpointSteps: 1000),
            JobProgress(jobID: "p1", stepsDone: 500, checkpointSteps: 500),
        ])
        #expect(core.unclaimedProgress.keys.sorted() == ["c1", "p1"])
        _ = core.handle(.tick, now: 360)
        let out = core.handle(.gatewayJobs([
            running("c1", home: "shard-r1", on: ["r1-n0-g1"], by: "shard-r1", steps: 100, checkpoint: 100),
            running("p1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 200, checkpoint: 200),
        ]), now: 360)
        #expect(out.transitions.contains { $0.jobID == "c1" && $0.state == .completed })
        #expect(!out.commands.contains { $0.kind == .start && $0.jobID == "c1" })
        let p1 = try #require(out.commands.first { $0.kind == .start && $0.jobID == "p1" })
        #expect(p1.resumeFromSteps == 500)
    }

    @Test("no agent within the wait: the held jobs are planned anyway, from their checkpoints")
    func agentNeverComes() throws {
        var core = try makeCore(wait: 500)
        _ = register(&core, now: 0)
        _ = core.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 10)
        _ = core.handle(.tick, now: 360)
        var out = core.handle(.gatewayJobs([running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 400, checkpoint: 300)]), now: 360)
        #expect(out.commands.isEmpty)
        _ = core.handle(.tick, now: 720)  // 710 s after the adoption
        out = core.handle(.gatewayJobs([running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 400, checkpoint: 300)]), now: 720)
        let start = try #require(out.commands.first)
        #expect(start.jobID == "o1" && start.resumeFromSteps == 300 && start.gpuIDs.allSatisfy { $0.hasPrefix("r0-") })
    }

    /// Two racks (4 and 2 GPUs) under LAS with 8 jobs: each round the least-served jobs get the
    /// GPUs, so jobs stopped on one agent are started on the other a round later. No STOP is
    /// acknowledged until a start is held back for one; returns the core, the job and its STOP.
    func moveAwaitingItsStop() throws -> (core: ShardCore, job: String, stop: WorkerCommand) {
        var core = try makeCore(policy: "gavel-las")
        _ = register(&core, now: 0)
        _ = core.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 0)
        _ = reportR1(&core, now: 0)
        var stops: [String: (address: String, command: WorkerCommand)] = [:]
        var now = 0.0
        while core.deferredStarts.isEmpty && now < 3600 {
            _ = core.handle(.tick, now: now)
            let out = core.handle(.gatewayJobs((1...8).map { job("j\($0)", steps: 100_000) }), now: now)
            for case .sendCommand(let address, let c) in out {
                if c.kind == .stop { stops[c.jobID] = (address, c) }
                // Never a start on another agent while a STOP to the old one is unanswered.
                if c.kind == .start, let stop = stops[c.jobID] { #expect(stop.address == address) }
            }
            now += 360
        }
        let id = try #require(core.deferredStarts.keys.sorted().first)
        let stop = try #require(stops[id])
        #expect(core.deferredStarts[id]?.agentAddress != stop.address)
        return (core, id, stop.command)
    }

    @Test("a move to another agent starts only when the old agent's STOP ack gives the checkpoint it took")
    func crossAgentMoveWaitsForTheStop() throws {
        var (core, id, stop) = try moveAwaitingItsStop()
        let waiting = try #require(core.deferredStarts[id])
        // The old agent stopped it at 1234.5 steps (more than its last heartbeat said): the start
        // goes out now, to the new agent, from there.
        let ack = CommandAck(commandID: stop.commandID, ok: true, stepsDone: 1234.5, checkpointSteps: 1234.5)
        let out = core.handle(.commandAcknowledged(stop, ack), now: 3600)
        let start = try #require(out.commands.first)
        #expect(start.kind == .start && start.jobID == id && start.resumeFromSteps == 1234.5)
        #expect(out == [.sendCommand(agentAddress: waiting.agentAddress, start)])
        #expect(core.deferredStarts[id] == nil && core.jobs[id]?.checkpointSteps == 1234.5)
    }

    @Test("a STOP ack saying the job had completed completes it instead of starting it elsewhere")
    func stopAckWithCompletion() throws {
        var (core, id, stop) = try moveAwaitingItsStop()
        let ack = CommandAck(commandID: stop.commandID, ok: true, stepsDone: 100_000, checkpointSteps: 100_000)
        let out = core.handle(.commandAcknowledged(stop, ack), now: 3600)
        #expect(out.commands.isEmpty)
        #expect(out.transitions.map(\.state) == [.completed] && out.transitions.first?.jobID == id)
        #expect(core.jobs[id] == nil && core.deferredStarts[id] == nil && core.completedCount == 1)
    }

    @Test("a failed STOP releases the held start, from the last known checkpoint (as before)")
    func stopFailed() throws {
        var (core, id, stop) = try moveAwaitingItsStop()
        let out = core.handle(.commandFailed(stop, error: "no answer"), now: 3600)
        #expect(out.commands.map(\.kind) == [.start] && out.commands.first?.jobID == id)
        #expect(core.deferredStarts[id] == nil)
    }

    @Test("hand-back: a shard alive again gets its rack back with the jobs running there; nothing is stopped, lost or started twice")
    func handBack() throws {
        var adopter = try makeCore()
        _ = register(&adopter, now: 0)
        _ = adopter.handle(.adoptRack(rack1, formerShard: "shard-r1"), now: 10)
        _ = reportR1(&adopter, now: 11, running: ["r1-n0-g0": "o1"], jobs: [JobProgress(jobID: "o1", stepsDone: 40, checkpointSteps: 30, stepsPerSecond: 1, workers: 1)])
        _ = adopter.handle(.tick, now: 360)
        // n1 (4 workers) can only run on r0; n2 (2 workers) fits nowhere now (r1 has one GPU free).
        var out = adopter.handle(.gatewayJobs([
            running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 10, checkpoint: 10),
            job("n1", workers: 4, home: "shard-r1"), job("n2", workers: 2, home: "shard-r1"),
        ]), now: 360)
        #expect(out.commands.map(\.jobID) == ["n1"])
        #expect(adopter.queuedJobs.map(\.id) == ["n2"])
        // shard-r1 refuted its death (or restarted): r1 goes back, with o1 on it.
        out = adopter.handle(.releaseRacks(ofShard: "shard-r1"), now: 400)
        #expect(out.commands.isEmpty)  // nothing stopped
        let handed = try #require(out.transitions.first { $0.jobID == "o1" })
        #expect(handed.state == .running && handed.placement == Placement(gpuType: "v100", gpuIDs: ["r1-n0-g0"], shardID: "shard-r1"))
        #expect(handed.stepsDone == 40 && handed.checkpointSteps == 30)
        #expect(out.transitions.count == 1)
        #expect(adopter.racks.map(\.id) == ["r0"] && adopter.homeShards == ["shard-r0"] && adopter.agents["r1"] == nil)
        #expect(adopter.jobs.keys.sorted() == ["n1"])  // started here: stays here; o1 went, n2 is shard-r1's again
        #expect(adopter.finished.isEmpty)
        // agent-r1's next report is not this shard's any more.
        #expect(reportR1(&adopter, now: 401, register: false).commands.isEmpty)
        // Later rounds leave shard-r1's jobs alone.
        _ = adopter.handle(.tick, now: 720)
        out = adopter.handle(.gatewayJobs([
            running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 40, checkpoint: 30),
            running("n1", home: "shard-r1", on: ["r0-n0-g0", "r0-n0-g1", "r0-n1-g0", "r0-n1-g1"], by: "shard-r0", steps: 0, checkpoint: 0),
            job("n2", workers: 2, home: "shard-r1"),
        ]), now: 720)
        #expect(out.commands.isEmpty && adopter.jobs.keys.sorted() == ["n1"])

        // The owner, restarted: o1 waits for agent-r1, which reports it running; it is kept there.
        var owner = try makeCore("shard-r1", racks: [rack1])
        _ = owner.handle(.tick, now: 400)
        let listed = [
            running("o1", home: "shard-r1", on: ["r1-n0-g0"], by: "shard-r1", steps: 40, checkpoint: 30),
            job("n2", workers: 2, home: "shard-r1"),
        ]
        out = owner.handle(.gatewayJobs(listed), now: 400)
        #expect(out.commands.isEmpty && owner.jobs["o1"]?.heldFor == "r1")
        _ = reportR1(&owner, now: 402, running: ["r1-n0-g0": "o1"], jobs: [JobProgress(jobID: "o1", stepsDone: 42, checkpointSteps: 30, stepsPerSecond: 1, workers: 1)])
        #expect(owner.jobs["o1"]?.isPlaced == true && owner.jobs["o1"]?.stepsDone == 42)
        _ = owner.handle(.tick, now: 760)
        out = owner.handle(.gatewayJobs(listed), now: 760)
        #expect(!out.commands.contains { $0.jobID == "o1" })  // not started twice
        #expect(owner.jobs["n2"] != nil)  // and n2 is scheduled by its own shard again
    }

    @Test("a job the gateway now gives to another shard is stopped and forgotten here, not finished")
    func takenOver() throws {
        var core = try makeCore()
        _ = register(&core, now: 0)
        _ = core.handle(.tick, now: 0)
        _ = core.handle(.gatewayJobs([job("j1")]), now: 0)
        _ = core.handle(.tick, now: 360)
        let out = core.handle(.gatewayJobs([running("j1", home: "shard-r0", on: ["r2-n0-g0"], by: "shard-r2", steps: 0, checkpoint: 0)]), now: 360)
        #expect(out.commands.map(\.kind) == [.stop])
        #expect(core.jobs.isEmpty && !core.finished.contains("j1"))
    }
}
