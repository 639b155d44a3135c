import BourseModel
import BourseWorkload
import Foundation
import XCTest

@testable import BourseSimulator

/// Pins the smallest dev traces against what Gavel's own simulator printed
/// (data/traces/gavel-reference-results.tsv). Gavel's simulator uses the consolidated
/// throughputs whatever the placement, so these runs do too (see docs/simulator.md).
final class GavelFidelityTests: XCTestCase {
    private let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func reference() throws -> [String: Double] {
        let text = try String(
            contentsOf: root.appendingPathComponent("data/traces/gavel-reference-results.tsv"), encoding: .utf8)
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n").dropFirst() {
            let f = line.split(separator: "\t").map(String.init)
            out["\(f[0])/\(f[2])"] = Double(f[3])
        }
        return out
    }

    func testDev80OnGavel444WithinFivePercent() throws {
        let table = try ThroughputTable.load(path: root.appendingPathComponent("data/gavel-throughputs.json").path)
        let cluster = ClusterConfig.simulated(name: "gavel-4-4-4", gpus: [("v100", 4), ("p100", 4), ("k80", 4)])
        let ref = try reference()
        var options = SimulationOptions()
        options.throughputMode = .consolidated
        for name in ["dev-80-single", "dev-80-multi"] {
            let trace = try GavelTrace.load(path: root.appendingPathComponent("data/traces/\(name).trace").path, table: table)
            for policy in ["fifo", "gavel-las", "gavel-ftf"] {
                let sim = try Simulation(trace: trace, cluster: cluster, table: table, policy: policy, options: options)
                let result = try sim.run()
                let gavel = try XCTUnwrap(ref["\(name).trace/\(sim.gavelPolicyName)"])
                let diff = abs(result.metrics.avgJCT - gavel) / gavel
                XCTAssertLessThan(diff, policy == "fifo" ? 0.001 : 0.05, "\(name) \(policy): \(result.metrics.avgJCT) vs \(gavel)")
            }
        }
    }
}
