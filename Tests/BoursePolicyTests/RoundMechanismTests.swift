import XCTest

@testable import BoursePolicy

final class RoundMechanismTests: XCTestCase {
    private func pool(_ gpus: Int) -> WorkerPool {
        WorkerPool(types: ["v100"], servers: [(0..<gpus).map { [$0] }])
    }

    private func job(_ id: Int, scale: Int = 1) -> PolicyJob {
        PolicyJob(id: id, scaleFactor: scale, throughputs: [1], stepsRemaining: 1e9)
    }

    func testGavelTypeOrder() {
        XCTAssertEqual(WorkerPool.gavelTypeOrder(["k80", "a100", "v100", "p100"]), ["v100", "p100", "k80", "a100"])
    }

    /// Two jobs, one GPU, max-min fairness: they take turns round by round.
    func testJobsTakeTurns() throws {
        var m = GavelRoundMechanism(policy: MaxMinFairnessPolicy(), pool: pool(1))
        m.addJob(0)
        m.addJob(1)
        var ran = [0, 0]
        var now = 0.0
        for _ in 0..<10 {
            let plan = try m.planRound(now: now, jobs: [job(0), job(1)])
            XCTAssertEqual(plan.count, 1)
            ran[plan[0].jobID] += 1
            m.recordExecution(job: plan[0].jobID, typeIndex: 0, seconds: 360)
            now += 360
        }
        XCTAssertEqual(ran, [5, 5])
        XCTAssertEqual(m.allocationCount, 1)
    }

    /// A job that keeps running keeps its GPUs (lease extension, no restart).
    func testContinuingJobKeepsItsGPUs() throws {
        var m = GavelRoundMechanism(policy: FIFOPolicy(), pool: pool(4))
        m.addJob(0)
        m.addJob(1)
        let jobs = [job(0, scale: 2), job(1)]
        let first = try m.planRound(now: 0, jobs: jobs)
        XCTAssertEqual(first.count, 2)
        XCTAssertTrue(first.allSatisfy { !$0.keepsPreviousWorkers })
        for a in first { m.recordExecution(job: a.jobID, typeIndex: 0, seconds: 360) }
        let second = try m.planRound(now: 360, jobs: jobs)
        XCTAssertEqual(Set(second.map(\.jobID)), [0, 1])
        XCTAssertTrue(second.allSatisfy(\.keepsPreviousWorkers))
        XCTAssertEqual(second.first { $0.jobID == 0 }?.workers.count, 2)
        XCTAssertEqual(Set(second.flatMap(\.workers)).count, 3)
    }

    /// Gavel quirk, kept on purpose: a job arriving less than the reset interval after the last
    /// allocation waits for the next allocation even if a GPU is free.
    func testArrivalWaitsForTheNextAllocation() throws {
        var m = GavelRoundMechanism(policy: MaxMinFairnessPolicy(), pool: pool(2))
        m.addJob(0)
        _ = try m.planRound(now: 100, jobs: [job(0)])  // first allocation, last reset at t=100
        m.recordExecution(job: 0, typeIndex: 0, seconds: 360)
        m.addJob(1)
        var now = 460.0
        var planned = try m.planRound(now: now, jobs: [job(0), job(1)])
        XCTAssertEqual(planned.map(\.jobID), [0])
        while !planned.contains(where: { $0.jobID == 1 }) {
            for a in planned { m.recordExecution(job: a.jobID, typeIndex: 0, seconds: 360) }
            now += 360
            planned = try m.planRound(now: now, jobs: [job(0), job(1)])
        }
        // Placed at the first round at least 1920 s after the last reset.
        XCTAssertEqual(now, 460 + 5 * 360)
        XCTAssertEqual(m.allocationCount, 2)
    }

    func testMissingJobInSnapshotIsAnError() {
        var m = GavelRoundMechanism(policy: FIFOPolicy(), pool: pool(1))
        m.addJob(7)
        XCTAssertThrowsError(try m.planRound(now: 0, jobs: []))
    }
}
