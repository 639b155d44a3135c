import BoursePolicy
import XCTest

/// Tenant weights reach Gavel's LP policies through `PolicyJob.priorityWeight`.
final class WeightedGavelTests: XCTestCase {
    private func snapshot(weights: [Double]) -> PolicySnapshot {
        let jobs = weights.enumerated().map { i, w in
            PolicyJob(
                id: i, scaleFactor: 1, priorityWeight: w, throughputs: [2, 1], stepsRemaining: 10_000,
                timeSinceArrival: 100)
        }
        return PolicySnapshot(workerTypes: ["v100", "k80"], capacity: [1, 1], jobs: jobs)
    }

    private func throughputs(_ policy: inout some AllocationPolicy, _ s: PolicySnapshot) throws -> [Double] {
        let allocation = try policy.allocate(s)
        return s.jobs.map { allocation.effectiveThroughput(of: $0) }
    }

    func testMaxSumFavoursTheHeavierJob() throws {
        var policy = MaxSumThroughputPolicy(lpMethod: .simplex)
        let even = try throughputs(&policy, snapshot(weights: [1, 1]))
        let skewed = try throughputs(&policy, snapshot(weights: [1, 3]))
        XCTAssertEqual(even.reduce(0, +), 3, accuracy: 1e-6)
        XCTAssertGreaterThan(skewed[1], skewed[0] + 0.5, "the weight-3 job should get the fast GPU: \(skewed)")
    }

    func testFinishTimeFairnessGivesTheHeavierJobMore() throws {
        var even = FinishTimeFairnessPolicy(lpMethod: .simplex)
        var skewed = FinishTimeFairnessPolicy(lpMethod: .simplex)
        let a = try throughputs(&even, snapshot(weights: [1, 1]))
        let b = try throughputs(&skewed, snapshot(weights: [1, 2]))
        XCTAssertEqual(a[0], a[1], accuracy: 1e-3, "equal weights, equal jobs: equal throughput \(a)")
        XCTAssertGreaterThan(b[1], b[0] * 1.2, "the weight-2 job should be served faster: \(b)")
    }
}
