import BourseModel
import BourseWorkload
import Foundation
import XCTest

@testable import BourseSimulator

private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

final class SimulatorTests: XCTestCase {
    /// A3C: 2 steps/s on v100, 1 on k80; R (2 GPUs): 8 consolidated, 5 spread.
    private let table = ThroughputTable(entries: [
        "v100": [JobTypeKey(model: "A3C", scaleFactor: 1): 2, JobTypeKey(model: "R", scaleFactor: 2): 8],
        "k80": [JobTypeKey(model: "A3C", scaleFactor: 1): 1, JobTypeKey(model: "R", scaleFactor: 2): 3],
        "v100_unconsolidated": [JobTypeKey(model: "R", scaleFactor: 2): 5],
    ])

    private func cluster(_ v100: Int, _ k80: Int = 0, perServer: Int = 1) -> ClusterConfig {
        ClusterConfig.simulated(name: "test", gpus: [("v100", v100), ("k80", k80)].filter { $0.1 > 0 }, gpusPerServer: perServer)
    }

    private func run(
        _ jobs: [TraceJob], _ cluster: ClusterConfig, _ policy: String, _ configure: (inout SimulationOptions) -> Void = { _ in }
    ) throws -> SimulationResult {
        var options = SimulationOptions()
        configure(&options)
        return try Simulation(trace: jobs, cluster: cluster, table: table, policy: policy, options: options).run()
    }

    /// One job alone finishes at exactly steps / throughput, whatever the round length.
    func testLoneJobFinishesAtStepsOverThroughput() throws {
        let job = TraceJob(jobType: "A3C", totalSteps: 10_001, arrivalTime: 50)
        for policy in ["fifo", "gavel-las", "gavel-ftf", "gavel-maxsum", "gavel-makespan"] {
            for round in [360.0, 97] {
                let r = try run([job], cluster(1, 1), policy) { $0.roundSeconds = round }
                XCTAssertEqual(r.records[0].completion!, 50 + 10_001.0 / 2, accuracy: 1e-6, "\(policy) \(round)")
                XCTAssertEqual(r.metrics.makespan, 10_001.0 / 2, accuracy: 1e-6)
                XCTAssertEqual(r.metrics.utilization, 0.5, accuracy: 1e-9)  // one of two GPUs busy
                XCTAssertEqual(r.metrics.restarts, 0)
            }
        }
    }

    /// A 2-GPU job on 1-GPU servers runs at the unconsolidated speed; packed on one server, or
    /// in Gavel's mode, at the consolidated speed.
    func testMultiGPUJobsUseUnconsolidatedThroughputWhenSpread() throws {
        let job = TraceJob(jobType: "R", totalSteps: 4000, scaleFactor: 2)
        XCTAssertEqual(try run([job], cluster(2), "fifo").records[0].jct, 4000.0 / 5, accuracy: 1e-6)
        XCTAssertEqual(try run([job], cluster(2, perServer: 2), "fifo").records[0].jct, 4000.0 / 8, accuracy: 1e-6)
        let gavel = try run([job], cluster(2), "fifo") { $0.throughputMode = .consolidated }
        XCTAssertEqual(gavel.records[0].jct, 4000.0 / 8, accuracy: 1e-6)
    }

    /// The restart delay is charged at every fresh start, not when a job keeps its GPUs.
    func testRestartDelay() throws {
        let job = TraceJob(jobType: "A3C", totalSteps: 7200)
        let r = try run([job], cluster(1), "gavel-las") { $0.restartSeconds = 30 }
        XCTAssertEqual(r.records[0].jct, 30 + 7200.0 / 2, accuracy: 1e-6)
        XCTAssertEqual(r.records[0].restarts, 0)
        // Two jobs sharing one GPU take turns: every turn after the first is a restart.
        let two = [job, TraceJob(jobType: "A3C", totalSteps: 7200)]
        let shared = try run(two, cluster(1), "gavel-las") { $0.restartSeconds = 30 }
        XCTAssertGreaterThan(shared.metrics.restarts, 0)
        let free = try run(two, cluster(1), "gavel-las")
        XCTAssertGreaterThan(shared.metrics.makespan, free.metrics.makespan)
    }

    func testSameInputsGiveByteIdenticalJSON() throws {
        let path = repoRoot.appendingPathComponent("data/gavel-throughputs.json").path
        let gavelTable = try ThroughputTable.load(path: path)
        let trace = try GavelTrace.load(path: repoRoot.appendingPathComponent("data/traces/dev-80-multi.trace").path)
        let c = ClusterConfig.simulated(name: "gavel-4-4-4", gpus: [("v100", 4), ("p100", 4), ("k80", 4)])
        for policy in ["gavel-ftf", "gavel-las"] {
            var options = SimulationOptions()
            options.seed = 42
            let a = try Simulation(trace: trace, cluster: c, table: gavelTable, policy: policy, options: options).run()
            let b = try Simulation(trace: trace, cluster: c, table: gavelTable, policy: policy, options: options).run()
            XCTAssertEqual(Data(a.json().utf8), Data(b.json().utf8))
            XCTAssertEqual(a.jobsCSV(), b.jobsCSV())
            XCTAssertTrue(a.json().contains("\"seed\": 42"))
        }
    }

    func testJSONHasTheDocumentedKeys() throws {
        let r = try run([TraceJob(jobType: "A3C", totalSteps: 100)], cluster(1), "fifo")
        let object = try JSONSerialization.jsonObject(with: Data(r.json().utf8)) as? [String: Any]
        for key in [
            "policy", "trace", "cluster", "jobs", "avg_jct_s", "median_jct_s", "p95_jct_s", "p99_jct_s", "makespan_s",
            "utilization", "ftf_max", "ftf_mean", "lr_max", "fragmentation", "restarts",
        ] {
            XCTAssertNotNil(object?[key], key)
        }
        XCTAssertEqual(r.jobsCSV().split(separator: "\n").count, 2)
    }

    func testBadInputsAreClearErrors() {
        let a100 = ClusterConfig.simulated(name: "odd", gpus: [("a100", 2)])
        XCTAssertThrowsError(try run([TraceJob(jobType: "A3C", totalSteps: 1)], a100, "fifo")) { error in
            XCTAssertTrue("\(error)".contains("GPU type 'a100' is not in the throughput table"), "\(error)")
        }
        XCTAssertThrowsError(try run([TraceJob(jobType: "R", totalSteps: 1, scaleFactor: 2)], cluster(1), "fifo")) {
            error in
            XCTAssertTrue("\(error)".contains("cannot run on cluster"), "\(error)")
        }
        XCTAssertThrowsError(try run([TraceJob(jobType: "Nope", totalSteps: 1)], cluster(1), "fifo")) { error in
            XCTAssertTrue("\(error)".contains("trace line 1"), "\(error)")
        }
        XCTAssertThrowsError(try run([], cluster(1), "lottery"))
    }

    func testPercentilesAndActiveJobIntegral() {
        XCTAssertEqual(percentile([1, 2, 3, 4], 0.5), 2.5)
        XCTAssertEqual(percentile([1, 2, 3, 4, 5], 0.95), 4.8, accuracy: 1e-12)
        let integral = ActiveJobIntegral(arrivals: [0, 10], completions: [20, 30])
        XCTAssertEqual(integral.average(from: 0, to: 20), 1.5, accuracy: 1e-12)  // 1 job for 10 s, 2 for 10 s
        XCTAssertEqual(integral.average(from: 10, to: 30), 1.5, accuracy: 1e-12)
        XCTAssertEqual(formatNumber(19017.664000), "19017.664")
        XCTAssertEqual(formatNumber(3), "3")
        XCTAssertEqual(formatNumber(-0.0000001), "0")
    }
}
