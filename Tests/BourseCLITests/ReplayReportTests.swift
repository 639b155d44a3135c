import Foundation
import Testing

/// `bourse submit --trace` replays a trace on the cluster clock; `bourse report` summarises it.
@Suite("trace replay and report on a live cluster", .serialized)
struct ReplayReportTests {
    // Under the whole suite's load this test failed in 2 of 3 fresh-clone runs (2026-11-22): the
    // gateway logged the last job completed, yet `bourse report` kept counting it pending for 90 s.
    // The cause was not found, and the test was kept out of CI. Since the test command runs the
    // process tests one at a time after the others, it passed 9 of 9 times here under load (six
    // alone beside six busy loops, three in the serialized CLI run beside two), so it is back in CI.
    @Test("a replayed trace completes; report gives JCTs in cluster seconds and the outcome counts")
    func replayAndReport() async throws {
        let scratch = try LiveClusterTests.Scratch(speedup: 2000)
        let up = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }

        // Four ResNet-18 jobs arriving 0, 600, 1200, 1800 s into the trace (Gavel's 10 fields).
        let steps = [4000, 3000, 5000, 2000]
        let trace = steps.enumerated().map { i, n in
            ["ResNet-18 (batch size 32)", "python3 main.py", "image_classification/cifar10", "--num_steps", "1",
             "\(n)", "1", "1", "-1.000000", "\(i * 600)"].joined(separator: "\t")
        }.joined(separator: "\n") + "\n"
        let tracePath = scratch.directory.appendingPathComponent("four.trace").path
        try trace.write(toFile: tracePath, atomically: true, encoding: .utf8)

        let replay = try runBourse(["submit", "--trace", tracePath, "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(replay.status == 0, "replay: \(replay.stdout) \(replay.stderr)")
        #expect(replay.stdout.split(separator: "\n").filter { $0.contains("j-0000") }.count == 4, "\(replay.stdout)")

        var report: [String: Any] = [:]
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let result = try runBourse(["report", "--json", "--run-dir", scratch.runDir], timeout: .seconds(20))
            #expect(result.status == 0, "report: \(result.stderr)")
            report = (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]) ?? [:]
            if report["completed"] as? Int == 4 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(report["completed"] as? Int == 4, "\(report)\n\(scratch.logs())")
        #expect(report["pending"] as? Int == 0)
        #expect(report["policy"] as? String == "bourse")  // the default
        for key in ["avg_jct_s", "median_jct_s", "p95_jct_s", "p99_jct_s", "makespan_s", "restarts", "utilization", "ftf_max"] {
            #expect(report.keys.contains(key), "missing \(key)")
        }
        // The shortest job runs 2000 steps at ~30 steps/s on a V100 (~67 s) plus a 30 s restart:
        // on the cluster clock its JCT is at least that; wall-clock stamps at 2000x would be ~0.05 s.
        let median = report["median_jct_s"] as? Double ?? 0
        #expect(median > 60, "median JCT \(median) s")
        // The last job arrives 1800 s in, so the makespan spans at least that.
        #expect((report["makespan_s"] as? Double ?? 0) > 1800, "\(report)")

        // A second replay of the same trace is deduplicated by the idempotency keys.
        let again = try runBourse(["submit", "--trace", tracePath, "--run-dir", scratch.runDir, "--speedup", "100000"], timeout: .seconds(30))
        #expect(again.status == 0, "\(again.stderr)")
        let jobs = try runBourse(["jobs", "--json", "--run-dir", scratch.runDir], timeout: .seconds(20))
        let list = try JSONSerialization.jsonObject(with: Data(jobs.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 4, "\(jobs.stdout)")
    }
}
