import ArgumentParser
import BourseAudit
import BourseGateway
import BourseWire
import Foundation

/// `bourse audit`: the chaos auditor over a run directory.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check a run's invariants from its audit logs and the gateway's store (exit 1 on a violation).",
        discussion: """
            Reads RUN_DIR/audit/*.jsonl (what agents ran where and when, the shards' commands and \
            leases), RUN_DIR/gateway.db (jobs and their append-only transitions; the gateway must \
            be stopped: it holds the store exclusively) and RUN_DIR/acks.jsonl (job ids a client \
            was acknowledged, written by `bourse chaos run`). Invariants: gpu_exclusive, \
            job_ends_once, progress_kept, leases_end, acknowledged_present (docs/chaos.md). \
            Each violation names the job, GPU and cluster time.

            Example:
              bourse audit --run-dir run/chaos-shard-kill --json audit.json
            """)

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory (default: the last `bourse up`).", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("Also write the verdicts as JSON to this file.", valueName: "file"))
    var json: String?

    func run() async throws {
        let dir = try LastRun.resolve(runDir)
        let report = try AuditRun.audit(dir: dir)
        AuditRun.print(report)
        if let json { try AuditRun.write(["audit": AuditRun.fields(report)], to: json) }
        if !report.passed { throw ExitCode(1) }
    }
}

/// Loading a run directory into the auditor.
enum AuditRun {
    /// Every process's events, their times made relative to the run's epoch (cluster seconds since
    /// `bourse up` / `chaos run` started the cluster).
    static func events(dir: String) throws -> (events: [AuditEvent], skipped: Int) {
        let epoch = (try? RunState.load(runDir: dir))?.epoch ?? 0
        let auditDir = ClusterLauncher.auditDir(dir)
        let files = ((try? FileManager.default.contentsOfDirectory(atPath: auditDir)) ?? []).filter { $0.hasSuffix(".jsonl") }.sorted()
        var all: [AuditEvent] = []
        var skipped = 0
        for file in files {
            let (events, bad) = try AuditLog.read(path: URL(fileURLWithPath: auditDir).appendingPathComponent(file).path)
            all += events.map { e in
                var e = e
                e.t -= epoch
                return e
            }
            skipped += bad
        }
        return (all, skipped)
    }

    static func acknowledged(dir: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: URL(fileURLWithPath: dir).appendingPathComponent("acks.jsonl").path)
        else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    static func jobs(dir: String) throws -> [AuditJob] {
        let path = URL(fileURLWithPath: dir).appendingPathComponent("gateway.db").path
        guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no gateway.db in \(dir)") }
        let store: JobStore
        do {
            store = try JobStore(path: path)
        } catch {
            throw ValidationError("cannot open \(path)\(error.isBusy ? " (the gateway still runs: stop it first, `bourse down`)" : ""): \(error)")
        }
        defer { store.close() }
        return try store.jobs().map { job in
            let history = try store.history(jobID: job.id)
            let terminal = history.filter { AuditJob.terminalStates.contains("\($0.to)") && !AuditJob.terminalStates.contains("\($0.from)") }.count
            return AuditJob(id: job.id, state: "\(job.state)", reason: job.reason, terminalTransitions: terminal)
        }
    }

    static func audit(dir: String) throws -> AuditReport {
        let (events, _) = try events(dir: dir)
        return Auditor().audit(events: events, jobs: try jobs(dir: dir), acknowledged: acknowledged(dir: dir))
    }

    static func print(_ report: AuditReport) {
        Output.line("audit: \(report.events) events")
        for v in report.invariants {
            Output.line("  \(v.holds ? "PASS" : "FAIL")  \(v.name.padding(toLength: 22, withPad: " ", startingAt: 0)) checked \(v.checked), violations \(v.violations)")
        }
        for v in report.violations.prefix(50) { Output.line("  violation: \(v)") }
        if report.violations.count > 50 { Output.line("  ... \(report.violations.count - 50) more") }
        Output.line(report.passed ? "audit: PASS" : "audit: FAIL")
    }

    static func fields(_ report: AuditReport) -> [String: Any] {
        [
            "passed": report.passed, "events": report.events,
            "invariants": report.invariants.map {
                ["name": $0.name, "verdict": $0.holds ? "pass" : "fail", "checked": $0.checked, "violations": $0.violations] as [String: Any]
            },
            "violations": report.violations.map { v -> [String: Any] in
                ["invariant": v.invariant, "job": v.job ?? NSNull(), "gpu": v.gpu ?? NSNull(), "time": v.time ?? NSNull(), "detail": v.detail]
            },
        ]
    }

    static func write(_ object: [String: Any], to path: String) throws {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: path))
    }
}
