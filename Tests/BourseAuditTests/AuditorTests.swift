import BourseAudit
import BourseTransport
import Foundation
import XCTest

final class AuditorTests: XCTestCase {
    private func ev(_ t: Double, _ proc: String, _ ev: String, job: String? = nil, gpus: [String]? = nil, steps: Double? = nil,
                    checkpoint: Double? = nil, lease: String? = nil) -> AuditEvent {
        AuditEvent(t: t, wall: 0, proc: proc, ev: ev, job: job, gpus: gpus, steps: steps, checkpoint: checkpoint, lease: lease,
                   owner: lease == nil ? nil : "shard-r0", buyer: lease == nil ? nil : "shard-r1")
    }

    private var cleanEvents: [AuditEvent] {
        [
            ev(0, "agent-r0", "process_start"),
            ev(10, "agent-r0", "worker_start", job: "j-000001", gpus: ["g0", "g1"], steps: 0),
            ev(50, "agent-r0", "checkpoint", job: "j-000001", checkpoint: 400),
            ev(60, "agent-r0", "worker_stop", job: "j-000001", gpus: ["g0", "g1"], steps: 500, checkpoint: 500),
            ev(60, "agent-r0", "worker_start", job: "j-000002", gpus: ["g0"], steps: 0),
            ev(70, "agent-r0", "worker_start", job: "j-000001", gpus: ["g1"], steps: 500),
            ev(80, "shard-r0", "lease_granted", job: "j-000002", gpus: ["g2"], lease: "L1"),
            ev(90, "shard-r0", "lease_ended", job: "j-000002", gpus: ["g2"], lease: "L1"),
            ev(100, "agent-r0", "worker_stop", job: "j-000001", gpus: ["g1"], steps: 1000, checkpoint: 1000),
            ev(100, "agent-r0", "worker_stop", job: "j-000002", gpus: ["g0"], steps: 10, checkpoint: 10),
        ]
    }

    private var cleanJobs: [AuditJob] {
        [
            AuditJob(id: "j-000001", state: "completed", terminalTransitions: 1),
            AuditJob(id: "j-000002", state: "cancelled", terminalTransitions: 1),
        ]
    }

    func testCleanLogPasses() {
        let report = Auditor().audit(events: cleanEvents, jobs: cleanJobs, acknowledged: ["j-000001", "j-000002"])
        XCTAssertTrue(report.passed, "\(report.violations)")
        XCTAssertEqual(report.invariants.map(\.name), ["gpu_exclusive", "job_ends_once", "progress_kept", "leases_end", "acknowledged_present"])
        XCTAssertEqual(report.invariants.first { $0.name == "gpu_exclusive" }?.checked, 3)
        XCTAssertEqual(report.invariants.first { $0.name == "leases_end" }?.checked, 1)
    }

    func testDoubleBookedGPUIsNamed() {
        var events = cleanEvents
        events.append(ev(75, "agent-r0", "worker_start", job: "j-000003", gpus: ["g1"], steps: 0))
        let report = Auditor().audit(events: events, jobs: cleanJobs, acknowledged: [])
        XCTAssertEqual(report.violations.count, 1)
        let v = report.violations[0]
        XCTAssertEqual(v.invariant, "gpu_exclusive")
        XCTAssertEqual(v.job, "j-000003")
        XCTAssertEqual(v.gpu, "g1")
        XCTAssertEqual(v.time, 75)
        XCTAssertTrue(v.detail.contains("j-000001"), v.detail)
    }

    func testAgentRestartEndsItsWorkers() {
        var events = cleanEvents.filter { $0.t < 100 }
        events.append(ev(95, "agent-r0", "process_start"))
        events.append(ev(96, "agent-r0", "worker_start", job: "j-000003", gpus: ["g1"], steps: 0))
        let report = Auditor().audit(events: events, jobs: cleanJobs, acknowledged: [])
        XCTAssertFalse(report.violations.contains { $0.invariant == "gpu_exclusive" }, "\(report.violations)")
    }

    func testUnfinishedAndTwiceFinishedJobs() {
        let jobs = [
            AuditJob(id: "j-000001", state: "running", terminalTransitions: 0),
            AuditJob(id: "j-000002", state: "completed", terminalTransitions: 2),
            AuditJob(id: "j-000003", state: "failed", reason: "", terminalTransitions: 1),
        ]
        let report = Auditor().audit(events: cleanEvents, jobs: jobs, acknowledged: [])
        let found = report.violations.filter { $0.invariant == "job_ends_once" }
        XCTAssertEqual(found.map(\.job), ["j-000001", "j-000002", "j-000003"])
        XCTAssertTrue(found[0].detail.contains("running"))
        XCTAssertTrue(found[1].detail.contains("2 times"))
        XCTAssertTrue(found[2].detail.contains("reason"))
    }

    func testProgressBelowCheckpointIsNamed() {
        var events = cleanEvents
        events.insert(ev(65, "agent-r1", "worker_start", job: "j-000001", gpus: ["h0"], steps: 300), at: 5)
        let report = Auditor().audit(events: events, jobs: cleanJobs, acknowledged: [])
        let v = report.violations.first { $0.invariant == "progress_kept" }
        XCTAssertEqual(v?.job, "j-000001")
        XCTAssertEqual(v?.gpu, "h0")
        XCTAssertEqual(v?.time, 65)
        XCTAssertEqual(report.violations.count, 1)
    }

    /// An agent that finds a newer shared checkpoint during the restart delay restarts the worker
    /// from it on the same GPUs: the first start never computed from its steps.
    func testStartRaisedBeforeItComputesIsJudgedByTheRaise() {
        func events(raiseAt: Double) -> [AuditEvent] {
            var list = cleanEvents.filter { $0.job != "j-000001" || $0.t <= 60 }
            var first = ev(65, "agent-r1", "worker_start", job: "j-000001", gpus: ["h0"], steps: 0)
            first.resumeAt = 95
            list.append(first)
            list.append(ev(raiseAt, "agent-r1", "worker_stop", job: "j-000001", gpus: ["h0"], steps: 500, checkpoint: 500))
            list.append(ev(raiseAt, "agent-r1", "worker_start", job: "j-000001", gpus: ["h0"], steps: 500))
            return list
        }
        let raised = Auditor().audit(events: events(raiseAt: 80), jobs: cleanJobs, acknowledged: [])
        XCTAssertTrue(raised.passed, "\(raised.violations)")
        // A job spread over racks: another agent starts its other part in between (from the
        // newer checkpoint); the raise still replaces this agent's own start.
        var spread = events(raiseAt: 80)
        spread.insert(ev(70, "agent-r2", "worker_start", job: "j-000001", gpus: ["h9"], steps: 500), at: spread.count - 2)
        let spreadReport = Auditor().audit(events: spread, jobs: cleanJobs, acknowledged: [])
        XCTAssertTrue(spreadReport.passed, "\(spreadReport.violations)")
        // Raised after the worker began to compute: the first start counts.
        let late = Auditor().audit(events: events(raiseAt: 100), jobs: cleanJobs, acknowledged: [])
        XCTAssertEqual(late.violations.map(\.invariant), ["progress_kept"])
        XCTAssertEqual(late.violations.first?.time, 65)
        // The field round-trips as resume_at.
        var start = ev(1, "a", "worker_start")
        start.resumeAt = 31
        let json = String(decoding: try! JSONEncoder().encode(start), as: UTF8.self)
        XCTAssertTrue(json.contains("\"resume_at\":31"), json)
        XCTAssertEqual(try! JSONDecoder().decode(AuditEvent.self, from: Data(json.utf8)).resumeAt, 31)
    }

    func testLeaseThatNeverEnds() {
        var events = cleanEvents.filter { $0.ev != "lease_ended" }
        events.append(ev(120, "shard-r1", "lease_granted", job: "j-000002", gpus: ["g3"], lease: "L2"))
        events.append(ev(130, "shard-r1", "lease_ended", job: "j-000002", gpus: ["g3"], lease: "L2"))
        let report = Auditor().audit(events: events, jobs: cleanJobs, acknowledged: [])
        XCTAssertEqual(report.violations.map(\.invariant), ["leases_end"])
        XCTAssertEqual(report.violations[0].job, "j-000002")
        XCTAssertEqual(report.violations[0].gpu, "g2")
        XCTAssertTrue(report.violations[0].detail.contains("L1"))
        // Its owner (shard-r0 in these events) restarting ends it, and so does its rack's adoption.
        var restarted = events
        restarted.append(ev(140, "shard-r0", "process_start"))
        XCTAssertTrue(Auditor().audit(events: restarted, jobs: cleanJobs, acknowledged: []).passed)
        var adopted = events
        adopted.append(AuditEvent(t: 140, wall: 0, proc: "shard-r1", ev: "rack_adopted", reason: "rack r0 adopted by shard-r1", owner: "shard-r0"))
        XCTAssertTrue(Auditor().audit(events: adopted, jobs: cleanJobs, acknowledged: []).passed)
        // Another shard's adoption does not.
        adopted[adopted.count - 1].owner = "shard-r2"
        XCTAssertFalse(Auditor().audit(events: adopted, jobs: cleanJobs, acknowledged: []).passed)
    }

    func testAcknowledgedJobMissing() {
        let report = Auditor().audit(events: cleanEvents, jobs: cleanJobs, acknowledged: ["j-000001", "j-000009"])
        XCTAssertEqual(report.violations.map(\.invariant), ["acknowledged_present"])
        XCTAssertEqual(report.violations[0].job, "j-000009")
    }

    func testLogRoundTripSkipsTornLine() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("audit-\(getpid())-\(UUID()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let log = try AuditLog(path: path, process: "agent-r0", clock: { 42 })
        log.record("process_start")
        log.record(AuditEvent(t: -1, proc: "x", ev: "worker_start", job: "j-1", gpus: ["g0"], steps: 3))
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"t\":1,\"pro".utf8))
        try handle.close()
        let (events, skipped) = try AuditLog.read(path: path)
        XCTAssertEqual(skipped, 1)
        XCTAssertEqual(events.map(\.ev), ["process_start", "worker_start"])
        XCTAssertEqual(events[1].proc, "agent-r0")
        XCTAssertEqual(events[1].t, 42)
        XCTAssertEqual(events[1].gpus, ["g0"])
    }
}

final class ScenarioTests: XCTestCase {
    func testParsesTimeline() throws {
        let s = try Scenario.parse(
            """
            name: x
            config: ../demo.yaml
            trace: t.trace
            speedup: 600
            timeline:
              - {at: 100, fault: kill-shard, shard: shard-r0}
              - {at: "+5", fault: restart-shard, shard: shard-r0}
              - {at: 200, fault: drop, fraction: 0.1, from: [shard-r0], to: agent-r0}
              - {at: 300, fault: partition, racks: [r1]}
            """, file: "/a/b/s.yaml")
        XCTAssertEqual(s.config, "/a/demo.yaml")
        XCTAssertEqual(s.trace, "/a/b/t.trace")
        XCTAssertEqual(s.timeline.count, 4)
        XCTAssertEqual(s.timeline[1].at, .afterPrevious(5))
        XCTAssertEqual(s.timeline[2].to, ["agent-r0"])
        XCTAssertEqual(s.timeline[3].racks, ["r1"])
    }

    func testErrorsNameLineAndField() {
        let text = """
            config: c.yaml
            trace: t.trace
            timeline:
              - {at: 100, fault: kill-shard, shard: shard-r0}
              - {at: 200, fault: explode}
            """
        XCTAssertThrowsError(try Scenario.parse(text, file: "s.yaml")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("s.yaml:5"), message)
            XCTAssertTrue(message.contains("timeline[1].fault"), message)
            XCTAssertTrue(message.contains("explode"), message)
        }
        XCTAssertThrowsError(try Scenario.parse("config: c\ntrace: t\ntimeline:\n  - {at: 1, fault: drop}\n", file: "s.yaml")) { error in
            XCTAssertTrue("\(error)".contains("timeline[0].fraction"), "\(error)")
        }
        XCTAssertThrowsError(try Scenario.parse("trace: t\n", file: "s.yaml")) { error in
            XCTAssertTrue("\(error)".contains("config: missing"), "\(error)")
        }
    }
}

final class FaultPlanTests: XCTestCase {
    func testPartitionCutsGroups() {
        let plan = FaultPlan(partition: [["shard-r0", "agent-r0"]])
        XCTAssertTrue(plan.cut("shard-r0", "shard-r1"))
        XCTAssertTrue(plan.cut("gateway", "agent-r0"))
        XCTAssertFalse(plan.cut("shard-r0", "agent-r0"))
        XCTAssertFalse(plan.cut("shard-r1", "gateway"))
    }

    func testRulesMatchDirection() {
        let plan = FaultPlan(rules: [.init(from: ["shard-r0"], to: ["*"], drop: 0.5, delay: 1, delay_ms: 20, duplicate: 0.2)])
        let f = plan.fate(from: "shard-r0", to: "agent-r0", draws: (0.4, 0.9, 0.1))
        XCTAssertTrue(f.drop)
        XCTAssertEqual(f.delay, .milliseconds(20))
        XCTAssertTrue(f.duplicate)
        XCTAssertTrue(plan.fate(from: "agent-r0", to: "shard-r0", draws: (0, 0, 0)).isClean)
        XCTAssertFalse(plan.fate(from: "shard-r0", to: "x", draws: (0.6, 0.5, 0.3)).drop)
    }
}

/// The fault layer on a real request/reply pair (XCTest: runs alone, so the process-wide plan
/// cannot disturb other tests).
final class FaultInjectionTests: XCTestCase {
    override func tearDown() { FaultInjection.install(nil) }

    func testDropCostsTheTimeoutAndCleanRequestsPass() async throws {
        let url = "inproc://fault-\(UUID().uuidString)"
        let server = try ReplyServer(listening: url)
        defer { server.close() }
        let serving = Task { try? await server.serve(concurrency: 2) { $0 } }
        defer { serving.cancel() }
        let client = try RequestClient(dialing: url)
        defer { client.close() }

        XCTAssertFalse(FaultInjection.isActive)
        let echoed = try await client.request([1, 2, 3], timeout: .seconds(2))
        XCTAssertEqual(echoed, [1, 2, 3])

        FaultInjection.install(FaultPlan(seed: 3, addresses: [url: "peer"], rules: [.init(from: ["*"], to: ["peer"], drop: 1)]))
        XCTAssertTrue(FaultInjection.isActive)
        let start = ContinuousClock.now
        do {
            _ = try await client.request([4], timeout: .milliseconds(200))
            XCTFail("a dropped request must time out")
        } catch {
            XCTAssertTrue(error.isTimeout, "\(error)")
        }
        XCTAssertGreaterThanOrEqual(ContinuousClock.now - start, .milliseconds(190))
        XCTAssertGreaterThanOrEqual(FaultInjection.injected["drop"] ?? 0, 1)

        // A partition that does not separate this process from the peer, and a rule for another pair: clean.
        FaultInjection.install(FaultPlan(seed: 3, addresses: [url: "peer"], rules: [.init(from: ["x"], to: ["peer"], drop: 1)], partition: [["peer", ""]]))
        let clean = try await client.request([5], timeout: .seconds(2))
        XCTAssertEqual(clean, [5])

        FaultInjection.install(nil)
        XCTAssertFalse(FaultInjection.isActive)
    }
}
