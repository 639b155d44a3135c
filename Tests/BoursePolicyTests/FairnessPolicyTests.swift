import BourseLP
import XCTest

@testable import BoursePolicy

/// Tenants, OEF, Hops' latency-ratio planner and the integer program they rest on.
final class FairnessPolicyTests: XCTestCase {
    private func job(
        _ id: Int, _ throughputs: [Double], scale: Int = 1, tenant: Int = 0, weight: Double = 1, remaining: Double = 1000,
        age: Double = 0
    ) -> PolicyJob {
        PolicyJob(
            id: id, scaleFactor: scale, throughputs: throughputs, stepsRemaining: remaining, timeSinceArrival: age,
            tenant: tenant, tenantWeight: weight)
    }

    // MARK: Tenants

    func testWeightedWaterFillingCapsAtDemand() {
        let g = TenantFairness.entitledGPUs(total: 10, demands: [1, 100, 100], weights: [1, 2, 1])
        XCTAssertEqual(g[0], 1, accuracy: 1e-9)  // wants only one
        XCTAssertEqual(g[1], 6, accuracy: 1e-9)  // the other 9 split 2:1
        XCTAssertEqual(g[2], 3, accuracy: 1e-9)
        let small = TenantFairness.entitledGPUs(total: 10, demands: [2, 3], weights: [1, 1])
        XCTAssertEqual(small, [2, 3])
    }

    func testTenantErrorsNameTheField() {
        XCTAssertThrowsError(try Tenant.validate([Tenant(name: "a"), Tenant(name: "b", weight: 0)])) {
            XCTAssertTrue("\($0)".hasPrefix("tenants[1].weight: must be a finite number > 0"), "\($0)")
        }
        XCTAssertThrowsError(try Tenant.validate([Tenant(name: "a"), Tenant(name: "a")])) {
            XCTAssertTrue("\($0)".contains("tenants[1].name: duplicate tenant 'a'"), "\($0)")
        }
        XCTAssertThrowsError(try Tenant.index(of: "x", in: [Tenant(name: "a"), Tenant(name: "b")])) {
            XCTAssertEqual("\($0)", "tenant: unknown tenant 'x' (declared: a, b)")
        }
        XCTAssertNoThrow(try Tenant.validate(Tenant.equal(3)))
    }

    func testRoundRobinIsSeededAndBalanced() {
        let a = Tenant.roundRobin(jobs: 12, tenants: 4, seed: 7)
        XCTAssertEqual(a, Tenant.roundRobin(jobs: 12, tenants: 4, seed: 7))
        for k in 0..<4 { XCTAssertEqual(a.filter { $0 == k }.count, 3) }
        XCTAssertEqual(Array(a[0..<4]), Array(a[4..<8]))  // round-robin
        let orders = Set((0..<20).map { Tenant.roundRobin(jobs: 4, tenants: 4, seed: UInt64($0)) })
        XCTAssertGreaterThan(orders.count, 1, "the seed moves the order")
    }

    func testTheCheckerSeesEnvyAndMissingSharingIncentive() {
        // Tenant 0 values v100 much more than k80, tenant 1 does not care.
        let s = PolicySnapshot(
            workerTypes: ["v100", "k80"], capacity: [2, 2],
            jobs: [job(0, [10, 1]), job(1, [10, 1]), job(2, [10, 10], tenant: 1), job(3, [10, 10], tenant: 1)])
        // Tenant 0 on the k80s, tenant 1 on the v100s: 0 envies 1, and gets less than its half.
        let bad = Allocation(workerTypes: s.workerTypes, fractions: [0: [0, 1], 1: [0, 1], 2: [1, 0], 3: [1, 0]])
        let c = TenantFairness.check(bad, s)
        XCTAssertGreaterThan(c.envy, 1)
        XCTAssertGreaterThan(c.sharingIncentiveShortfall, 0.5)
        // The swap is envy-free and gives both at least their share.
        let good = Allocation(workerTypes: s.workerTypes, fractions: [0: [1, 0], 1: [1, 0], 2: [0, 1], 3: [0, 1]])
        XCTAssertEqual(TenantFairness.check(good, s).envy, 0, accuracy: 1e-12)
        XCTAssertEqual(TenantFairness.check(good, s).sharingIncentiveShortfall, 0, accuracy: 1e-12)
    }

    // MARK: OEF

    /// Random snapshots (2-4 tenants, unequal weights, mixed scale factors): every OEF output is
    /// envy-free and meets sharing incentive, and it is at least as efficient as the
    /// non-cooperative mode.
    func testOEFIsEnvyFreeAndSharingIncentiveOnRandomSnapshots() throws {
        var rng = SystemRandomNumberGeneratorSeeded(seed: 11)
        for round in 0..<60 {
            let tenants = 2 + Int(rng.next() % 3)
            let weights = (0..<tenants).map { _ in Double(1 + rng.next() % 3) }
            let capacity = [Int(1 + rng.next() % 6), Int(1 + rng.next() % 6), Int(1 + rng.next() % 6)]
            var jobs: [PolicyJob] = []
            for id in 0..<Int(2 + rng.next() % 12) {
                let tenant = id % tenants
                let v100 = 1 + Double(rng.next() % 100) / 10
                let p100 = v100 * (0.3 + Double(rng.next() % 70) / 100)
                let k80 = p100 * (0.2 + Double(rng.next() % 80) / 100)
                let scale = [1, 1, 1, 2, 4][Int(rng.next() % 5)]
                jobs.append(job(id, [v100, p100, k80], scale: scale, tenant: tenant, weight: weights[tenant]))
            }
            let s = PolicySnapshot(workerTypes: ["v100", "p100", "k80"], capacity: capacity, jobs: jobs)
            var oef = OEFPolicy()
            let a = try oef.allocate(s)
            let c = TenantFairness.check(a, s)
            XCTAssertLessThanOrEqual(c.envy, 1e-6, "round \(round)")
            XCTAssertLessThanOrEqual(c.sharingIncentiveShortfall, 1e-6, "round \(round)")
            XCTAssertEqual(oef.audit.relaxed, 0, "round \(round)")
            var nc = OEFPolicy(mode: .nonCooperative)
            let b = try nc.allocate(s)
            XCTAssertGreaterThanOrEqual(normalisedThroughput(a, s), normalisedThroughput(b, s) * (1 - 1e-6), "round \(round)")
        }
    }

    private func normalisedThroughput(_ a: Allocation, _ s: PolicySnapshot) -> Double {
        s.jobs.map { j in
            let n = TenantFairness.normalisedSpeeds(j)
            return n.indices.map { n[$0] * a.fraction(job: j.id, type: $0) * Double(j.scaleFactor) }.reduce(0, +)
        }.reduce(0, +)
    }

    /// The tenant that gains from V100s gets them when the other does not care; the
    /// non-cooperative mode ignores speed-ups and gives both the same mix. When both prefer
    /// V100s, envy-freeness splits them.
    func testOEFGivesFastGPUsToTheTenantThatGainsMost() throws {
        let s = PolicySnapshot(
            workerTypes: ["v100", "k80"], capacity: [2, 2],
            jobs: [job(0, [10, 10]), job(1, [10, 10]), job(2, [10, 1], tenant: 1), job(3, [10, 1], tenant: 1)])
        var oef = OEFPolicy(lpMethod: .simplex)
        let a = try oef.allocate(s)
        let y = TenantFairness.bundles(a, s, TenantFairness.views(s))
        XCTAssertEqual(y[1][0], 2, accuracy: 1e-6, "the sensitive tenant gets both V100s")
        XCTAssertEqual(y[0][1], 2, accuracy: 1e-6)
        var nc = OEFPolicy(mode: .nonCooperative, lpMethod: .simplex)
        let b = try nc.allocate(s)
        let z = TenantFairness.bundles(b, s, TenantFairness.views(s))
        for k in 0..<2 { for t in 0..<2 { XCTAssertEqual(z[k][t], 1, accuracy: 1e-6) } }
        let both = PolicySnapshot(
            workerTypes: ["v100", "k80"], capacity: [2, 2],
            jobs: [job(0, [10, 9]), job(1, [10, 9]), job(2, [10, 1], tenant: 1), job(3, [10, 1], tenant: 1)])
        var split = OEFPolicy(lpMethod: .simplex)
        let e = TenantFairness.bundles(try split.allocate(both), both, TenantFairness.views(both))
        XCTAssertEqual(e[0][0], 1, accuracy: 1e-6)
        XCTAssertEqual(e[1][0], 1, accuracy: 1e-6)
        // Weights move the amounts: weight 3 vs 1 gets 3 of 4 GPUs.
        let w = PolicySnapshot(
            workerTypes: ["v100", "k80"], capacity: [2, 2],
            jobs: (0..<8).map { job($0, [10, 5], tenant: $0 % 2, weight: $0 % 2 == 0 ? 3 : 1) })
        var weighted = OEFPolicy()
        let wy = TenantFairness.bundles(try weighted.allocate(w), w, TenantFairness.views(w))
        XCTAssertEqual(wy[0].reduce(0, +), 3, accuracy: 1e-5)
        XCTAssertEqual(wy[1].reduce(0, +), 1, accuracy: 1e-5)
    }

    // MARK: Integer program

    func testIntegerProgramFindsTheIntegralOptimum() throws {
        // Knapsack: values 6, 10, 12, weights 1, 2, 3, capacity 5. LP relaxation 24, integral 22.
        var ip = IntegerProgram(.maximize)
        let x = [6.0, 10, 12].map { ip.addBinaryColumn(objective: $0) }
        ip.addRow(zip(x, [1.0, 2, 3]).map { LPTerm($0, $1) }, .atMost(5))
        let solution = try ip.solve()
        XCTAssertEqual(solution.objective, 22, accuracy: 1e-9)
        XCTAssertEqual(solution.values, [0, 1, 1])
        var relaxation = LinearProgram(.maximize)
        let r = [6.0, 10, 12].map { relaxation.addColumn(.between(0, 1), objective: $0) }
        relaxation.addRow(zip(r, [1.0, 2, 3]).map { LPTerm($0, $1) }, .atMost(5))
        XCTAssertEqual(try relaxation.solve().objective, 24, accuracy: 1e-9)
        var infeasible = IntegerProgram(.maximize)
        let y = infeasible.addIntegerColumn(.between(0, 3))
        infeasible.addRow([LPTerm(y, 2)], .fixed(3))
        XCTAssertThrowsError(try infeasible.solve())
    }

    // MARK: Hops

    private func pool(_ servers: [[[Int]]], types: [String] = ["v100", "k80"]) -> WorkerPool {
        WorkerPool(types: types, servers: servers)
    }

    /// A job with packed and spread speeds (spread = `spreadRatio` x packed).
    private func hopsJob(_ id: Int, scale: Int, speed: [Double], spreadRatio: Double, remaining: Double = 1000, age: Double = 0)
        -> PolicyJob
    {
        let option = ElasticOption(workers: scale, packed: speed, spread: speed.map { $0 * spreadRatio })
        return PolicyJob(
            id: id, scaleFactor: scale, throughputs: speed, stepsRemaining: remaining, timeSinceArrival: age,
            elastic: ElasticProfile(totalWork: remaining, options: [option]))
    }

    func testHopsServesTheHighestLatencyRatioFirst() throws {
        var hops = HopsLRFPlanner(pool: pool([[[0]], []], types: ["v100", "k80"]))
        for id in 0..<3 { hops.addJob(id) }
        // Job 0 waited 100 s for 1000 s of work, job 1 waited 500 s for 1000 s, job 2 waited
        // 600 s for 10000 s of work: LRs 0.1, 0.5, 0.06.
        let jobs = [
            hopsJob(0, scale: 1, speed: [1, 0], spreadRatio: 1, remaining: 1000, age: 100),
            hopsJob(1, scale: 1, speed: [1, 0], spreadRatio: 1, remaining: 1000, age: 500),
            hopsJob(2, scale: 1, speed: [1, 0], spreadRatio: 1, remaining: 10000, age: 600),
        ]
        XCTAssertEqual(hops.latencyRatio(jobs[1]), 0.5, accuracy: 1e-12)
        let plan = try hops.planRound(now: 600, jobs: jobs)
        XCTAssertEqual(plan.map(\.jobID), [1])
        // Time it ran counts as service, not waiting.
        hops.recordExecution(job: 1, typeIndex: 0, seconds: 400)
        XCTAssertEqual(hops.latencyRatio(jobs[1]), 0.1, accuracy: 1e-12)
    }

    func testHopsKeepsSensitiveJobsOnOneNodeAndFillsFragments() throws {
        // v100: one 4-GPU server and two 1-GPU servers. k80: two 1-GPU servers.
        let p = pool([[[0, 1, 2, 3], [4], [5]], [[6], [7]]])
        var parameters = HopsLRFPlanner.Parameters()
        parameters.windowFactor = 0.25  // the window holds the first 2 GPUs of demand
        var hops = HopsLRFPlanner(pool: p, parameters: parameters)
        for id in 0..<3 { hops.addJob(id) }
        let sensitive = hopsJob(0, scale: 2, speed: [10, 4], spreadRatio: 0.3, age: 1000)
        XCTAssertTrue(hops.isHighlySensitive(sensitive))
        let tolerant = hopsJob(1, scale: 2, speed: [10, 8], spreadRatio: 0.95, age: 10)
        XCTAssertFalse(hops.isHighlySensitive(tolerant))
        let small = hopsJob(2, scale: 1, speed: [10, 8], spreadRatio: 1, age: 0)
        let plan = try hops.planRound(now: 1000, jobs: [sensitive, tolerant, small])
        let byJob = Dictionary(uniqueKeysWithValues: plan.map { ($0.jobID, $0) })
        // The sensitive job sits on the 4-GPU server.
        XCTAssertEqual(Set(byJob[0]!.workers).isSubset(of: [0, 1, 2, 3]), true)
        // The others are beyond the window (2 GPUs) and still run: fragment filling.
        XCTAssertNotNil(byJob[1])
        XCTAssertNotNil(byJob[2])
        XCTAssertEqual(Set(plan.flatMap(\.workers)).count, plan.flatMap(\.workers).count, "no GPU used twice")
        XCTAssertEqual(hops.greedyFallbacks, 0)
        // A sensitive job beyond the window is not used to fill fragments.
        var narrow = HopsLRFPlanner(pool: p, parameters: parameters)
        for id in 0..<2 { narrow.addJob(id) }
        let first = hopsJob(0, scale: 2, speed: [10, 8], spreadRatio: 0.95, age: 1000)
        let second = hopsJob(1, scale: 2, speed: [10, 4], spreadRatio: 0.3, age: 0)
        let plan2 = try narrow.planRound(now: 1000, jobs: [first, second])
        XCTAssertEqual(plan2.map(\.jobID), [0])
    }

    func testHopsKeepsGPUsAcrossRounds() throws {
        var hops = HopsLRFPlanner(pool: pool([[[0], [1]], [[2], [3]]]))
        for id in 0..<3 { hops.addJob(id) }
        let jobs = (0..<3).map { hopsJob($0, scale: 1, speed: [2, 1], spreadRatio: 1, age: 100) }
        let first = try hops.planRound(now: 100, jobs: jobs)
        XCTAssertEqual(first.count, 3)
        let second = try hops.planRound(now: 460, jobs: jobs)
        XCTAssertTrue(second.allSatisfy(\.keepsPreviousWorkers))
    }
}

/// SplitMix64, for seeded random test inputs.
struct SystemRandomNumberGeneratorSeeded: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Bourse's latency-ratio knob.
final class BourseLatencyRatioKnobTests: XCTestCase {
    func testTheKnobRaisesThePriceOfJobsThatWaitedInProportionToTheirLength() {
        let pool = WorkerPool(types: ["v100"], servers: [[[0], [1]]])
        var parameters = BourseRoundPlanner.Parameters()
        let off = BourseRoundPlanner(pool: pool, parameters: parameters)
        parameters.latencyRatioWeight = 2
        let on = BourseRoundPlanner(pool: pool, parameters: parameters)
        // 1000 units of work at speed 1: alone it takes 1000 s.
        func job(age: Double, remaining: Double) -> PolicyJob {
            PolicyJob(id: 0, scaleFactor: 1, throughputs: [1], stepsRemaining: remaining, timeSinceArrival: age)
        }
        let waited = job(age: 1000, remaining: 1000)  // waited 1000 s: LR = 1
        let ran = job(age: 1000, remaining: 0.0001)  // ran the whole time: LR = 0
        for j in [waited, ran] {
            let base = off.agingFactor(j, totalWork: 1000, bestSpeed: 1, activeJobs: 2)
            let lr = max(0, j.timeSinceArrival - (1000 - j.stepsRemaining)) / 1000
            XCTAssertEqual(on.agingFactor(j, totalWork: 1000, bestSpeed: 1, activeJobs: 2), base * pow(1 + lr, 2), accuracy: 1e-9)
        }
        XCTAssertEqual(
            on.agingFactor(waited, totalWork: 1000, bestSpeed: 1, activeJobs: 2)
                / off.agingFactor(waited, totalWork: 1000, bestSpeed: 1, activeJobs: 2), 4, accuracy: 1e-9)
        XCTAssertEqual(
            on.agingFactor(ran, totalWork: 1000, bestSpeed: 1, activeJobs: 2),
            off.agingFactor(ran, totalWork: 1000, bestSpeed: 1, activeJobs: 2), accuracy: 1e-5)
    }
}
