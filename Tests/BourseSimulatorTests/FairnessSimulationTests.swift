import BourseModel
import BoursePolicy
import BourseWorkload
import Foundation
import XCTest

@testable import BourseSimulator

private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Tenants, `oef` and `hops-lrf` in the simulator, on the dev traces.
final class FairnessSimulationTests: XCTestCase {
    private static let devRuns: [(trace: String, gpus: Int)] = [
        ("dev-80-multi", 4), ("dev-80-single", 4), ("dev-120-static", 8), ("dev-300-multi", 12),
    ]

    private func load(_ trace: String) throws -> (ThroughputTable, [TraceJob]) {
        let table = try ThroughputTable.load(path: repoRoot.appendingPathComponent("data/gavel-throughputs.json").path)
        let jobs = try GavelTrace.load(path: repoRoot.appendingPathComponent("data/traces/\(trace).trace").path)
        return (table, jobs)
    }

    private func cluster(_ n: Int) -> ClusterConfig {
        ClusterConfig.simulated(name: "gavel-\(n)-\(n)-\(n)", gpus: [("v100", n), ("p100", n), ("k80", n)])
    }

    private func options(tenants: [Tenant] = Tenant.equal(4), seed: UInt64 = 1) -> SimulationOptions {
        var o = SimulationOptions()
        o.tenants = tenants
        o.seed = seed
        o.restartSeconds = 30
        return o
    }

    /// Every allocation `oef` returns on every dev trace (4 round-robin tenants, and once with
    /// unequal weights) is envy-free and meets sharing incentive, checked by
    /// `TenantFairness.check` on the solver's output as the policy returns it.
    func testOEFIsEnvyFreeAndSharingIncentiveOnEveryRoundOfTheDevTraces() throws {
        var runs: [(String, Int, [Tenant])] = Self.devRuns.map { ($0.trace, $0.gpus, Tenant.equal(4)) }
        runs.append(
            ("dev-80-multi", 4, [Tenant(name: "a", weight: 1), Tenant(name: "b", weight: 2), Tenant(name: "c", weight: 4)]))
        for (trace, gpus, tenants) in runs {
            let (table, jobs) = try load(trace)
            let sim = try Simulation(
                trace: jobs, cluster: cluster(gpus), table: table, policy: "oef", options: options(tenants: tenants))
            var engine = Engine(simulation: sim)
            let result = try engine.run(progress: nil)
            let policy = try XCTUnwrap((engine.mechanism as? GavelRoundMechanism)?.policy as? OEFPolicy)
            XCTAssertEqual(policy.audit.allocations, result.allocations, trace)
            XCTAssertGreaterThan(policy.audit.allocations, 10, trace)
            XCTAssertLessThanOrEqual(policy.audit.maxEnvy, OEFPolicy.tolerance, trace)
            XCTAssertLessThanOrEqual(policy.audit.maxSharingIncentiveShortfall, OEFPolicy.tolerance, trace)
            XCTAssertEqual(policy.audit.envyOnly, 0, trace)
            // With equal tenants the full program (amount rows included) is always feasible.
            if Set(tenants.map(\.weight)).count == 1 { XCTAssertEqual(policy.audit.relaxed, 0, trace) }
            XCTAssertEqual(result.metrics.jobs, jobs.count)
            XCTAssertTrue(result.records.allSatisfy { $0.completion != nil }, trace)
        }
    }

    /// hops-lrf has a lower maximum latency ratio than gavel-las on every dev trace, and no more
    /// fragmentation (strictly less wherever gavel-las has any).
    func testHopsLRFBeatsGavelLASOnMaxLatencyRatioAndFragmentation() throws {
        for (trace, gpus) in Self.devRuns {
            let (table, jobs) = try load(trace)
            let las = try Simulation(trace: jobs, cluster: cluster(gpus), table: table, policy: "gavel-las", options: options())
                .run().metrics
            let hops = try Simulation(trace: jobs, cluster: cluster(gpus), table: table, policy: "hops-lrf", options: options())
                .run().metrics
            XCTAssertLessThan(hops.lrMax, las.lrMax, trace)
            if las.fragmentation > 0 {
                XCTAssertLessThan(hops.fragmentation, las.fragmentation, trace)
            } else {
                XCTAssertEqual(hops.fragmentation, 0, trace)
            }
        }
    }

    /// On 4-GPU servers (where highly sensitive jobs are held to one node and packed jobs go
    /// through the server classes of the integer program) hops-lrf still beats gavel-las on max
    /// LR, and every job finishes.
    func testHopsLRFOnMultiGPUServers() throws {
        let (table, jobs) = try load("dev-80-multi")
        let c = ClusterConfig.simulated(name: "4x4", gpus: [("v100", 8), ("p100", 8), ("k80", 8)], gpusPerServer: 4)
        let las = try Simulation(trace: jobs, cluster: c, table: table, policy: "gavel-las", options: options()).run()
        let hops = try Simulation(trace: jobs, cluster: c, table: table, policy: "hops-lrf", options: options()).run()
        XCTAssertTrue(hops.records.allSatisfy { $0.completion != nil })
        XCTAssertLessThan(hops.metrics.lrMax, las.metrics.lrMax)
        XCTAssertLessThanOrEqual(hops.metrics.fragmentation, las.metrics.fragmentation)
    }

    /// Bourse's latency-ratio knob lowers its maximum LR (dev-80-multi: 2.69 -> 2.10 in
    /// docs/fairness.md).
    func testBourseLatencyRatioKnobLowersMaxLR() throws {
        let (table, jobs) = try load("dev-80-multi")
        var o = options()
        o.estimator = .oracle
        let off = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "bourse", options: o).run()
        o.bourse.latencyRatioWeight = 4
        let on = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "bourse", options: o).run()
        XCTAssertLessThan(on.metrics.lrMax, off.metrics.lrMax * 0.8)
    }

    /// Tenant weights move the GPU time each tenant gets, under every weight-aware policy.
    func testHeavierTenantsGetMoreGPUTime() throws {
        let (table, _) = try load("dev-80-multi")
        // Two identical streams of long jobs, one per tenant (round-robin), on a small cluster.
        let jobs = (0..<24).map { i in
            TraceJob(jobType: "ResNet-18 (batch size 32)", totalSteps: 200_000, scaleFactor: 1, arrivalTime: Double(i / 2))
        }
        let tenants = [Tenant(name: "heavy", weight: 3), Tenant(name: "light", weight: 1)]
        for policy in ["gavel-las", "oef", "oef-nc", "hops-lrf", "bourse-fixed"] {
            var o = options(tenants: tenants)
            o.estimator = .oracle
            let result = try Simulation(trace: jobs, cluster: cluster(2), table: table, policy: policy, options: o).run()
            let t = result.metrics.tenants
            XCTAssertEqual(t.map(\.name), ["heavy", "light"])
            // The light tenant's jobs outlast the heavy one's, so the heavy tenant is entitled to
            // 3/4 all along; the light one alone at the end.
            XCTAssertEqual(t[0].shareEntitled, 0.75, accuracy: 1e-9)
            XCTAssertGreaterThan(t[1].shareEntitled, 0.25)
            XCTAssertGreaterThan(t[0].shareReceived, 0.6, policy)
            XCTAssertLessThan(t[0].avgJCT, t[1].avgJCT, policy)
        }
    }

    func testTenantsInTheJSONAndDeterminism() throws {
        let (table, jobs) = try load("dev-80-multi")
        for policy in ["hops-lrf", "oef"] {
            let a = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: policy, options: options()).run()
            let b = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: policy, options: options()).run()
            XCTAssertEqual(Data(a.json().utf8), Data(b.json().utf8), policy)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(a.json().utf8)) as? [String: Any])
            XCTAssertNotNil(object["envy_max"])
            let tenants = try XCTUnwrap(object["tenants"] as? [String: [String: Any]])
            XCTAssertEqual(tenants.keys.sorted(), ["t0", "t1", "t2", "t3"])
            XCTAssertEqual(tenants.values.map { $0["jobs"] as! Int }.reduce(0, +), 80)
            for t in tenants.values { XCTAssertGreaterThanOrEqual(t["share_entitled"] as! Double, 0.25) }
        }
        // A different seed assigns tenants differently.
        let c = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "oef", options: options(seed: 2)).run()
        let d = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "oef", options: options(seed: 1)).run()
        XCTAssertNotEqual(c.records.map(\.tenant), d.records.map(\.tenant))
        // One tenant: no envy, and gavel-las is unchanged by the tenant plumbing.
        var single = SimulationOptions()
        single.restartSeconds = 30
        let one = try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "gavel-las", options: single).run()
        XCTAssertEqual(one.metrics.envyMax, 0)
        XCTAssertEqual(one.metrics.tenants.count, 1)
    }

    func testBadTenantsAreClearErrors() throws {
        let (table, jobs) = try load("dev-80-single")
        var o = SimulationOptions()
        o.tenants = [Tenant(name: "a"), Tenant(name: "b", weight: -1)]
        XCTAssertThrowsError(try Simulation(trace: jobs, cluster: cluster(4), table: table, policy: "oef", options: o)) {
            XCTAssertTrue("\($0)".contains("tenants[1].weight"), "\($0)")
        }
    }
}

extension FairnessSimulationTests {
    func testJobsNamingTheirTenantKeepItAndUnknownTenantsAreErrors() throws {
        let (table, _) = try load("dev-80-single")
        var jobs = (0..<4).map { _ in TraceJob(jobType: "ResNet-18 (batch size 32)", totalSteps: 1000, tenant: "b") }
        var o = SimulationOptions()
        o.tenants = [Tenant(name: "a"), Tenant(name: "b", weight: 2)]
        let r = try Simulation(trace: jobs, cluster: cluster(1), table: table, policy: "oef", options: o).run()
        XCTAssertEqual(r.records.map(\.tenant), [1, 1, 1, 1])
        jobs[2].tenant = "c"
        XCTAssertThrowsError(try Simulation(trace: jobs, cluster: cluster(1), table: table, policy: "oef", options: o)) {
            XCTAssertEqual("\($0)", "job 2 (trace line 3): tenant: unknown tenant 'c' (declared: a, b)")
        }
    }
}
