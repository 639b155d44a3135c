import BourseLP
import XCTest

@testable import BoursePolicy

/// SplitMix64, local to the tests (seeded, reproducible).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextUnitDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func nextInt(below n: Int) -> Int { Int(next() % UInt64(n)) }
}

final class PriceAuctionTests: XCTestCase {
    /// Random instance: `jobs` jobs, `groups` groups; each job has 1-3 options.
    private func instance(_ rng: inout TestRandom, jobs: Int, groups: Int, unit: Bool) -> MatchingProblem {
        let capacity = (0..<groups).map { _ in 1 + rng.nextInt(below: unit ? 3 : 6) }
        var demands: [[MatchingOption]] = []
        for _ in 0..<jobs {
            let n = 1 + rng.nextInt(below: 3)
            demands.append(
                (0..<n).map { _ in
                    MatchingOption(
                        group: rng.nextInt(below: groups), units: unit ? 1 : [1, 1, 2, 4][rng.nextInt(below: 4)],
                        value: (rng.nextUnitDouble() * 100).rounded() / 10 + 0.1)
                })
        }
        return MatchingProblem(capacity: capacity, demands: demands)
    }

    /// The LP relaxation of the assignment (x in [0, 1] per option, one option per job, group
    /// capacities), solved by GLPK.
    private func lpOptimum(_ p: MatchingProblem) throws -> Double {
        var lp = LinearProgram(.maximize)
        var columns: [[Int]] = []
        for options in p.demands {
            columns.append(options.map { lp.addColumn(.between(0, 1), objective: $0.value) })
        }
        for cols in columns where !cols.isEmpty { _ = lp.addRow(cols.map { LPTerm($0, 1) }, .atMost(1)) }
        for g in p.capacity.indices {
            var terms: [LPTerm] = []
            for (j, options) in p.demands.enumerated() {
                for (k, o) in options.enumerated() where o.group == g { terms.append(LPTerm(columns[j][k], Double(o.units))) }
            }
            if !terms.isEmpty { _ = lp.addRow(terms, .atMost(Double(p.capacity[g]))) }
        }
        return try lp.solve(method: .simplex).objective
    }

    /// Unit demands: the auction is an assignment algorithm; it matches the exhaustive optimum
    /// and GLPK's LP optimum (the assignment LP is integral) within jobs * epsilon.
    func testUnitDemandsAreOptimal() throws {
        var rng = TestRandom(seed: 11)
        for trial in 0..<200 {
            let p = instance(&rng, jobs: 1 + rng.nextInt(below: 7), groups: 1 + rng.nextInt(below: 3), unit: true)
            let s = PriceAuction.solve(p)
            XCTAssertNotNil(p.value(of: s.choice), "trial \(trial): infeasible")
            let best = PriceAuction.exhaustive(p).value
            let lp = try lpOptimum(p)
            XCTAssertEqual(lp, best, accuracy: 1e-6, "trial \(trial): LP of the assignment is integral")
            XCTAssertEqual(s.value, best, accuracy: 1e-6, "trial \(trial)")
            XCTAssertGreaterThanOrEqual(s.dualBound, lp - 1e-6, "trial \(trial): weak duality")
        }
    }

    /// Multi-GPU options: always feasible, never above the exhaustive optimum, which is never
    /// above the LP relaxation (GLPK), which is never above the auction's dual bound; the gap to
    /// the optimum is small.
    func testMultiUnitAgainstExhaustiveAndLP() throws {
        var rng = TestRandom(seed: 7)
        var ratioSum = 0.0
        var optimalCount = 0
        let trials = 300
        for trial in 0..<trials {
            let p = instance(&rng, jobs: 2 + rng.nextInt(below: 6), groups: 1 + rng.nextInt(below: 3), unit: false)
            let s = PriceAuction.solve(p)
            let v = try XCTUnwrap(p.value(of: s.choice), "trial \(trial): infeasible")
            XCTAssertEqual(v, s.value, accuracy: 1e-9)
            let best = PriceAuction.exhaustive(p).value
            let lp = try lpOptimum(p)
            XCTAssertLessThanOrEqual(s.value, best + 1e-9, "trial \(trial)")
            XCTAssertLessThanOrEqual(best, lp + 1e-6, "trial \(trial)")
            XCTAssertLessThanOrEqual(lp, s.dualBound + 1e-6, "trial \(trial)")
            // LP rounding bound: a basic LP optimum has at most one fractional job per capacity
            // row, so the integer optimum is within groups * max value of the LP.
            let maxValue = p.demands.flatMap { $0.map(\.value) }.max() ?? 0
            XCTAssertGreaterThanOrEqual(s.value, lp - Double(p.capacity.count) * maxValue - 1e-6, "trial \(trial)")
            if best > 0 { ratioSum += s.value / best }
            if abs(s.value - best) < 1e-9 { optimalCount += 1 }
        }
        let meanRatio = ratioSum / Double(trials)
        XCTAssertGreaterThan(meanRatio, 0.97, "mean value / optimum")
        XCTAssertGreaterThan(optimalCount, trials * 3 / 4, "optimal in most instances")
        print("multi-unit auction: mean value/optimum \(meanRatio), optimal in \(optimalCount)/\(trials)")
    }

    /// Planner-sized problems (40-120 elastic jobs, 3 GPU types on 8-GPU servers, options of 1-8
    /// GPUs, values from the price function): the auction reaches at least 99 % of GLPK's LP
    /// relaxation optimum (an upper bound on the best schedule) and never exceeds it.
    func testPlannerProblemsAgainstLPRelaxation() throws {
        var rng = TestRandom(seed: 3)
        for trial in 0..<6 {
            let servers = 2 + rng.nextInt(below: 4)
            var next = 0
            var pool: [[[Int]]] = []
            for _ in 0..<3 {
                pool.append(
                    (0..<servers).map { _ in
                        defer { next += 8 }
                        return Array(next..<(next + 8))
                    })
            }
            var planner = BourseRoundPlanner(pool: WorkerPool(types: ["v100", "p100", "k80"], servers: pool))
            let n = 40 + rng.nextInt(below: 81)
            var jobs: [PolicyJob] = []
            for id in 0..<n {
                let base = [1.0, 0.6, 0.3].map { $0 * (0.5 + rng.nextUnitDouble()) }
                let efficiency = 0.6 + 0.4 * rng.nextUnitDouble()
                let options = [1, 2, 4, 8].map { w in
                    let gain = Double(w) * pow(efficiency, log2(Double(w)))
                    return ElasticOption(workers: w, packed: base.map { $0 * gain }, spread: base.map { $0 * gain * 0.7 })
                }
                let total = 1000 + 20_000 * rng.nextUnitDouble()
                jobs.append(
                    PolicyJob(
                        id: id, scaleFactor: 1, throughputs: base, stepsRemaining: total * (0.1 + 0.9 * rng.nextUnitDouble()),
                        timeSinceArrival: 20_000 * rng.nextUnitDouble(), elastic: ElasticProfile(totalWork: total, options: options)))
                planner.addJob(id)
            }
            let (problem, _, _) = planner.matchingProblem(jobs: jobs)
            let s = PriceAuction.solve(problem)
            XCTAssertNotNil(problem.value(of: s.choice), "trial \(trial): infeasible")
            let lp = try lpOptimum(problem)
            XCTAssertLessThanOrEqual(s.value, lp + 1e-6 * lp, "trial \(trial)")
            XCTAssertGreaterThanOrEqual(s.value, 0.99 * lp, "trial \(trial): \(s.value) vs LP \(lp)")
            XCTAssertLessThanOrEqual(lp, s.dualBound * (1 + 1e-6), "trial \(trial)")
            print("planner problem \(n) jobs, \(problem.capacity.reduce(0, +)) GPUs: auction / LP = \(s.value / lp)")
        }
    }

    /// Prices clear the market: over-demanded groups get a positive price, and no job with a
    /// positive surplus at those prices is left idle while its GPUs are free.
    func testPricesRiseOnlyOnScarceGroups() {
        // Group 0: 1 GPU wanted by three jobs; group 1: plenty.
        let p = MatchingProblem(
            capacity: [1, 10],
            demands: [
                [MatchingOption(group: 0, units: 1, value: 5), MatchingOption(group: 1, units: 1, value: 1)],
                [MatchingOption(group: 0, units: 1, value: 4), MatchingOption(group: 1, units: 1, value: 1)],
                [MatchingOption(group: 0, units: 1, value: 3)],
            ])
        let s = PriceAuction.solve(p)
        XCTAssertEqual(s.choice[0], 0)
        XCTAssertEqual(s.choice[1], 1)
        XCTAssertNil(s.choice[2])
        XCTAssertGreaterThan(s.prices[0], 2.9)
        XCTAssertLessThan(s.prices[0], 4.1)
        XCTAssertEqual(s.prices[1], 0)
        XCTAssertEqual(s.value, 6, accuracy: 1e-9)
    }
}

final class BourseRoundPlannerTests: XCTestCase {
    /// A pool: per type, `servers` servers of `perServer` GPUs.
    private func pool(_ spec: [(String, Int, Int)]) -> WorkerPool {
        var next = 0
        var servers: [[[Int]]] = []
        for (_, count, per) in spec {
            var list: [[Int]] = []
            for _ in 0..<count {
                list.append(Array(next..<(next + per)))
                next += per
            }
            servers.append(list)
        }
        return WorkerPool(types: spec.map(\.0), servers: servers)
    }

    /// A data-parallel job: speeds (work units/s) for 1, 2, 4 workers on each type.
    private func job(
        _ id: Int, remaining: Double, age: Double = 0, speeds: [Int: [Double]], total: Double? = nil
    ) -> PolicyJob {
        let options = speeds.keys.sorted().map { ElasticOption(workers: $0, packed: speeds[$0]!, spread: speeds[$0]!) }
        let first = speeds.keys.min()!
        return PolicyJob(
            id: id, scaleFactor: first, throughputs: speeds[first]!, stepsRemaining: remaining, timeSinceArrival: age,
            elastic: ElasticProfile(totalWork: total ?? remaining, options: options))
    }

    /// Restart cost: a job running on one type stays there although another is 5 % faster,
    /// because the move would lose 30 s of a 360 s round; without a restart cost it moves.
    func testRestartCostDiscouragesNeedlessMoves() throws {
        let p = pool([("a", 1, 1), ("b", 1, 1)])
        var parameters = BourseRoundPlanner.Parameters()
        parameters.restartSeconds = 30
        var planner = BourseRoundPlanner(pool: p, parameters: parameters)
        planner.addJob(0)
        // Round 1: only type a can run it (b has speed 0 at first, e.g. busy elsewhere).
        let first = try planner.planRound(now: 0, jobs: [job(0, remaining: 1e6, speeds: [1: [1.0, 0]])])
        XCTAssertEqual(first.map(\.typeIndex), [0])
        // Round 2: b is 5 % faster, but the move costs 30 s of 360.
        let second = try planner.planRound(now: 360, jobs: [job(0, remaining: 1e6, speeds: [1: [1.0, 1.05]])])
        XCTAssertEqual(second.map(\.typeIndex), [0])
        XCTAssertTrue(second[0].keepsPreviousWorkers)
        // Much faster (30 %): worth the restart.
        let third = try planner.planRound(now: 720, jobs: [job(0, remaining: 1e6, speeds: [1: [1.0, 1.3]])])
        XCTAssertEqual(third.map(\.typeIndex), [1])
        XCTAssertFalse(third[0].keepsPreviousWorkers)

        // Without a restart cost the 5 % gain is taken.
        parameters.restartSeconds = 0
        var free = BourseRoundPlanner(pool: p, parameters: parameters)
        free.addJob(0)
        _ = try free.planRound(now: 0, jobs: [job(0, remaining: 1e6, speeds: [1: [1.0, 0]])])
        let moved = try free.planRound(now: 360, jobs: [job(0, remaining: 1e6, speeds: [1: [1.0, 1.05]])])
        XCTAssertEqual(moved.map(\.typeIndex), [1])
    }

    /// Aging: one GPU, a long job against a stream of fresh short jobs. Shortest-remaining-first
    /// alone would starve it; the aging factor eventually puts it on the GPU.
    func testAgingEventuallySchedulesAStarvedJob() throws {
        let p = pool([("v100", 1, 1)])
        var planner = BourseRoundPlanner(pool: p)
        let long = 0
        planner.addJob(long)
        var nextShort = 1
        var ranLongAt: Int? = nil
        for round in 0..<3000 {
            planner.addJob(nextShort)
            let now = Double(round) * 360
            let jobs = [
                job(long, remaining: 36_000, age: now, speeds: [1: [1]], total: 36_000),
                job(nextShort, remaining: 1800, age: 0, speeds: [1: [1]]),
            ]
            let plan = try planner.planRound(now: now, jobs: jobs)
            XCTAssertEqual(plan.count, 1)
            if plan[0].jobID == long {
                ranLongAt = round
                break
            }
            planner.removeJob(nextShort)
            nextShort += 1
        }
        let at = try XCTUnwrap(ranLongAt, "the long job starved")
        XCTAssertGreaterThan(at, 0, "a fresh long job should first yield to the short one")
        // Projected FTF rho = (age + 36000 / 0.5) / 72000 = 1 + age / 72000 (alone on half the
        // GPU); the short job's is 1, so its value is 330/1800 * (1 + 1.25^8) = 1.28. The long
        // job's 330/36000 * (1 + (rho/0.8)^8) passes it once rho > 1.48: age > 34,700 s, about
        // 97 rounds.
        XCTAssertLessThan(at, 150)
        print("long job first ran in round \(at)")
    }

    /// Elastic resize: a lone data-parallel job grows to the largest useful worker count; when a
    /// second job arrives it shrinks to make room.
    func testElasticGrowAndShrink() throws {
        let p = pool([("v100", 1, 4)])  // one server of 4 GPUs
        var planner = BourseRoundPlanner(pool: p)
        let speeds: [Int: [Double]] = [1: [1], 2: [1.9], 4: [3.6]]
        planner.addJob(0)
        let alone = try planner.planRound(now: 0, jobs: [job(0, remaining: 1e6, speeds: speeds)])
        XCTAssertEqual(alone.count, 1)
        XCTAssertEqual(alone[0].workers.count, 4)
        planner.addJob(1)
        let shared = try planner.planRound(
            now: 360, jobs: [job(0, remaining: 1e6, speeds: speeds), job(1, remaining: 1e6, speeds: speeds)])
        XCTAssertEqual(shared.count, 2, "both jobs run")
        XCTAssertEqual(shared.map(\.workers.count).reduce(0, +), 4)
        XCTAssertEqual(Set(shared.flatMap(\.workers)).count, 4, "no GPU twice")
    }

    /// Placement: a 4-worker job is packed on one 4-GPU server when one is free, and a job
    /// keeping its configuration keeps its GPUs.
    func testPackedPlacementAndKeepingGPUs() throws {
        let p = pool([("v100", 3, 4)])
        var planner = BourseRoundPlanner(pool: p)
        let fixed4: [Int: [Double]] = [4: [4]]
        let fixed1: [Int: [Double]] = [1: [1]]
        planner.addJob(0)
        planner.addJob(1)
        let jobs = [job(0, remaining: 1e5, speeds: fixed1), job(1, remaining: 1e5, speeds: fixed4)]
        let a = try planner.planRound(now: 0, jobs: jobs)
        let four = try XCTUnwrap(a.first { $0.jobID == 1 })
        XCTAssertEqual(Set(four.workers.map { $0 / 4 }).count, 1, "packed on one server")
        let b = try planner.planRound(now: 360, jobs: jobs)
        XCTAssertEqual(a, b.map { RoundAssignment(jobID: $0.jobID, typeIndex: $0.typeIndex, workers: $0.workers, keepsPreviousWorkers: false) })
        XCTAssertTrue(b.allSatisfy(\.keepsPreviousWorkers))
    }

    /// Pruning: an option with more GPUs and no more value on the same group is dropped.
    func testDominatedOptionsArePruned() {
        let p = pool([("v100", 1, 8)])
        var planner = BourseRoundPlanner(pool: p)
        planner.addJob(0)
        // 8 workers no faster than 4.
        let j = job(0, remaining: 1e6, speeds: [1: [1], 4: [3], 8: [2.9]])
        let (problem, workers, pruned) = planner.matchingProblem(jobs: [j])
        XCTAssertEqual(workers[0], [1, 4])
        XCTAssertEqual(problem.demands[0].count, 2)
        XCTAssertEqual(pruned, 1)
    }
}
