import BourseLP
import XCTest

@testable import BoursePolicy

final class GavelPolicyTests: XCTestCase {
    private func job(_ id: Int, _ throughputs: [Double], scale: Int = 1, remaining: Double = 1000, age: Double = 0)
        -> PolicyJob
    {
        PolicyJob(id: id, scaleFactor: scale, throughputs: throughputs, stepsRemaining: remaining, timeSinceArrival: age)
    }

    /// Gavel's base constraints hold.
    private func assertFeasible(_ a: Allocation, _ s: PolicySnapshot, file: StaticString = #filePath, line: UInt = #line) {
        for job in s.jobs {
            let row = a.fractions[job.id] ?? []
            XCTAssertLessThanOrEqual(row.reduce(0, +), 1 + 1e-6, "job \(job.id)", file: file, line: line)
            XCTAssertTrue(row.allSatisfy { $0 >= 0 }, file: file, line: line)
        }
        for t in s.workerTypes.indices {
            let used = s.jobs.map { (a.fractions[$0.id]?[t] ?? 0) * Double($0.scaleFactor) }.reduce(0, +)
            XCTAssertLessThanOrEqual(used, Double(s.capacity[t]) + 1e-6, "type \(s.workerTypes[t])", file: file, line: line)
        }
    }

    func testFIFOFastestTypeInArrivalOrderWithoutBackfilling() throws {
        let s = PolicySnapshot(
            workerTypes: ["v100", "p100", "k80"], capacity: [1, 1, 2],
            jobs: [
                job(0, [4, 2, 1]),  // -> v100
                job(1, [4, 2, 1]),  // v100 full -> p100
                job(2, [4, 2, 1], scale: 2),  // only k80 has 2 free -> k80
                job(3, [4, 2, 1]),  // nothing left
            ])
        var fifo = FIFOPolicy()
        let a = try fifo.allocate(s)
        XCTAssertEqual(a.fractions[0], [1, 0, 0])
        XCTAssertEqual(a.fractions[1], [0, 1, 0])
        XCTAssertEqual(a.fractions[2], [0, 0, 1])
        XCTAssertEqual(a.fractions[3], [0, 0, 0])
        // A 4-GPU job at the head of the queue blocks the jobs behind it.
        let blocked = PolicySnapshot(
            workerTypes: ["v100"], capacity: [2], jobs: [job(0, [1], scale: 4), job(1, [1])])
        XCTAssertEqual(try fifo.allocate(blocked).fractions[1], [0])
    }

    func testMaxMinSplitsEquallyAndCountsGPUsNotTime() throws {
        for method in [LPMethod.interiorPoint, .simplex] {
            var las = MaxMinFairnessPolicy(lpMethod: method)
            let three = PolicySnapshot(workerTypes: ["v100"], capacity: [2], jobs: [job(0, [5]), job(1, [5]), job(2, [5])])
            let a = try las.allocate(three)
            assertFeasible(a, three)
            for id in 0..<3 { XCTAssertEqual(a.fractions[id]![0], 2.0 / 3, accuracy: 1e-4) }
            // A 2-GPU job gets half the time of a 1-GPU job: equal GPU-time.
            let mixed = PolicySnapshot(workerTypes: ["v100"], capacity: [2], jobs: [job(0, [5]), job(1, [5], scale: 2)])
            let b = try las.allocate(mixed)
            assertFeasible(b, mixed)
            XCTAssertEqual(b.fractions[0]![0], 1, accuracy: 1e-4)
            XCTAssertEqual(b.fractions[1]![0], 0.5, accuracy: 1e-4)
        }
    }

    func testMaxMinIsHeterogeneityAware() throws {
        // Job 0 is 3x faster on v100, job 1 equally fast anywhere: job 1 should not take the v100.
        var las = MaxMinFairnessPolicy()
        let s = PolicySnapshot(workerTypes: ["v100", "k80"], capacity: [1, 1], jobs: [job(0, [3, 1]), job(1, [1, 1])])
        let a = try las.allocate(s)
        assertFeasible(a, s)
        // Normalised throughputs (proportional share: job 0 -> 2, job 1 -> 1); min is 1, reached
        // only if job 1 runs all the time.
        XCTAssertEqual(a.effectiveThroughput(of: s.jobs[1]), 1, accuracy: 1e-3)
        XCTAssertGreaterThanOrEqual(a.effectiveThroughput(of: s.jobs[0]) / 2, 1 - 1e-3)
    }

    func testFinishTimeFairnessFavoursTheJobThatWaited() throws {
        var ftf = FinishTimeFairnessPolicy()
        let even = PolicySnapshot(workerTypes: ["v100"], capacity: [1], jobs: [job(0, [1]), job(1, [1])])
        let a = try ftf.allocate(even)
        assertFeasible(a, even)
        XCTAssertEqual(a.fractions[0]![0], 0.5, accuracy: 1e-3)
        XCTAssertEqual(a.fractions[1]![0], 0.5, accuracy: 1e-3)
        // Same work left, but job 0 has been in the system for a while: it gets more.
        var fresh = FinishTimeFairnessPolicy()
        let skewed = PolicySnapshot(
            workerTypes: ["v100"], capacity: [1], jobs: [job(0, [1], age: 1000), job(1, [1])])
        let b = try fresh.allocate(skewed)
        assertFeasible(b, skewed)
        XCTAssertGreaterThan(b.fractions[0]![0], b.fractions[1]![0] + 0.1)
    }

    func testMaxSumThroughputPicksTheBestMatching() throws {
        for method in [LPMethod.interiorPoint, .simplex] {
            var maxsum = MaxSumThroughputPolicy(lpMethod: method)
            let s = PolicySnapshot(workerTypes: ["v100", "k80"], capacity: [1, 1], jobs: [job(0, [3, 1]), job(1, [2, 2])])
            let a = try maxsum.allocate(s)
            assertFeasible(a, s)
            XCTAssertEqual(a.fractions[0]![0], 1, accuracy: 1e-4)
            XCTAssertEqual(a.fractions[1]![1], 1, accuracy: 1e-4)
        }
    }

    func testMinTotalDurationFinishesEveryJobNearTheOptimum() throws {
        var makespan = MinTotalDurationPolicy()
        // Two identical jobs, two GPUs: the optimum runs both all the time (T* = 1000 s);
        // Gavel's search stops within 5 % of it.
        let s = PolicySnapshot(
            workerTypes: ["v100"], capacity: [2], jobs: [job(0, [1], remaining: 1000), job(1, [1], remaining: 1000)])
        let a = try makespan.allocate(s)
        assertFeasible(a, s)
        for id in 0..<2 { XCTAssertGreaterThan(a.fractions[id]![0], 1 / 1.06) }
    }

    func testEmptySnapshotsAndUnrunnableJobs() throws {
        let empty = PolicySnapshot(workerTypes: ["v100"], capacity: [1], jobs: [])
        for name in PolicyCatalog.names {
            var policy = try PolicyCatalog.make(name)
            XCTAssertEqual(try policy.allocate(empty).fractions.count, 0, name)
            // A job with no throughput anywhere gets nothing, the other one still runs.
            let s = PolicySnapshot(workerTypes: ["v100"], capacity: [1], jobs: [job(0, [0]), job(1, [2])])
            let a = try policy.allocate(s)
            XCTAssertEqual(a.fractions[0]![0], 0, accuracy: 1e-9, name)
            XCTAssertGreaterThan(a.fractions[1]![0], 0.5, name)
        }
        XCTAssertThrowsError(try PolicyCatalog.make("lottery"))
    }
}
