import BourseModel
import BoursePolicy
import BourseWorkload
import Foundation
import XCTest

@testable import BourseSimulator

/// `bourse sim --shards K`: the simulator driving shards that trade.
final class ShardedSimulationTests: XCTestCase {
    private func load(
        trace: String = "dev-80-single", cluster: String = "gavel-4-4-4"
    ) throws -> (jobs: [TraceJob], cluster: ClusterConfig, table: ThroughputTable) {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let table = try ThroughputTable.load(path: root.appendingPathComponent("data/gavel-throughputs.json").path)
        let jobs = try GavelTrace.load(path: root.appendingPathComponent("data/traces/\(trace).trace").path, table: table)
        let cluster = try ClusterConfig.load(path: root.appendingPathComponent("cluster-configs/\(cluster).yaml").path)
        return (Array(jobs.prefix(30)), cluster, table)
    }

    private func run(
        shards: Int?, trading: Bool = true, loss: Double = 0, rehome: Bool = true, maxPhases: Int = 120,
        trace: String = "dev-80-single", cluster: String = "gavel-4-4-4"
    ) throws -> SimulationResult {
        let (jobs, cluster, table) = try load(trace: trace, cluster: cluster)
        var options = SimulationOptions()
        options.restartSeconds = 30
        options.estimator = .oracle
        options.shards = shards
        options.sharding.trading.enabled = trading
        options.sharding.network.loss = loss
        options.sharding.network.delayMs = loss > 0 ? 3 : 0
        options.sharding.rehome = rehome
        options.sharding.maxPhases = maxPhases
        return try Simulation(trace: jobs, cluster: cluster, table: table, policy: "bourse", options: options).run()
    }

    func testOneShardIsTheCentralPlanner() throws {
        let central = try run(shards: nil)
        let one = try run(shards: 1)
        XCTAssertEqual(central.records.map(\.jct), one.records.map(\.jct))
        XCTAssertEqual(one.trading["offers"], 0)
        XCTAssertEqual(one.trading["objective_ratio_mean"] ?? 0, 1, accuracy: 1e-9)
    }

    func testShardsTradeAndReportIt() throws {
        let central = try run(shards: nil)
        let traded = try run(shards: 3)
        let isolated = try run(shards: 3, trading: false)
        XCTAssertEqual(traded.metrics.jobs, 30)
        XCTAssertTrue(traded.records.allSatisfy { $0.completion != nil })
        XCTAssertGreaterThan(traded.trading["accepts"] ?? 0, 0)
        XCTAssertEqual(isolated.trading["offers"], 0)
        // Trading brings the shards closer to one central planner than racks on their own.
        XCTAssertGreaterThan(traded.trading["objective_ratio_mean"]!, isolated.trading["objective_ratio_mean"]!)
        XCTAssertLessThan(
            abs(traded.metrics.avgJCT / central.metrics.avgJCT - 1), abs(isolated.metrics.avgJCT / central.metrics.avgJCT - 1))
        let json = traded.json()
        for key in ["offers", "accepts", "rejects", "messages_per_round", "objective_ratio_mean"] {
            XCTAssertTrue(json.contains("\"\(key)\""), "trading.\(key) missing from the JSON")
        }
        XCTAssertFalse(central.json().contains("\"trading\""))
    }

    /// `bourse sim --no-rehome --max-phases N`: shards as live shards run them.
    func testRehomingAndThePhaseCapCanBeTurnedDown() throws {
        let usual = try run(shards: 3)
        let live = try run(shards: 3, rehome: false)
        XCTAssertGreaterThan(usual.trading["jobs_rehomed"] ?? 0, 0)
        XCTAssertEqual(live.trading["jobs_rehomed"], 0)
        XCTAssertTrue(live.records.allSatisfy { $0.completion != nil })
        // The cap, where rounds trade longer than it (6 shards of 2 GPUs, 4-GPU jobs: up to 23
        // phases uncapped); 12 is also the floor at this network's delay.
        let wide = (trace: "dev-80-multi", cluster: "gavel-4-4-4-split")
        let uncapped = try run(shards: 6, trace: wide.trace, cluster: wide.cluster)
        let capped = try run(shards: 6, maxPhases: 12, trace: wide.trace, cluster: wide.cluster)
        XCTAssertGreaterThan(uncapped.trading["phases_per_round_max"] ?? 0, 12)
        XCTAssertLessThanOrEqual(capped.trading["phases_per_round_max"] ?? .infinity, 12)
    }

    func testLossyNetworkStillCompletesEveryJob() throws {
        let lossy = try run(shards: 3, loss: 0.1)
        XCTAssertTrue(lossy.records.allSatisfy { $0.completion != nil })
        XCTAssertGreaterThan(lossy.trading["messages_lost"] ?? 0, 0)
    }

    func testShardSplit() throws {
        let (_, cluster, _) = try load()
        XCTAssertEqual(Set(try Simulation.shardSplit(cluster: cluster, shards: 3)).count, 3)
        // Grouping: two shards over three 4-GPU racks keep racks whole.
        let two = try Simulation.shardSplit(cluster: cluster, shards: 2)
        for rack in cluster.racks.map(\.id) {
            let owners = Set(cluster.nodes.indices.filter { cluster.nodes[$0].rack == rack }.map { two[$0] })
            XCTAssertEqual(owners.count, 1, "rack \(rack) split between shards with K < racks")
        }
        // Splitting: 8 shards, every shard owns a node, nodes of a shard are in one rack.
        let eight = try Simulation.shardSplit(cluster: cluster, shards: 8)
        XCTAssertEqual(Set(eight), Set(0..<8))
        for k in 0..<8 {
            XCTAssertEqual(Set(cluster.nodes.indices.filter { eight[$0] == k }.map { cluster.nodes[$0].rack }).count, 1)
        }
        XCTAssertThrowsError(try Simulation.shardSplit(cluster: cluster, shards: 13))
    }
}
