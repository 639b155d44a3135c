import BourseModel
import BoursePolicy
import BourseWorkload
import Foundation
import XCTest

@testable import BourseSimulator

final class BourseSimulationTests: XCTestCase {
    /// D (data-parallel): 1 worker 4 steps/s, 2 workers 3 steps/s each step twice the samples
    /// (so 6 trace-steps/s for a 1-worker trace job) packed, 2.5 spread; S: single-GPU only.
    private let table = ThroughputTable(entries: [
        "v100": [
            JobTypeKey(model: "D", scaleFactor: 1): 4, JobTypeKey(model: "D", scaleFactor: 2): 3,
            JobTypeKey(model: "S", scaleFactor: 1): 2,
        ],
        "v100_unconsolidated": [JobTypeKey(model: "D", scaleFactor: 2): 2.5],
    ])

    private func run(
        _ jobs: [TraceJob], _ cluster: ClusterConfig, _ policy: String,
        _ configure: (inout SimulationOptions) -> Void = { _ in }
    ) throws -> SimulationResult {
        var options = SimulationOptions()
        options.restartSeconds = 30
        configure(&options)
        return try Simulation(trace: jobs, cluster: cluster, table: table, policy: policy, options: options).run()
    }

    /// Hand-checkable: one 1-worker D job of 6000 steps on one 2-GPU server. bourse grows it to 2
    /// workers (6 trace-steps/s): 30 s restart + 1000 s. bourse-fixed keeps 1 worker (4 steps/s):
    /// 30 + 1500 s. Spread over two 1-GPU servers, 2 workers run 5 trace-steps/s: 30 + 1200 s.
    func testLoneElasticJob() throws {
        let job = TraceJob(jobType: "D", totalSteps: 6000, scaleFactor: 1, arrivalTime: 10)
        let packed = ClusterConfig.simulated(name: "t", gpus: [("v100", 2)], gpusPerServer: 2)
        let spread = ClusterConfig.simulated(name: "t", gpus: [("v100", 2)], gpusPerServer: 1)
        let elastic = try run([job], packed, "bourse")
        XCTAssertEqual(elastic.records[0].jct, 1030, accuracy: 1e-6)
        XCTAssertEqual(elastic.records[0].restarts, 0)
        XCTAssertEqual(try run([job], packed, "bourse-fixed").records[0].jct, 1530, accuracy: 1e-6)
        XCTAssertEqual(try run([job], spread, "bourse").records[0].jct, 1230, accuracy: 1e-6)
        // In consolidated mode (Gavel's throughputs) spread workers run at the packed speed.
        let gavelMode = try run([job], spread, "bourse") { $0.throughputMode = .consolidated }
        XCTAssertEqual(gavelMode.records[0].jct, 1030, accuracy: 1e-6)
        // Narrowed elastic range: at most 1 worker.
        var narrow = job
        narrow.maxWorkers = 1
        XCTAssertEqual(try run([narrow], packed, "bourse").records[0].jct, 1530, accuracy: 1e-6)
    }

    /// A GPU type without `*_unconsolidated` entries: spread speeds come from the network tiers.
    /// D on a100: 4 steps/s alone, 3 at 2 workers packed, so a step is 0.25 s of compute plus
    /// 0.083 s of node-tier communication. Spread in a rack (100 vs 300 Gb/s) the communication
    /// takes 3x: 0.5 s a step (2 steps/s); over two racks (25 Gb/s) 12x: 1.25 s (0.8 steps/s).
    func testNetworkTierModelForTypesWithoutUnconsolidatedEntries() throws {
        let a100 = ThroughputTable(entries: [
            "a100": [JobTypeKey(model: "D", scaleFactor: 1): 4, JobTypeKey(model: "D", scaleFactor: 2): 3]
        ])
        func cluster(racks: Int) -> ClusterConfig {
            let nodes = (0..<2).map { NodeSpec(id: "n\($0)", rack: "r\($0 % racks)", gpus: ["a100": 1]) }
            let rackSpecs = (0..<racks).map { r in
                RackSpec(
                    id: "r\(r)", shardAddress: "inproc://s\(r)", agentAddress: "inproc://a\(r)",
                    nodes: nodes.filter { $0.rack == "r\(r)" })
            }
            return ClusterConfig(
                name: "a100", gpuTypes: [GPUTypeSpec(name: "a100")], gateway: GatewaySpec(address: "inproc://g"),
                racks: rackSpecs)
        }
        let job = TraceJob(jobType: "D", totalSteps: 1000, scaleFactor: 2)
        for policy in ["bourse-fixed", "fifo"] {
            var options = SimulationOptions()
            options.restartSeconds = 30
            let oneRack = try Simulation(trace: [job], cluster: cluster(racks: 1), table: a100, policy: policy, options: options)
                .run()
            XCTAssertEqual(oneRack.records[0].jct, 30 + 500, accuracy: 1e-6, policy)
            let twoRacks = try Simulation(trace: [job], cluster: cluster(racks: 2), table: a100, policy: policy, options: options)
                .run()
            XCTAssertEqual(twoRacks.records[0].jct, 30 + 1250, accuracy: 1e-6, policy)
        }
    }

    /// Shortest remaining first: a short job arriving next to a long one on a single GPU runs
    /// first; both finish, the long one after the short one.
    func testShortJobFirstOnOneGPU() throws {
        let long = TraceJob(jobType: "S", totalSteps: 20_000, arrivalTime: 0)
        let short = TraceJob(jobType: "S", totalSteps: 1_000, arrivalTime: 0)
        let r = try run([long, short], ClusterConfig.simulated(name: "t", gpus: [("v100", 1)]), "bourse")
        // short: 30 s restart + 500 s; long: starts next round at 360 s... runs to the end.
        XCTAssertEqual(r.records[1].jct, 530, accuracy: 1e-6)
        XCTAssertGreaterThan(r.records[0].jct, r.records[1].jct)
        XCTAssertNotNil(r.records[0].completion)
    }

    /// With the CF estimator the planner works from profiled and estimated speeds; the run
    /// completes every job, reproducibly, and the simulator still runs jobs at true speeds.
    func testCFEstimatorRuns() throws {
        let jobs = [
            TraceJob(jobType: "D", totalSteps: 6000, scaleFactor: 1, arrivalTime: 0),
            TraceJob(jobType: "S", totalSteps: 3000, arrivalTime: 100),
            TraceJob(jobType: "D", totalSteps: 2000, scaleFactor: 2, arrivalTime: 200),
        ]
        let c = ClusterConfig.simulated(name: "t", gpus: [("v100", 4)], gpusPerServer: 2)
        let a = try run(jobs, c, "bourse") { $0.estimator = .cf }
        let b = try run(jobs, c, "bourse") { $0.estimator = .cf }
        XCTAssertEqual(a.json(), b.json())
        XCTAssertTrue(a.records.allSatisfy { $0.completion != nil })
        let oracle = try run(jobs, c, "bourse") { $0.estimator = .oracle }
        XCTAssertLessThan(a.metrics.avgJCT, oracle.metrics.avgJCT * 1.5)
    }

    /// Determinism and the Gavel baselines untouched: both Bourse policies finish every job of a
    /// dev trace, byte-identically on reruns.
    func testDevTraceRunsDeterministically() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let gavelTable = try ThroughputTable.load(path: root.appendingPathComponent("data/gavel-throughputs.json").path)
        let trace = try GavelTrace.load(
            path: root.appendingPathComponent("data/traces/dev-80-single.trace").path, table: gavelTable)
        let c = ClusterConfig.simulated(name: "gavel-4-4-4", gpus: [("v100", 4), ("p100", 4), ("k80", 4)])
        for policy in ["bourse", "bourse-fixed"] {
            var options = SimulationOptions()
            options.restartSeconds = 30
            let a = try Simulation(trace: trace, cluster: c, table: gavelTable, policy: policy, options: options).run()
            let b = try Simulation(trace: trace, cluster: c, table: gavelTable, policy: policy, options: options).run()
            XCTAssertEqual(a.json(), b.json())
            XCTAssertTrue(a.records.allSatisfy { $0.completion != nil })
            XCTAssertEqual(a.policy, policy)
        }
    }
}
