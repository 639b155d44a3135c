import BourseModel
import BourseTrading
import BourseWire
import BourseWorkload
import Testing

@testable import BourseShard

/// Two racks: r0 with 4 fast GPUs (v100), r1 with 4 slow ones (k80).
private let racks = [
    RackSpec(
        id: "r0", shardAddress: "tcp://127.0.0.1:1", agentAddress: "tcp://127.0.0.1:2",
        nodes: [NodeSpec(id: "r0-n0", rack: "r0", gpus: ["v100": 2]), NodeSpec(id: "r0-n1", rack: "r0", gpus: ["v100": 2])]),
    RackSpec(
        id: "r1", shardAddress: "tcp://127.0.0.1:3", agentAddress: "tcp://127.0.0.1:4",
        nodes: [NodeSpec(id: "r1-n0", rack: "r1", gpus: ["k80": 2]), NodeSpec(id: "r1-n1", rack: "r1", gpus: ["k80": 2])]),
]

private let table = ThroughputTable(entries: [
    "v100": [JobTypeKey(model: "ResNet", scaleFactor: 1): 10, JobTypeKey(model: "ResNet", scaleFactor: 2): 18],
    "k80": [JobTypeKey(model: "ResNet", scaleFactor: 1): 1, JobTypeKey(model: "ResNet", scaleFactor: 2): 1.8],
    "v100_unconsolidated": [JobTypeKey(model: "ResNet", scaleFactor: 2): 16],
    "k80_unconsolidated": [JobTypeKey(model: "ResNet", scaleFactor: 2): 1.6],
])

private func status(_ id: String, home: String, steps: UInt64 = 100_000, state: JobState = .pending) -> JobStatus {
    JobStatus(jobID: id, spec: JobSpec(jobType: "ResNet", totalSteps: steps, workers: 1), state: state, homeShard: home)
}

private extension Array where Element == ShardAction {
    var commands: [WorkerCommand] { compactMap { if case .sendCommand(_, let c) = $0 { c } else { nil } } }
    var transitions: [JobTransition] { compactMap { if case .reportTransition(let t) = $0 { t } else { nil } } }
    var trades: [TradingMessage] { compactMap { if case .sendTrade(let m) = $0 { m } else { nil } } }
    var logs: [String] { compactMap { if case .log(_, let text) = $0 { text } else { nil } } }
    var leasesGranted: [String] { compactMap { if case .leaseGranted(let l, let b, let j) = $0 { "\(l) \(b) \(j)" } else { nil } } }
    var leasesEnded: [String] { compactMap { if case .leaseEnded(let l, let b, let j) = $0 { "\(l) \(b) \(j)" } else { nil } } }
}

/// Two racks of two V100s on one node each (a 4-GPU job fits on neither alone) and one of two K80s.
private let spreadRacks = ["v100", "v100", "k80"].enumerated().map { k, type in
    RackSpec(
        id: "r\(k)", shardAddress: "tcp://127.0.0.1:\(10 + 2 * k)", agentAddress: "tcp://127.0.0.1:\(11 + 2 * k)",
        nodes: [NodeSpec(id: "r\(k)-n0", rack: "r\(k)", gpus: [type: 2])])
}

private let spreadTable = ThroughputTable(entries: [
    "v100": [
        JobTypeKey(model: "ResNet", scaleFactor: 1): 10, JobTypeKey(model: "ResNet", scaleFactor: 2): 18,
        JobTypeKey(model: "ResNet", scaleFactor: 4): 32,
    ],
    "v100_unconsolidated": [JobTypeKey(model: "ResNet", scaleFactor: 2): 16, JobTypeKey(model: "ResNet", scaleFactor: 4): 28],
    "k80": [JobTypeKey(model: "ResNet", scaleFactor: 1): 1, JobTypeKey(model: "ResNet", scaleFactor: 2): 1.8],
])

private func wideJob(home: String) -> JobStatus {
    JobStatus(jobID: "j-000001", spec: JobSpec(jobType: "ResNet", totalSteps: 100_000, workers: 4), state: .pending, homeShard: home)
}

/// The racks' shards, their trading messages delivered one tick later (and gossip each tick).
private struct Shards {
    var cores: [ShardCore]

    /// `rehome` off: a job on another rack's lease stays a guest there (its home renews the lease).
    init(
        trading: Bool = true, rehome: Bool = true, racks: [RackSpec] = racks, table: ThroughputTable = table,
        unregistered: Set<Int> = []
    ) throws {
        cores = try racks.map { rack in
            var settings = ShardSettings(shardID: rack.shardID, roundSeconds: 360, restartSeconds: 30, firstTransitionID: 1)
            settings.trading = TradingSettings(enabled: trading)
            settings.trading.rehome = rehome
            return try ShardCore(settings: settings, racks: [rack], table: table, policy: "bourse", now: 0, clusterRacks: racks)
        }
        for (k, rack) in racks.enumerated() where !unregistered.contains(k) {
            _ = cores[k].handle(
                .agentReport(
                    agentID: "agent-\(rack.id)", address: rack.agentAddress,
                    nodes: rack.nodes.map { NodeReport(nodeID: $0.id, rack: rack.id) }, jobs: [], at: 0, isRegister: true),
                now: 0)
        }
    }

    /// Shard `k`'s agent reports the health of some of its rack's nodes at `t`.
    mutating func nodes(_ k: Int, _ health: KeyValuePairs<String, NodeHealth>, at t: Double) -> [ShardAction] {
        let rack = cores[k].racks[0].id
        return cores[k].handle(
            .agentReport(
                agentID: "agent-\(rack)", address: "", nodes: health.map { NodeReport(nodeID: $0.key, rack: rack, health: $0.value) },
                jobs: [], at: t, isRegister: false),
            now: t)
    }

    /// One round from `start`: tick, the gateway's list, then ticks every 5 cluster seconds
    /// through the market's window and grace. Returns each shard's actions. Messages `late`
    /// picks arrive after the round's placement (and those `lost` picks never).
    mutating func round(
        at start: Double, listing list: [JobStatus], late: (TradingMessage) -> Bool = { _ in false },
        lost: (TradingMessage) -> Bool = { _ in false }
    ) -> [[ShardAction]] {
        var out: [[ShardAction]] = cores.map { _ in [] }
        for k in cores.indices {
            out[k] += cores[k].handle(.tick, now: start)
            out[k] += cores[k].handle(.gatewayJobs(list), now: start)
        }
        var inFlight = out.flatMap(\.trades)
        var held: [TradingMessage] = []
        for step in 1...20 {
            let now = start + Double(step) * 5
            let delivering = inFlight.filter { !late($0) && !lost($0) }
            held += inFlight.filter { late($0) && !lost($0) }
            inFlight = []
            for m in delivering { out[m.recipient] += cores[m.recipient].handle(.trade(m), now: now) }
            for k in cores.indices {
                for j in cores.indices where j != k {
                    _ = cores[k].handle(.marketAsks(cores[j].market?.ownAsks ?? [:]), now: now)
                }
                let actions = cores[k].handle(.tick, now: now)
                inFlight += actions.trades
                out[k] += actions
            }
        }
        for m in held { out[m.recipient] += cores[m.recipient].handle(.trade(m), now: start + 105) }
        return out
    }
}

/// r1's job j-000001 (listed in `listed`) trades onto r0's V100s in the second round, whose
/// close hands it over; the buyer's commits of that round arrive `late` (after the owner's
/// placement) or are `lost` when asked. Returns the shards and the second round's actions.
private func handOverRound(
    listed: [JobStatus], late: Bool = false, lost: Bool = false
) throws -> (shards: Shards, out: [[ShardAction]]) {
    var shards = try Shards()
    _ = shards.round(at: 0, listing: [])
    func isCommit(_ m: TradingMessage) -> Bool { if case .commit = m { true } else { false } }
    let out = shards.round(at: 360, listing: listed, late: { late && isCommit($0) }, lost: { lost && isCommit($0) })
    return (shards, out)
}

@Suite("ShardCore: trading between racks")
struct ShardTradingTests {
    @Test("a job whose home rack is slow runs on the fast rack's GPUs on a lease; its home does not run it")
    func guestRunsOnLease() throws {
        var shards = try Shards(rehome: false)
        #expect(shards.cores.allSatisfy { $0.market != nil })
        // Live shards renew spread deals over home alone (measured: over the next best cost the
        // split cluster 6-8 % avg JCT); the simulator's default renews them over the next best.
        #expect(shards.cores.allSatisfy { $0.market?.parameters.spreadRenewalsOverNextBest == false })
        #expect(TradingParameters().spreadRenewalsOverNextBest)
        // Round 1 publishes the asks (nothing to trade yet); round 2 trades.
        _ = shards.round(at: 0, listing: [])
        let list = [status("j-000001", home: "shard-r1")]
        let out = shards.round(at: 360, listing: list)
        let owner = out[0]
        let start = try #require(owner.commands.first { $0.kind == .start && $0.jobID == "j-000001" })
        #expect(start.gpuIDs.allSatisfy { $0.hasPrefix("r0-") })
        let running = try #require(owner.transitions.first { $0.jobID == "j-000001" && $0.state == .running })
        #expect(running.placement?.shardID == "shard-r1", "a guest's placement names its home, which schedules it")
        #expect(running.placement?.gpuIDs == start.gpuIDs)
        #expect(shards.cores[0].jobs["j-000001"]?.guest == true)
        // Home: no start on its own GPUs, no "pending" report, the job is on another rack.
        #expect(!out[1].commands.contains { $0.jobID == "j-000001" && $0.kind == .start })
        #expect(!out[1].transitions.contains { $0.jobID == "j-000001" })
        #expect(shards.cores[1].remote == ["j-000001"])
        // The owner's lease goes to the audit log.
        #expect(owner.leasesGranted == ["L0.1 shard-r1 j-000001"], "\(owner.leasesGranted)")
        #expect(out[0].logs.contains { $0.contains("market round 1:") && $0.contains("guests here: [j-000001]") })
        // The digest gossips the owner's asks and what its market did (for `bourse report`).
        let digest = shards.cores[0].digest
        #expect(!digest.marketAsks.isEmpty)
        #expect(digest.trading?.rounds == 2 && digest.trading?.guests == 1 && (digest.trading?.accepts ?? 0) >= 1)
        #expect(shards.cores[1].digest.trading?.offersSent ?? 0 >= 1)
    }

    @Test("a job no rack can run alone runs across two racks: its home runs and reports it, the other rack runs a silent part and reports only its GPUs")
    func jobSpreadOverRacks() throws {
        var shards = try Shards(racks: spreadRacks, table: spreadTable)
        _ = shards.round(at: 0, listing: [])
        let wide = wideJob(home: "shard-r1")
        let out = shards.round(at: 360, listing: [wide])
        #expect(out[1].logs.contains { $0.contains("no rack can run it alone; trading places it across racks") })
        // Each rack starts its two GPUs as a part of a 4-worker job.
        let home = try #require(out[1].commands.first { $0.kind == .start && $0.jobID == "j-000001" })
        let owner = try #require(out[0].commands.first { $0.kind == .start && $0.jobID == "j-000001" })
        #expect(home.gpuIDs.sorted() == ["r1-n0-g0", "r1-n0-g1"] && owner.gpuIDs.sorted() == ["r0-n0-g0", "r0-n0-g1"])
        #expect(home.spreadWorkers == 4 && owner.spreadWorkers == 4)
        // Only the home reports it; the other part is silent.
        let running = try #require(out[1].transitions.first { $0.jobID == "j-000001" && $0.state == .running })
        #expect(running.reason.contains("spread over racks: 2 of its 4 GPUs here"))
        #expect(running.placement?.shardID == "shard-r1" && !running.spreadPart)
        // The silent part tells the gateway its GPUs (for the job's placement), nothing more.
        let part = try #require(out[0].transitions.first { $0.jobID == "j-000001" })
        #expect(part.spreadPart && part.state == .running && part.placement?.shardID == "shard-r0")
        #expect(part.placement?.gpuIDs.sorted() == ["r0-n0-g0", "r0-n0-g1"])
        #expect(out[0].transitions.filter { $0.jobID == "j-000001" }.count == 1)
        #expect(shards.cores[0].jobs["j-000001"]?.silent == true && shards.cores[1].jobs["j-000001"]?.silent == false)
        #expect(out[0].logs.contains { $0.contains("spread over racks, parts here: [j-000001 2/4]") })
        #expect(out[1].logs.contains { $0.contains("spread over racks, parts here: [j-000001 2/4 reporting]") })
        // The silent part's progress and completion are not reported; the reporting part's are.
        let silentDone = shards.cores[0].handle(
            .agentReport(
                agentID: "agent-r0", address: "", nodes: [NodeReport(nodeID: "r0-n0", rack: "r0")],
                jobs: [JobProgress(jobID: "j-000001", stepsDone: 100_000, checkpointSteps: 100_000, stepsPerSecond: 0, workers: 0)],
                at: 500, isRegister: false),
            now: 500)
        #expect(silentDone.transitions.isEmpty)
        // Next round: the same deal holds; nothing restarts.
        let next = shards.round(at: 720, listing: [wide])
        #expect(!next.flatMap(\.commands).contains { $0.kind == .start || $0.kind == .stop })
        #expect(shards.cores[1].jobs["j-000001"]?.spreadWorkers == 4)
        #expect(!out[2].commands.contains { $0.jobID == "j-000001" })
    }

    @Test("a spread job whose home has no part is reported by the lowest-numbered owner; its home reports nothing")
    func spreadJobReportedByAnOwner() throws {
        var shards = try Shards(racks: spreadRacks, table: spreadTable)
        _ = shards.round(at: 0, listing: [])
        let out = shards.round(at: 360, listing: [wideJob(home: "shard-r2")])
        #expect(out[0].commands.first { $0.kind == .start }?.spreadWorkers == 4)
        #expect(out[1].commands.first { $0.kind == .start }?.spreadWorkers == 4)
        let running = try #require(out[0].transitions.first { $0.jobID == "j-000001" && $0.state == .running })
        #expect(running.placement?.shardID == "shard-r2", "the job's home schedules it")
        #expect(running.placement?.gpuIDs.sorted() == ["r0-n0-g0", "r0-n0-g1"])
        #expect(out[1].transitions.allSatisfy { $0.spreadPart && $0.placement?.gpuIDs.sorted() == ["r1-n0-g0", "r1-n0-g1"] })
        #expect(out[1].transitions.count == 1 && out[2].transitions.isEmpty)
        #expect(out[2].commands.isEmpty && shards.cores[2].remote == ["j-000001"])
        // The gateway stops listing it (completed): both parts are stopped and forgotten.
        let after = shards.round(at: 720, listing: [])
        #expect(after[1].commands.contains { $0.kind == .stop && $0.jobID == "j-000001" })
        #expect(after[1].logs.contains { $0.contains("j-000001 is no longer unfinished at the gateway (finished)") })
        #expect(shards.cores.allSatisfy { $0.jobs.isEmpty })
    }

    @Test("a shard whose agent has not registered sits its market out (it could not run what it sold)")
    func noAgentNoMarket() throws {
        var shards = try Shards(unregistered: [0])
        _ = shards.round(at: 0, listing: [])
        let list = [status("j-000001", home: "shard-r1")]
        let out = shards.round(at: 360, listing: list)
        #expect(out[0].logs.contains { $0.contains("market round skipped: the agent of rack r0 has not registered") })
        #expect(out[0].leasesGranted.isEmpty && shards.cores[0].jobs.isEmpty)
        #expect(out[1].commands.first { $0.kind == .start }?.gpuIDs.allSatisfy { $0.hasPrefix("r1-") } == true)
        // Its agent registers: the next round trades.
        _ = shards.cores[0].handle(
            .agentReport(
                agentID: "agent-r0", address: racks[0].agentAddress,
                nodes: racks[0].nodes.map { NodeReport(nodeID: $0.id, rack: "r0") }, jobs: [], at: 400, isRegister: true),
            now: 400)
        let next = shards.round(at: 720, listing: list)
        #expect(next[0].leasesGranted.count == 1, "\(next[0].logs)")
    }

    @Test("without trading the job stays on its slow home rack")
    func noTradingStaysHome() throws {
        var shards = try Shards(trading: false)
        #expect(shards.cores.allSatisfy { $0.market == nil })
        _ = shards.round(at: 0, listing: [])
        let out = shards.round(at: 360, listing: [status("j-000001", home: "shard-r1")])
        #expect(out[1].commands.first { $0.kind == .start }?.gpuIDs.allSatisfy { $0.hasPrefix("r1-") } == true)
        #expect(out[0].commands.isEmpty)
    }

    @Test("a job on one other rack's lease alone is handed over: that rack's shard takes it as its own home job and keeps it running")
    func leasedJobIsHandedOver() throws {
        let listed = [status("j-000001", home: "shard-r1")]
        var (shards, out) = try handOverRound(listed: listed)
        // The buyer (r1) commits with the hand-over and forgets the job without stopping it.
        let commit = try #require(out[1].trades.compactMap { if case .commit(let c) = $0 { c } else { nil } }.first)
        #expect(commit.rehome)
        #expect(out[1].logs.contains { $0.contains("j-000001 handed over to shard-r0") }, "\(out[1].logs)")
        #expect(shards.cores[1].jobs["j-000001"] == nil && shards.cores[1].handedOver["j-000001"]?.to == "shard-r0")
        #expect(!out[1].commands.contains { $0.jobID == "j-000001" } && !out[1].transitions.contains { $0.jobID == "j-000001" })
        // The owner (r0) started it on the lease, then took it over: the lease ends, and its report
        // names r0, so the gateway gives the job to r0.
        let start = try #require(out[0].commands.first { $0.kind == .start && $0.jobID == "j-000001" })
        #expect(shards.cores[0].jobs["j-000001"]?.guest == false)
        #expect(out[0].leasesEnded.count == 1 && shards.cores[0].market?.leases.isEmpty == true, "\(out[0].leasesEnded)")
        let running = try #require(out[0].transitions.last { $0.jobID == "j-000001" && $0.state == .running })
        #expect(running.placement?.shardID == "shard-r0")
        // Next round, with the gateway's list not yet updated: r1 does not schedule it again, and r0
        // keeps it on its GPUs (no stop, no new start) as a home job; no lease to renew.
        let next = shards.round(at: 720, listing: listed)
        #expect(!next[1].commands.contains { $0.jobID == "j-000001" } && !next[1].trades.contains { if case .offer(let o) = $0 { o.job == 1 } else { false } })
        #expect(!next[0].commands.contains { $0.jobID == "j-000001" })
        #expect(shards.cores[0].jobs["j-000001"]?.workers.map { shards.cores[0].planner.slots[$0].id } == start.gpuIDs)
        #expect(shards.cores[0].market?.leases.isEmpty == true)
        // The gateway lists it at r0 from now on: r1 forgets the hand-over.
        var moved = listed
        moved[0].placement = Placement(gpuType: "v100", gpuIDs: start.gpuIDs, shardID: "shard-r0")
        moved[0].state = .running
        _ = shards.round(at: 1080, listing: moved)
        #expect(shards.cores[1].handedOver.isEmpty && shards.cores[1].jobs["j-000001"] == nil)
        #expect(shards.cores[0].jobs["j-000001"]?.guest == false && shards.cores[0].jobs["j-000001"]?.isPlaced == true)
    }

    @Test("a hand-over the owner never takes (its commit lost) is taken back after three rounds: the job is not lost")
    func handOverNotTakenIsTakenBack() throws {
        let listed = [status("j-000001", home: "shard-r1")]
        var (shards, _) = try handOverRound(listed: listed, lost: true)  // the commit never reaches r0
        #expect(shards.cores[1].handedOver["j-000001"] != nil)
        #expect(shards.cores[0].jobs["j-000001"] == nil, "the owner's lease ended uncommitted: its guest stopped")
        // The gateway still lists it at r1: r1 waits three rounds, then takes it back.
        for start in [720.0, 1080, 1440] { _ = shards.round(at: start, listing: listed) }
        #expect(shards.cores[1].jobs["j-000001"] == nil)
        let back = shards.round(at: 1800, listing: listed)
        #expect(back[1].logs.contains { $0.contains("was handed over to shard-r0, which has not taken it") }, "\(back[1].logs)")
        // Scheduled again: here, or traded to r0 and handed over once more (this time committed).
        #expect(shards.cores[1].jobs["j-000001"] != nil || (shards.cores[1].handedOver["j-000001"]?.at ?? 0) >= 1800)
        #expect(shards.cores[0].jobs["j-000001"] != nil || shards.cores[1].jobs["j-000001"] != nil)
    }

    @Test("a hand-over that comes after the owner's placement is refused: its buyer schedules the job again from the next list")
    func lateHandOverIsRefused() throws {
        let listed = [status("j-000001", home: "shard-r1")]
        var (shards, _) = try handOverRound(listed: listed, late: true)
        #expect(shards.cores[1].handedOver["j-000001"] != nil && shards.cores[1].jobs["j-000001"] == nil)
        #expect(shards.cores[0].jobs["j-000001"] == nil, "the owner's lease ended uncommitted")
        // Next round: the owner's refusal goes out, and the buyer takes the job back.
        let next = shards.round(at: 720, listing: listed)
        let refusal = try #require(next[0].trades.compactMap { if case .reject(let r) = $0 { r } else { nil } }.first { $0.job == 1 })
        #expect(refusal.reason == .unknownLease && refusal.buyer == 1)
        #expect(next[1].logs.contains { $0.contains("j-000001 was not taken over by shard-r0") }, "\(next[1].logs)")
        #expect(next[1].logs.contains { $0.contains("j-000001: offer 0 rejected by shard-r0: unknownLease") }, "rejections are logged with their reason")
        #expect(shards.cores[1].handedOver.isEmpty)
        let after = shards.round(at: 1080, listing: listed)
        #expect(after[1].logs.contains { $0.contains("home job j-000001") }, "scheduled at its home again, not three rounds later")
    }

    @Test("a guest that completes is reported by the owner, dropped by its home, and never started again")
    func guestCompletes() throws {
        var shards = try Shards(rehome: false)
        _ = shards.round(at: 0, listing: [])
        let list = [status("j-000001", home: "shard-r1", steps: 1000)]
        let first = shards.round(at: 360, listing: list)
        let start = try #require(first[0].commands.first { $0.kind == .start })
        // The owner's agent reports the job done.
        let done = shards.cores[0].handle(
            .agentReport(
                agentID: "agent-r0", address: "", nodes: [NodeReport(nodeID: "r0-n0", rack: "r0")],
                jobs: [JobProgress(jobID: "j-000001", stepsDone: 1000, checkpointSteps: 1000, stepsPerSecond: 10, workers: UInt32(start.gpuIDs.count))],
                at: 500, isRegister: false),
            now: 500)
        #expect(done.transitions.map(\.state) == [.completed])
        // Next round: the gateway no longer lists it (a stale list still would: never restarted).
        let next = shards.round(at: 720, listing: list)
        #expect(!next[0].commands.contains { $0.kind == .start && $0.jobID == "j-000001" })
        let after = shards.round(at: 1080, listing: [])
        #expect(after[1].logs.contains { $0.contains("j-000001 is no longer unfinished at the gateway (completed on a lease)") })
        #expect(shards.cores[1].jobs.isEmpty && shards.cores[1].remote.isEmpty)
        #expect(shards.cores[0].jobs.isEmpty)
    }

    @Test("a node failure closes the shard's market (guests stop) and re-opens it on the GPUs left")
    func nodeFailureReopensMarket() throws {
        var shards = try Shards(rehome: false)
        _ = shards.round(at: 0, listing: [])
        _ = shards.round(at: 360, listing: [status("j-000001", home: "shard-r1")])
        #expect(shards.cores[0].jobs["j-000001"]?.guest == true)
        let out = shards.nodes(0, ["r0-n1": .failed], at: 400)
        #expect(out.logs.contains { $0.contains("market closed: its pool changed (node failure)") })
        #expect(out.logs.contains { $0.contains("trading again from the next round, on 2 GPUs") }, "\(out.logs)")
        #expect(shards.cores[0].jobs["j-000001"] == nil)
        #expect(out.commands.contains { $0.kind == .stop && $0.jobID == "j-000001" })
        #expect(out.leasesEnded.count == 1 && out.leasesEnded[0].hasSuffix("shard-r1 j-000001"), "\(out.leasesEnded)")
        let market = try #require(shards.cores[0].market)
        #expect(market.leases.isEmpty && market.planner.groups.map(\.capacity) == [2])
        // The next rounds: r1's job gets a lease again, on the node that is left; totals go on.
        let offersBefore = shards.cores[1].digest.trading?.offersSent ?? 0
        var starts: [WorkerCommand] = []
        for start in [720.0, 1080] {
            starts += shards.round(at: start, listing: [status("j-000001", home: "shard-r1")])[0].commands.filter { $0.kind == .start }
        }
        let start = try #require(starts.first { $0.jobID == "j-000001" }, "no lease on the GPUs left")
        #expect(start.gpuIDs.allSatisfy { $0.hasPrefix("r0-n0-") })
        #expect(shards.cores[0].jobs["j-000001"]?.guest == true)
        #expect((shards.cores[0].digest.trading?.accepts ?? 0) >= 2, "accepts before and after the failure add up")
        #expect((shards.cores[1].digest.trading?.offersSent ?? 0) > offersBefore)
    }

    @Test("a rack whose last node of a GPU group fails stays out of the market until a node recovers")
    func lastNodeOfAGroupKeepsTradingOff() throws {
        var shards = try Shards()
        _ = shards.round(at: 0, listing: [])
        let out = shards.nodes(0, ["r0-n0": .failed, "r0-n1": .failed], at: 400)
        #expect(shards.cores[0].market == nil)
        #expect(out.logs.contains { $0.contains("trading stays off") }, "\(out.logs)")
        // One node recovers: back in the pool, and in the market.
        let back = shards.nodes(0, ["r0-n0": .healthy, "r0-n1": .failed], at: 500)
        #expect(back.logs.contains { $0.contains("node r0-n0 recovered: back in the pool") }, "\(back.logs)")
        #expect(back.logs.contains { $0.contains("trading again from the next round, on 2 GPUs") }, "\(back.logs)")
        #expect(shards.cores[0].failedNodes == ["r0-n1"] && shards.cores[0].market?.planner.groups.map(\.capacity) == [2])
    }

    @Test("a job only a spread deal can run waits while its shard is out of the market and runs when it is back")
    func spreadJobWaitsForTheMarket() throws {
        var shards = try Shards(racks: spreadRacks, table: spreadTable)
        _ = shards.round(at: 0, listing: [])
        _ = shards.round(at: 360, listing: [wideJob(home: "shard-r1")])
        #expect(shards.cores[1].jobs["j-000001"]?.spreadWorkers == 4)
        // r1's only node fails: its part stops, and the job cannot run anywhere without its market.
        let failed = shards.nodes(1, ["r1-n0": .failed], at: 400)
        #expect(failed.commands.contains { $0.kind == .stop && $0.jobID == "j-000001" })
        #expect(shards.cores[1].market == nil && shards.cores[1].jobs["j-000001"]?.runnable == false)
        _ = shards.round(at: 720, listing: [wideJob(home: "shard-r1")])
        #expect(shards.cores[1].jobs["j-000001"]?.isPlaced == false)
        // The node recovers: the market re-opens, the job is runnable again and runs across racks.
        let recovered = shards.nodes(1, ["r1-n0": .healthy], at: 800)
        #expect(recovered.logs.contains { $0.contains("j-000001 can run across racks again, by trading") }, "\(recovered.logs)")
        let out = shards.round(at: 1080, listing: [wideJob(home: "shard-r1")])
        #expect(out[1].commands.first { $0.kind == .start && $0.jobID == "j-000001" }?.spreadWorkers == 4, "\(out[1].logs)")
    }

    @Test("a shard that adopts a rack while its market is open goes on scheduling rounds, without a market")
    func adoptionDuringTheWindow() throws {
        var shards = try Shards()
        _ = shards.round(at: 0, listing: [])
        _ = shards.round(at: 360, listing: [])
        // Round 3 opens its market at 720; r1 dies before the window closes and r0 adopts its rack.
        let list = [status("j-000001", home: "shard-r1"), status("j-000002", home: "shard-r0")]
        _ = shards.cores[0].handle(.tick, now: 720)
        _ = shards.cores[0].handle(.gatewayJobs(list), now: 720)
        #expect(shards.cores[0].roundPending)
        let adopted = shards.cores[0].handle(.adoptRack(racks[1], formerShard: "shard-r1"), now: 730)
        #expect(adopted.logs.contains { $0.contains("market closed: adopting rack r1; trading stays off until it is handed back") })
        #expect(shards.cores[0].market == nil && !shards.cores[0].roundPending)
        // The next tick starts a round; r1's agent registers; both home jobs get GPUs.
        #expect(shards.cores[0].handle(.tick, now: 735).contains { if case .pollGateway = $0 { true } else { false } })
        _ = shards.cores[0].handle(
            .agentReport(
                agentID: "agent-r1", address: racks[1].agentAddress,
                nodes: racks[1].nodes.map { NodeReport(nodeID: $0.id, rack: "r1") }, jobs: [], at: 736, isRegister: true),
            now: 736)
        let planned = shards.cores[0].handle(.gatewayJobs(list), now: 736)
        #expect(Set(planned.commands.filter { $0.kind == .start }.map(\.jobID)) == ["j-000001", "j-000002"], "\(planned.logs)")
        // shard-r1 is back: the rack goes home, and r0 trades again.
        let handedBack = shards.cores[0].handle(.releaseRacks(ofShard: "shard-r1"), now: 900)
        #expect(handedBack.logs.contains { $0.contains("trading again from the next round, on 4 GPUs") }, "\(handedBack.logs)")
        #expect(shards.cores[0].market != nil && shards.cores[0].racks.map(\.id) == ["r0"])
    }
}

@Suite("Trading messages on the wire")
struct TradingWireTests {
    @Test("every trading message survives the wire; ids keep their shape")
    func roundTrip() throws {
        let lease = LeaseID(owner: 2, serial: 17)
        let messages: [TradingMessage] = [
            .offer(TradeOffer(offerID: 5, buyer: 1, owner: 2, job: 42, group: 3, units: 2, bid: 0.75, round: 99, renewing: lease)),
            .offer(TradeOffer(offerID: 6, buyer: 1, owner: 0, job: 1_234_567, group: 0, units: 1, bid: 1, round: 100, renewing: nil)),
            .accept(TradeAccept(offerID: 5, owner: 2, buyer: 1, job: 42, lease: lease, group: 3, units: 2, expiresAt: 1800, price: 0.5)),
            .reject(TradeReject(offerID: 7, owner: 2, buyer: 1, job: 42, group: 3, ask: 1.5, reason: .outbid)),
            .release(LeaseRelease(lease: lease, buyer: 1, job: 42)),
            .commit(LeaseCommit(lease: lease, buyer: 1, job: 42, round: 99)),
            .commit(LeaseCommit(lease: lease, buyer: 1, job: 42, round: 99, dealUnits: 6, silent: true)),
        ]
        for m in messages {
            let bytes = try WireCodec.encode(Envelope(senderID: "shard-r1", body: TradingWire.body(m, buyerShard: "shard-r1")))
            let back = try TradingWire.message(WireCodec.decode(bytes).body, participants: 3).get()
            #expect(back == m)
        }
        #expect(TradingWire.jobID(42) == "j-000042" && TradingWire.jobID(1_234_567) == "j-1234567")
    }

    @Test("a trading frame naming an unknown rack, a foreign job id or a bad lease is refused with the field")
    func invalid() {
        func problem(_ body: Envelope.Body) -> String? {
            if case .failure(let e) = TradingWire.message(body, participants: 3) { return e.description }
            return nil
        }
        #expect(problem(.tradeOffer(BourseWire.TradeOffer(jobID: "j-000001", buyer: 7)))?.contains("buyer 7") == true)
        #expect(problem(.tradeOffer(BourseWire.TradeOffer(jobID: "job-1")))?.contains("job_id 'job-1'") == true)
        #expect(problem(.leaseCommit(BourseWire.LeaseCommit(leaseID: "L9.1", jobID: "j-000001")))?.contains("lease_id") == true)
        #expect(problem(.tradeReject(BourseWire.TradeReject(reason: "because", jobID: "j-000001")))?.contains("reason") == true)
        #expect(problem(.ping(Ping())) != nil)
    }

    @Test("asks travel in digests and come back the same; bad entries are skipped")
    func asks() {
        let asks: [Int: MarketAsk] = [0: MarketAsk(price: 0.5, costs: [1: 0, 2: 1.25, 4: 3]), 3: MarketAsk(price: 2)]
        #expect(TradingWire.marketAsks(TradingWire.groupAsks(asks), groups: 4) == asks)
        #expect(TradingWire.marketAsks(TradingWire.groupAsks(asks), groups: 2) == [0: asks[0]!])
        #expect(TradingWire.marketAsks([GroupAsk(group: 0, price: 1, units: [1, 2], costs: [1])], groups: 4).isEmpty)
    }
}
