import Foundation
import BourseAgent
import BourseModel
import BourseWire
import BourseWorkload
import Testing

/// A rack of two 2-GPU v100 nodes and a table where ResNet runs 10 steps/s on 1 GPU, 16 on 2
/// GPUs of one node and 12 on 2 GPUs of different nodes.
private func fixture(noise: Double = 0) -> AgentCore {
    let rack = RackSpec(
        id: "r0", shardAddress: "tcp://127.0.0.1:1", agentAddress: "tcp://127.0.0.1:2",
        nodes: [NodeSpec(id: "r0-n0", rack: "r0", gpus: ["v100": 2]), NodeSpec(id: "r0-n1", rack: "r0", gpus: ["v100": 2])])
    let table = ThroughputTable(entries: [
        "v100": [JobTypeKey(model: "ResNet", scaleFactor: 1): 10, JobTypeKey(model: "ResNet", scaleFactor: 2): 16],
        "v100_unconsolidated": [JobTypeKey(model: "ResNet", scaleFactor: 2): 12],
    ])
    return AgentCore(rack: rack, table: table, settings: AgentSettings(checkpointSeconds: 10, noise: noise, seed: 7), now: 0)
}

private func start(_ id: UInt64, _ job: String, _ gpus: [String], steps: UInt64 = 1000, delay: Double = 0, workers: UInt32 = 0)
    -> WorkerCommand
{
    WorkerCommand(
        commandID: id, kind: .start, jobID: job, jobType: "ResNet", gpuIDs: gpus, workers: workers, totalSteps: steps,
        restartDelay: delay)
}

@Suite("AgentCore")
struct AgentCoreTests {
    @Test("GPU ids come from the config, and the register report lists every node")
    func register() {
        var core = fixture()
        let report = core.register(now: 0)
        #expect(report.agentID == "agent-r0")
        #expect(report.nodes.map(\.nodeID) == ["r0-n0", "r0-n1"])
        #expect(report.nodes.flatMap(\.gpus).map(\.gpuID) == ["r0-n0-g0", "r0-n0-g1", "r0-n1-g0", "r0-n1-g1"])
        #expect(report.jobs.isEmpty)
    }

    @Test("progress at the consolidated and unconsolidated rates, after the restart delay")
    func progress() {
        var core = fixture()
        #expect(core.apply(start(1, "a", ["r0-n0-g0", "r0-n0-g1"], delay: 5), now: 0).ok)
        #expect(core.apply(start(2, "b", ["r0-n0-g0"]), now: 0).error.contains("busy with a"))
        #expect(core.apply(start(3, "b", ["r0-n1-g0", "r0-n0-g1"]), now: 0).ok == false)
        var hb = core.heartbeat(now: 15)
        #expect(hb.jobs.first { $0.jobID == "a" }?.stepsDone == 160)  // 10 s at 16 steps/s
        #expect(hb.jobs.first { $0.jobID == "a" }?.checkpointSteps == 160)
        // Move a to two nodes: graceful (keeps progress), unconsolidated rate.
        #expect(core.apply(start(4, "a", ["r0-n0-g0", "r0-n1-g0"]), now: 15).ok)
        hb = core.heartbeat(now: 25)
        #expect(abs((hb.jobs.first { $0.jobID == "a" }?.stepsDone ?? 0) - 280) < 1e-9)
        #expect(hb.nodes[1].gpus[0].jobID == "a")
    }

    @Test("a part of a job spread over racks runs at the whole job's unconsolidated speed; a new spread restarts it")
    func spreadPart() {
        var core = fixture()
        var part = start(1, "s", ["r0-n0-g0"], workers: 2)
        part.spreadWorkers = 2  // the other worker runs on another rack
        #expect(core.apply(part, now: 0).ok)
        #expect(core.heartbeat(now: 10).jobs.first { $0.jobID == "s" }?.stepsDone == 120)  // 12 steps/s: 2 GPUs spread
        // The same GPU, now the whole job: not "already running", it goes on at 1 worker's speed
        // (10 steps/s, counted at 2 preferred workers: 5).
        var alone = part
        alone.commandID = 2
        alone.spreadWorkers = 0
        #expect(core.apply(alone, now: 10).ok)
        #expect(core.heartbeat(now: 20).jobs.first { $0.jobID == "s" }?.stepsDone == 170)
        // A spread the table cannot run is refused, naming the whole job's workers.
        var wide = alone
        wide.commandID = 3
        wide.spreadWorkers = 8
        #expect(core.apply(wide, now: 20).error.contains("with 8 workers on v100"))
    }

    @Test("completion frees the GPUs and is reported until the shard forgets it")
    func completion() {
        var core = fixture()
        #expect(core.apply(start(1, "a", ["r0-n0-g0"], steps: 100), now: 0).ok)
        #expect(core.nextEventTime == 10)
        #expect(core.advance(to: 9.9).isEmpty)
        #expect(core.advance(to: 10) == ["a"])
        #expect(core.gpus["r0-n0-g0"]?.jobID == nil)
        var hb = core.heartbeat(now: 11)
        #expect(hb.jobs == [JobProgress(jobID: "a", stepsDone: 100, checkpointSteps: 100, gpuType: "v100")])
        let forget = core.apply(WorkerCommand(commandID: 2, kind: .stop, jobID: "a"), now: 12)
        #expect(forget.ok && forget.checkpointSteps == 100)  // the ack says what it forgot
        hb = core.heartbeat(now: 12)
        #expect(hb.jobs.isEmpty)
    }

    @Test("stop parks the progress; a restart resumes from it; retries of a command are idempotent")
    func stopResume() {
        var core = fixture()
        #expect(core.apply(start(1, "a", ["r0-n0-g0"]), now: 0).ok)
        let stopped = core.apply(WorkerCommand(commandID: 2, kind: .stop, jobID: "a"), now: 7)
        #expect(stopped.ok && stopped.stepsDone == 70 && stopped.checkpointSteps == 70)  // the stop's checkpoint, in the ack
        #expect(core.heartbeat(now: 8).jobs.first?.stepsDone == 70)
        #expect(core.apply(WorkerCommand(commandID: 2, kind: .stop, jobID: "a"), now: 9) == stopped)  // retry: no effect
        #expect(core.heartbeat(now: 9).jobs.first?.stepsDone == 70)
        #expect(core.apply(start(3, "a", ["r0-n1-g1"], delay: 1), now: 10).ok)
        #expect(core.heartbeat(now: 13).jobs.first?.stepsDone == 90)
    }

    @Test("a node failure loses the progress since the last periodic checkpoint")
    func nodeFailure() {
        var core = fixture()
        #expect(core.apply(start(1, "a", ["r0-n0-g0"]), now: 0).ok)
        core.failNode("r0-n0", now: 25)
        let hb = core.heartbeat(now: 25)
        #expect(hb.jobs.first?.stepsDone == 200)  // checkpoints every 10 s: at 20 s, 200 steps
        #expect(hb.nodes[0].health == .failed)
        #expect(core.apply(start(2, "a", ["r0-n0-g1"]), now: 26).error.contains("not healthy"))
    }

    @Test("a recovered node's GPUs are healthy and usable again; recovering a healthy node changes nothing")
    func nodeRecovery() {
        var core = fixture()
        core.failNode("r0-n0", now: 5)
        #expect(!core.apply(start(1, "a", ["r0-n0-g0"]), now: 6).ok)
        core.recoverNode("r0-n0", now: 10)
        #expect(core.failedNodes.isEmpty)
        #expect(core.heartbeat(now: 10).nodes[0].health == .healthy)
        #expect(core.apply(start(2, "a", ["r0-n0-g0"]), now: 11).ok)
        core.recoverNode("r0-n1", now: 12)
        #expect(core.workers["a"]?.gpuIDs == ["r0-n0-g0"])
    }

    @Test("elastic: steps are counted at the preferred worker count; noise is seeded and bounded")
    func elasticAndNoise() {
        var core = fixture()
        // Preferred 2 workers, running on 1: 10 steps/s x 1/2 = 5 job steps/s.
        #expect(core.apply(start(1, "a", ["r0-n0-g0"], workers: 2), now: 0).ok)
        #expect(core.heartbeat(now: 10).jobs.first?.stepsDone == 50)
        var noisy = fixture(noise: 0.05)
        var again = fixture(noise: 0.05)
        #expect(noisy.apply(start(1, "a", ["r0-n0-g0"]), now: 0).ok)
        #expect(again.apply(start(1, "a", ["r0-n0-g0"]), now: 0).ok)
        let rate = noisy.heartbeat(now: 1).jobs[0].stepsPerSecond
        #expect(rate == again.heartbeat(now: 1).jobs[0].stepsPerSecond)
        #expect(rate >= 9.5 && rate <= 10.5 && rate != 10)
    }

    @Test("the manual clock advances cluster and wall time together")
    func manualClock() {
        let clock = ManualClusterClock(now: 100, speedup: 10)
        clock.advance(by: 50)
        #expect(clock.now == 150)
        #expect(clock.wallSinceEpoch == 15)
        #expect(clock.wallDuration(ofClusterSeconds: 20) == .seconds(2))
        let wall = WallClusterClock(epoch: 1000, speedup: 60)
        #expect(wall.now > 1000 + 60 * 1_000_000)
    }
}

@Suite("Shared checkpoints")
struct SharedCheckpointTests {
    @Test("a worker restarting from a stale checkpoint takes the newer one another rack saved; an older one changes nothing")
    func adoptNewer() {
        var core = fixture()
        let started = core.apply(start(1, "j-000001", ["r0-n0-g0"], steps: 10_000, delay: 30), now: 100)
        #expect(started.ok)
        #expect(core.workers["j-000001"]?.resumeSteps == 0)
        // Saved by the worker stopped elsewhere at 4,000 steps: loaded during the restart delay.
        let loaded = core.adoptCheckpoint(jobID: "j-000001", steps: 4000, now: 110)
        #expect(loaded)
        #expect(core.workers["j-000001"]?.resumeSteps == 4000)
        #expect(core.workers["j-000001"]?.resumeAt == 130)
        // Later than the worker's own progress only: 4,000 + 10 steps/s x 70 s = 4,700 at t=200.
        let behind = core.adoptCheckpoint(jobID: "j-000001", steps: 4500, now: 200)
        #expect(!behind)
        let ahead = core.adoptCheckpoint(jobID: "j-000001", steps: 5000, now: 200)
        #expect(ahead)
        #expect(core.workers["j-000001"]?.resumeAt == 200)
        let elsewhere = core.adoptCheckpoint(jobID: "j-000002", steps: 5000, now: 200)
        #expect(!elsewhere)  // not running here
    }

    @Test("the store keeps the newest checkpoint per job and refuses ids that are not plain names")
    func store() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-ckpt-\(getpid())-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir)
        #expect(store.read("j-000001") == nil)
        store.save("j-000001", steps: 1200.5)
        store.save("j-000001", steps: 900)  // older: ignored
        #expect(store.read("j-000001") == 1200.5)
        store.save("../escape", steps: 1)
        #expect(store.read("../escape") == nil)
        #expect(!FileManager.default.fileExists(atPath: URL(fileURLWithPath: dir).deletingLastPathComponent().appendingPathComponent("escape").path))
    }

    @Test("agents saving one job's checkpoints at once never replace a newer one with an older one")
    func storeConcurrentSaves() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-ckpt-\(getpid())-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try CheckpointStore(directory: dir)
        // Per job, sixteen savers at once, one checkpoint each: the highest must be the one kept.
        let jobs = (1...100).map { String(format: "j-%06d", $0) }
        for job in jobs {
            DispatchQueue.concurrentPerform(iterations: 16) { k in store.save(job, steps: Double(k)) }
        }
        let lost = jobs.filter { store.read($0) != 15 }
        #expect(lost.isEmpty, "\(lost.count) of \(jobs.count) jobs lost their newest checkpoint")
    }
}
