import Foundation
import XCTest

/// `bourse chaos run` on a tiny 3-rack cluster on fresh loopback ports (the CI subset of the chaos
/// suite): node failure and recovery plus a gateway SIGKILL/restart under a 6-job trace at
/// speed-up 600, with seeded garbage thrown at the gateway, a shard and an agent while it runs.
/// The run must pass the auditor (exit 0) and its JSON must account for every fault and job.
///
/// An XCTest, not a Swift Testing suite: XCTest cases run one at a time before the Swift Testing
/// suites, so this 7-process cluster never competes for the CPU with the timing-sensitive
/// multi-process suites (SWIM detection bounds, push/pull delivery) that run in parallel.
final class ChaosProcessTests: XCTestCase {
    final class Scratch {
        let directory: URL
        let config: String
        let runDir: String

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-chaos-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let ports = (0..<7).map { _ in freeLoopbackPort() }
            var yaml = """
                name: chaos-test
                round_seconds: 360
                speedup: 600
                restart_seconds: 30
                gpu_types:
                  - {name: v100}
                  - {name: k80}
                gateway: {address: "tcp://127.0.0.1:\(ports[0])"}
                racks:

                """
            for i in 0..<3 {
                yaml += """
                      - id: r\(i)
                        shard: "tcp://127.0.0.1:\(ports[1 + 2 * i])"
                        agent: "tcp://127.0.0.1:\(ports[2 + 2 * i])"
                        nodes:
                          - {id: r\(i)-n0, gpus: {v100: 2}}
                          - {id: r\(i)-n1, gpus: {k80: 2}}

                    """
            }
            config = directory.appendingPathComponent("cluster.yaml").path
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            runDir = directory.appendingPathComponent("run").path
        }

        func scenario(_ name: String, _ text: String) throws -> String {
            let path = directory.appendingPathComponent("\(name).yaml").path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        deinit {
            _ = try? runBourse(["down", "--run-dir", runDir], timeout: .seconds(20))
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// Node failure + gateway kill under fuzzing: the auditor passes, nothing lost or double-booked.
    func testNodeFailAndGatewayKill() async throws {
        let scratch = try Scratch()
        let trace = repoRoot.appendingPathComponent("data/traces/chaos-6.trace").path
        let scenario = try scratch.scenario(
            "ci",
            """
            name: ci
            config: \(scratch.config)
            trace: \(trace)
            policy: fifo
            checkpoint_seconds: 120
            settle_seconds: 60
            timeline:
              - {at: 900, fault: fail-node, node: r0-n0}
              - {at: 2400, fault: recover-node, node: r0-n0}
              - {at: 6000, fault: kill-gateway}
              - {at: "+2", fault: restart-gateway}
            """)
        let json = scratch.directory.appendingPathComponent("result.json").path
        let chaos = try BourseProcess(["chaos", "run", scenario, "--run-dir", scratch.runDir, "--json", json])
        let started = await chaos.waitForOutput("chaos 'ci'", timeout: .seconds(30))
        XCTAssertTrue(started, "\(chaos.stdout) \(chaos.stderr)")

        // Garbage at a live gateway, shard and agent while the scenario runs; each must still answer.
        // Once the first fault is in (the trace is submitted, the jobs have started): during the
        // start-up burst on a 2-core machine a reply could take longer than the fuzzer's 500 ms
        // (about one run in two locally). The gateway first, well before the scenario kills it.
        let running = await chaos.waitForOutput("fail-node r0-n0", timeout: .seconds(30))
        XCTAssertTrue(running, "\(chaos.stdout) \(chaos.stderr)")
        let state = URL(fileURLWithPath: scratch.runDir + "/bourse-up.json")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: state)) as? [String: Any]
        let processes = object?["processes"] as? [[String: Any]] ?? []
        for id in ["gateway", "shard-r1", "agent-r2"] {
            let address = try XCTUnwrap(processes.first { $0["id"] as? String == id }?["address"] as? String)
            let fuzz = try runBourse(["wire", "fuzz", address, "--frames", "150", "--seed", "11"], timeout: .seconds(30))
            XCTAssertTrue(fuzz.status == 0 && fuzz.stdout.contains("target still answers pings: ok"), "\(id): \(fuzz.stdout) \(fuzz.stderr)")
        }

        // A second run of a scenario on the same config's addresses is refused before it starts anything.
        let second = try runBourse(["chaos", "run", scenario, "--run-dir", scratch.runDir + "-again"], timeout: .seconds(30))
        XCTAssertTrue(second.status != 0 && second.stderr.contains("already answers"), "\(second.stdout) \(second.stderr)")

        let result = await chaos.wait(timeout: .seconds(150))
        XCTAssertTrue(result.status == 0, "chaos run: \(result.stdout)\n\(result.stderr)")
        XCTAssertTrue(result.stdout.contains("chaos 'ci': PASS"), "\(result.stdout)")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        XCTAssertTrue(report["passed"] as? Bool == true)
        XCTAssertTrue(report["jobs_acknowledged"] as? Int == 6)
        XCTAssertTrue(report["jobs_unfinished_at_end"] as? Int == 0)
        let faults = report["faults"] as? [[String: Any]] ?? []
        XCTAssertTrue(faults.map { $0["fault"] as? String ?? "" } == ["fail-node", "recover-node", "kill-gateway", "restart-gateway"])
        if faults.count == 4 { XCTAssertNotNil(faults[3]["recovery_cluster_seconds"] as? Double, "\(faults)") }
        let audit = report["audit"] as? [String: Any] ?? [:]
        let invariants = audit["invariants"] as? [[String: Any]] ?? []
        XCTAssertTrue(invariants.count == 5)
        XCTAssertTrue(invariants.allSatisfy { $0["verdict"] as? String == "pass" }, "\(invariants)")
        // The store holds the trace's 6 jobs plus any the fuzzer's mutated (still valid) submissions created.
        XCTAssertTrue((invariants.first { $0["name"] as? String == "job_ends_once" }?["checked"] as? Int ?? 0) >= 6)
        // The auditor saw the workers: starts on GPUs, and the node failure.
        let events = try String(contentsOfFile: scratch.runDir + "/audit/agent-r0.jsonl", encoding: .utf8)
        XCTAssertTrue(events.contains("\"ev\":\"worker_start\"") && events.contains("\"ev\":\"node_failed\""))

        // `bourse audit` on the stopped run gives the same verdict.
        let again = try runBourse(["audit", "--run-dir", scratch.runDir], timeout: .seconds(30))
        XCTAssertTrue(again.status == 0 && again.stdout.contains("audit: PASS"), "\(again.stdout) \(again.stderr)")
    }

    /// A bad scenario is refused naming the file, line and field.
    func testBadScenario() throws {
        let scratch = try Scratch()
        let scenario = try scratch.scenario(
            "bad",
            """
            config: \(scratch.config)
            trace: x.trace
            timeline:
              - {at: 100, fault: kill-shard, shard: shard-r0}
              - {at: 200, fault: meteor}
            """)
        let result = try runBourse(["chaos", "run", scenario, "--run-dir", scratch.runDir], timeout: .seconds(30))
        XCTAssertTrue(result.status != 0)
        XCTAssertTrue(result.stderr.contains("bad.yaml:5") && result.stderr.contains("timeline[1].fault") && result.stderr.contains("meteor"), "\(result.stderr)")
        let missing = try scratch.scenario("missing", "config: \(scratch.config)\ntrace: x.trace\ntimeline:\n  - {at: 1, fault: kill-shard, shard: shard-r9}\n")
        let second = try runBourse(["chaos", "run", missing, "--run-dir", scratch.runDir], timeout: .seconds(30))
        XCTAssertTrue(second.status != 0 && second.stderr.contains("shard-r9"), "\(second.stderr)")
    }
}
