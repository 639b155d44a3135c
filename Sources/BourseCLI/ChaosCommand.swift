import ArgumentParser
import BourseAudit
import BourseModel
import BourseTransport
import BourseWire
import BourseWorkload
import Foundation

/// `bourse chaos`: scripted failure scenarios with an auditor.
struct Chaos: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos", abstract: "Run scripted failure scenarios on a live local cluster and audit invariants.",
        subcommands: [ChaosRun.self])
}

struct ChaosRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Bring up a cluster, replay a trace, inject a timeline of faults, audit; exit 0 only when every invariant holds.",
        discussion: """
            The scenario (YAML, docs/chaos.md) names a cluster config, a trace and a timeline of \
            faults at cluster seconds (`at: 3600`) or wall seconds after the previous entry \
            (`at: "+5"`): kill-shard/restart-shard, kill-gateway/restart-gateway, \
            kill-agent/restart-agent (SIGKILL; a restart reuses the command line), \
            fail-node/recover-node (the agent's control file), partition/heal (racks cut off from \
            the rest) and drop/delay/duplicate/clear (message faults of the transport's fault plan). \
            After the timeline it waits until every job ended (settle_seconds) and two rounds more (the last leases end), stops the \
            cluster, runs the auditor (`bourse audit`) and prints per fault its cluster time, the \
            jobs affected and the time to recover.

            Example:
              bourse chaos run cluster-configs/chaos/shard-kill.yaml --json /tmp/shard-kill.json
            """)

    @Argument(help: ArgumentHelp("Scenario (YAML).", valueName: "scenario"))
    var scenario: String

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory (default: run/chaos-<scenario name>; cleared first).", valueName: "dir"))
    var runDir: String?

    @Option(help: "Seed of the fault plan's draws and the agents' noise (default: the scenario's).")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Write the results as JSON to this file.", valueName: "file"))
    var json: String?

    @Option(name: .customLong("log-level"), help: "Log level of the started processes.")
    var logLevel: String = "info"

    func run() async throws {
        let scenario: Scenario
        do { scenario = try Scenario.load(path: self.scenario) } catch { throw ValidationError("\(error)") }
        let cluster = try SimFiles.report { try ClusterConfig.load(path: scenario.config) }
        let key = try ClusterSecurity.key(cluster.security)
        try validate(scenario, cluster)
        let table = try SimFiles.report { try ThroughputTable.load(path: try SimFiles.defaultTablePath()) }
        let jobs = try SimFiles.report { try GavelTrace.load(path: scenario.trace, table: table) }
        let seed = self.seed ?? scenario.seed
        let dir = URL(fileURLWithPath: runDir ?? "run/chaos-\(scenario.name)").standardizedFileURL.path
        if let old = try? RunState.load(runDir: dir), old.processes.contains(where: { ProcessControl.isBourse($0.pid) }) {
            throw ValidationError("a cluster is already running from \(dir) (stop it with `bourse down --run-dir \(dir)`)")
        }
        for name in ["gateway.db", "gateway.db-wal", "gateway.db-shm", "audit", "control", "acks.jsonl", "fault-plan.json"] {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: dir).appendingPathComponent(name).path)
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix("fault-plan.json.") {
            try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: dir).appendingPathComponent(name).path)
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let speed = scenario.speedup ?? cluster.speedup
        let epoch = Date().timeIntervalSince1970
        let planPath = URL(fileURLWithPath: dir).appendingPathComponent("fault-plan.json").path
        var launcher = ClusterLauncher(
            configPath: scenario.config, cluster: cluster, dir: dir, policy: scenario.policy, speedup: speed, seed: seed,
            epoch: epoch, logLevel: logLevel)
        launcher.chaos = .init(
            audit: true, faultPlan: planPath, control: true, probePeriod: scenario.probePeriod,
            checkpointSeconds: scenario.checkpointSeconds)
        var processes = try launcher.processes()
        try await ClusterLauncher.ensureAddressesFree(processes, key: key)
        for p in processes { try? FileManager.default.removeItem(atPath: p.log) }
        let injector = FaultState(seed: seed, addresses: Dictionary(processes.map { ($0.address, $0.id) }, uniquingKeysWith: { a, _ in a }))
        try injector.write(to: planPath)
        processes = try ClusterLauncher.startAll(processes)
        var state = RunState(
            config: scenario.config, cluster: cluster.name, policy: scenario.policy, epoch: epoch, speedup: speed,
            gateway: cluster.gateway.address, startedAt: ISO8601DateFormatter().string(from: Date()), processes: processes)
        try state.save(runDir: dir)
        LastRun.remember(dir)
        let clock = WallClusterClock(epoch: epoch, speedup: speed)
        Output.line("chaos '\(scenario.name)': cluster '\(cluster.name)' (\(cluster.racks.count) racks) speed-up \(speed), run dir \(dir)")
        try await ClusterLauncher.waitHealthy(processes, key: key, timeoutMs: 30000, dir: dir)
        do {
            try await drive(scenario, jobs: jobs, cluster: cluster, key: key, dir: dir, speed: speed, epoch: epoch, seed: seed, clock: clock,
                            processes: &processes, state: &state, injector: injector, planPath: planPath)
        } catch {
            ProcessControl.stop(processes.map(\.pid))
            throw error
        }
    }

    private func drive(
        _ scenario: Scenario, jobs: [TraceJob], cluster: ClusterConfig, key: ClusterKey?, dir: String, speed: Double, epoch: Double, seed: UInt64,
        clock: WallClusterClock, processes: inout [RunState.Process], state: inout RunState, injector: FaultState, planPath: String
    ) async throws {

        // Replay the trace in the background, recording every acknowledged job id.
        let acksPath = URL(fileURLWithPath: dir).appendingPathComponent("acks.jsonl").path
        _ = FileManager.default.createFile(atPath: acksPath, contents: nil)
        let traceName = URL(fileURLWithPath: scenario.trace).lastPathComponent
        let gatewayAddress = cluster.gateway.address
        let replay = Task { () -> Int in
            let acks = try? FileHandle(forWritingTo: URL(fileURLWithPath: acksPath))
            var acknowledged = 0
            for (index, job) in jobs.enumerated() {
                let due = epoch + job.arrivalTime / speed
                let wait = due - Date().timeIntervalSince1970
                if wait > 0 { try? await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
                let spec = JobSpec(
                    jobType: job.jobType, totalSteps: UInt64(job.totalSteps), workers: UInt32(job.scaleFactor),
                    minWorkers: UInt32(job.minWorkers ?? 0), maxWorkers: UInt32(job.maxWorkers ?? 0), tenant: job.tenant ?? "",
                    weight: job.priorityWeight, arrivalTime: job.arrivalTime, name: "\(traceName):\(index + 1)")
                // Retried (same idempotency key) while the gateway is down.
                while !Task.isCancelled {
                    if let reply = await LiveQuery.ask(
                        gatewayAddress, .submitJob(SubmitJob(spec: spec, idempotencyKey: "\(traceName):\(index + 1)")),
                        timeout: .seconds(2), key: key), case .submitAck(let ack) = reply.body {
                        acks?.write(Data("\(ack.jobID)\n".utf8))
                        acknowledged += 1
                        break
                    }
                    try? await Task.sleep(for: .milliseconds(300))
                }
            }
            try? acks?.close()
            return acknowledged
        }

        // The timeline.
        var records: [FaultRecord] = []
        var previousDue = epoch
        for step in scenario.timeline {
            let due: Double
            switch step.at {
            case .cluster(let t): due = epoch + t / speed
            case .afterPrevious(let s): due = previousDue + s
            }
            previousDue = max(due, Date().timeIntervalSince1970)
            let wait = due - Date().timeIntervalSince1970
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) }
            let record = try await execute(step, processes: &processes, injector: injector, planPath: planPath, dir: dir, clock: clock, key: key)
            records.append(record)
            state.processes = processes
            try state.save(runDir: dir)
            Output.line(String(format: "t=%8.0f s  %@%@", record.clusterTime, record.fault, record.target.map { " \($0)" } ?? "") + (record.note.map { "  (\($0))" } ?? ""))
        }
        // Message faults and partitions end with the timeline.
        injector.clearAll()
        try injector.write(to: planPath)

        // Wait until every job ended (bounded).
        let acknowledged = await replay.value
        let settleDeadline = Date().addingTimeInterval(scenario.settleSeconds)
        var unfinished = -1
        while Date() < settleDeadline {
            if let reply = await LiveQuery.ask(gatewayAddress, .listJobsRequest(ListJobsRequest()), timeout: .seconds(2), key: key),
               case .listJobsReply(let list) = reply.body {
                unfinished = list.jobs.filter { ![.completed, .failed, .cancelled].contains($0.state) }.count
                if unfinished == 0 && list.jobs.count >= acknowledged { break }
            }
            try await Task.sleep(for: .seconds(1))
        }
        let endCluster = clock.now - epoch
        Output.line(String(format: "t=%8.0f s  settle: %d of %d jobs not finished", endCluster, max(0, unfinished), acknowledged))
        if unfinished == 0 {
            // The last jobs' leases end at the next round boundaries (buyers give them back,
            // owners drop what is not committed): two rounds more, so `leases_end` audits a
            // cluster at rest, not one stopped mid-round (one run failed it on the last job).
            try await Task.sleep(for: .seconds(min(5, 2 * cluster.roundSeconds / speed)))
        }
        ProcessControl.stop(processes.map(\.pid))

        // Audit and report.
        let (events, skipped) = try AuditRun.events(dir: dir)
        let report = Auditor().audit(events: events, jobs: try AuditRun.jobs(dir: dir), acknowledged: AuditRun.acknowledged(dir: dir))
        records = records.map { Self.measure($0, events: events) }
        // A killed process recovers when its restart answers (unless measured otherwise, e.g. adoption).
        for (i, r) in records.enumerated() where r.recoveryClusterSeconds == nil && r.jobsNotRecovered.isEmpty && r.fault.hasPrefix("kill-") {
            let restart = "restart-" + r.fault.dropFirst("kill-".count)
            if let next = records[(i + 1)...].first(where: { $0.fault == restart && ($0.target ?? "") == (r.target ?? "") }),
               let took = next.recoveryClusterSeconds {
                records[i].recoveryClusterSeconds = next.clusterTime + took - r.clusterTime
                records[i].recoveryWhat = "restarted and answering"
            }
        }
        let faulted = Self.faultCounts(planPath: planPath, processes: processes).values.reduce(into: [String: Int]()) { sum, c in
            for (k, v) in c { sum[k, default: 0] += v }
        }
        if !faulted.isEmpty { Output.line("messages faulted: " + faulted.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
        Output.line("faults:")
        for r in records {
            let recovery = r.recoveryClusterSeconds.map { String(format: "%.0f s cluster / %.1f s wall", $0, $0 / speed) + " (\(r.recoveryWhat ?? ""))" }
                ?? (r.jobsNotRecovered.isEmpty ? "n/a" : "NOT RECOVERED (\(r.recoveryWhat ?? ""))")
            Output.line(String(format: "  t=%7.0f  %@ %@  jobs affected %d  recovery %@", r.clusterTime, r.fault, r.target ?? "", r.jobsAffected.count, recovery))
        }
        let membership = Self.membership(processes)
        Output.line(
            "membership: suspicions \(membership.suspicions), refuted \(membership.refuted), declared dead \(membership.deaths.count)"
                + (membership.deaths.isEmpty ? "" : " (\(membership.deaths.map { "\($0.observer) saw \($0.member) dead" }.joined(separator: "; ")))"))
        AuditRun.print(report)
        if skipped > 0 { Output.line("note: \(skipped) torn audit lines skipped (a process killed mid-write)") }
        if let json {
            var out: [String: Any] = [
                "scenario": scenario.name, "config": scenario.config, "trace": scenario.trace, "speedup": speed, "seed": seed,
                "run_dir": dir, "jobs_acknowledged": acknowledged, "jobs_unfinished_at_end": max(0, unfinished),
                "end_cluster_time": endCluster, "messages_faulted": Self.faultCounts(planPath: planPath, processes: processes),
            ]
            out["faults"] = records.map(\.fields)
            out["membership"] = [
                "suspicions": membership.suspicions, "refuted": membership.refuted, "suspect_to_alive": membership.suspectToAlive,
                "deaths": membership.deaths.map { ["observer": $0.observer, "member": $0.member, "log_time": $0.when] },
            ] as [String: Any]
            out["audit"] = AuditRun.fields(report)
            out["passed"] = report.passed
            try AuditRun.write(out, to: json)
        }
        Output.line(report.passed ? "chaos '\(scenario.name)': PASS" : "chaos '\(scenario.name)': FAIL")
        if !report.passed { throw ExitCode(1) }
    }

    private func validate(_ scenario: Scenario, _ cluster: ClusterConfig) throws {
        let shards = Set(cluster.racks.map(\.shardID)), agents = Set(cluster.racks.map { "agent-\($0.id)" })
        let nodes = Set(cluster.nodes.map(\.id)), racks = Set(cluster.racks.map(\.id))
        let processes = shards.union(agents).union(["gateway", "*"])
        for step in scenario.timeline {
            func bad(_ m: String) -> ValidationError { ValidationError("\(self.scenario):\(step.line): \(step.fault.rawValue): \(m)") }
            switch step.fault {
            case .killShard, .restartShard:
                if !shards.contains(step.target ?? "") { throw bad("no shard '\(step.target ?? "")' (shards: \(shards.sorted().joined(separator: ", ")))") }
            case .killAgent, .restartAgent:
                if !agents.contains(step.target ?? "") { throw bad("no agent '\(step.target ?? "")' (agents: \(agents.sorted().joined(separator: ", ")))") }
            case .failNode, .recoverNode:
                if !nodes.contains(step.node ?? "") { throw bad("no node '\(step.node ?? "")' in the config") }
            case .partition:
                for r in step.racks where !racks.contains(r) && r != "gateway" { throw bad("no rack '\(r)' (racks: \(racks.sorted().joined(separator: ", ")))") }
            case .drop, .delay, .duplicate:
                for p in step.from + step.to where !processes.contains(p) { throw bad("no process '\(p)' (known: \(processes.sorted().joined(separator: ", ")))") }
            default: break
            }
        }
    }

    /// Messages each process faulted (drop / delay / duplicate), from the counters its fault-plan
    /// poller writes next to the plan (a killed process's last life only).
    static func faultCounts(planPath: String, processes: [RunState.Process]) -> [String: [String: Int]] {
        var out: [String: [String: Int]] = [:]
        for p in processes {
            if let data = FileManager.default.contents(atPath: "\(planPath).\(p.id).counts"),
               let counts = try? JSONDecoder().decode([String: Int].self, from: data) {
                out[p.id] = counts
            }
        }
        return out
    }

    /// SWIM as the shards' logs tell it: suspicions raised (a member -> suspect), refutations
    /// (this shard refuted a suspicion about itself), suspect -> alive transitions seen, and deaths.
    static func membership(_ processes: [RunState.Process]) -> (suspicions: Int, refuted: Int, suspectToAlive: Int, deaths: [(observer: String, member: String, when: String)]) {
        var suspicions = 0, refuted = 0, back = 0
        var deaths: [(String, String, String)] = []
        for p in processes where p.role == "shard" {
            guard let data = FileManager.default.contents(atPath: p.log) else { continue }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                if line.contains("refuted a suspicion") { refuted += 1; continue }
                guard let m = line.range(of: "] member ") else { continue }
                let words = line[m.upperBound...].split(separator: " ")
                guard words.count >= 5 else { continue }
                let from = String(words[2]), to = String(words[4])
                if to == "suspect" { suspicions += 1 }
                if from == "suspect" && to == "alive" { back += 1 }
                if to == "dead" { deaths.append((p.id, String(words[0]), String(line.prefix(25)))) }
            }
        }
        return (suspicions, refuted, back, deaths)
    }

    // MARK: Executing faults

    private func execute(
        _ step: Scenario.Step, processes: inout [RunState.Process], injector: FaultState, planPath: String, dir: String,
        clock: WallClusterClock, key: ClusterKey?
    ) async throws -> FaultRecord {
        var record = FaultRecord(fault: step.fault.rawValue, target: step.target ?? step.node, clusterTime: clock.now - clock.epoch, wallTime: Date().timeIntervalSince1970)
        func index(_ id: String) -> Int? { processes.firstIndex { $0.id == id } }
        func kill9(_ id: String) {
            guard let i = index(id) else { return }
            let pid = processes[i].pid
            if ProcessControl.isBourse(pid) { kill(pid, SIGKILL) }
            // Reap it so it is not a zombie answering kill(0).
            for _ in 0..<100 where ProcessControl.isAlive(pid) { usleep(10_000) }
        }
        func restart(_ id: String) async throws {
            guard let i = index(id) else { return }
            if ProcessControl.isAlive(processes[i].pid) { record.note = "was still running; not restarted"; return }
            processes[i] = try ClusterLauncher.start(processes[i])
            let started = Date()
            if await waitPing(processes[i].address, key: key, seconds: 20) {
                record.recoveryWallSeconds = Date().timeIntervalSince(started)
                record.recoveryClusterSeconds = record.recoveryWallSeconds! * clock.speedup
                record.recoveryWhat = "answers pings"
            } else {
                record.note = "no answer within 20 s"
            }
        }
        switch step.fault {
        case .killShard:
            let target = step.target!
            let agent = "agent-" + (processes.first { $0.id == target }.map { _ in target.replacingOccurrences(of: "shard-", with: "") } ?? "")
            record.agents = [agent]
            let agentLog = processes.first { $0.id == agent }?.log
            let offset = agentLog.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? NSNumber }?.intValue ?? 0
            kill9(target)
            // Recovery: the rack's agent registered with another shard (the rack is adopted).
            if let agentLog {
                let started = Date()
                while Date().timeIntervalSince(started) < 30 {
                    if let data = FileManager.default.contents(atPath: agentLog), data.count > offset,
                       let line = String(decoding: data[offset...], as: UTF8.self).split(separator: "\n").first(where: { $0.contains("registered with") }) {
                        record.recoveryWallSeconds = Date().timeIntervalSince(started)
                        record.recoveryClusterSeconds = record.recoveryWallSeconds! * clock.speedup
                        record.recoveryWhat = "rack adopted: " + (line.range(of: "registered with").map { String(line[$0.lowerBound...]) } ?? "")
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                if record.recoveryWallSeconds == nil { record.note = "rack not adopted within 30 s" }
            }
        case .restartShard, .restartAgent:
            try await restart(step.target!)
        case .killAgent:
            record.agents = [step.target!]
            kill9(step.target!)
        case .killGateway:
            record.agents = ["*"]
            kill9("gateway")
            record.target = "gateway"
        case .restartGateway:
            record.target = "gateway"
            try await restart("gateway")
        case .failNode, .recoverNode:
            let node = step.node!
            let cluster = try SimFiles.report { try ClusterConfig.load(path: launcher(dir).config) }
            guard let rack = cluster.racks.first(where: { $0.nodes.contains { $0.id == node } }) else { break }
            let path = ClusterLauncher.controlFile(dir, agent: "agent-\(rack.id)")
            let line = "\(step.fault == .failNode ? "fail" : "recover") \(node)\n"
            if let handle = FileHandle(forWritingAtPath: path) {
                handle.seekToEndOfFile()
                handle.write(Data(line.utf8))
                try? handle.close()
            } else {
                try Data(line.utf8).write(to: URL(fileURLWithPath: path))
            }
        case .partition:
            let cluster = try SimFiles.report { try ClusterConfig.load(path: launcher(dir).config) }
            var group = cluster.racks.filter { step.racks.contains($0.id) }.flatMap { [$0.shardID, "agent-\($0.id)"] }
            if step.racks.contains("gateway") { group.append("gateway") }
            record.agents = group.filter { $0.hasPrefix("agent-") }
            injector.partition = [group]
            try injector.write(to: planPath)
            record.note = "cut off: \(group.joined(separator: ", "))"
        case .heal:
            injector.partition = []
            try injector.write(to: planPath)
        case .drop, .delay, .duplicate:
            record.agents = ["*"]
            var rule = FaultPlan.Rule(from: step.from, to: step.to)
            switch step.fault {
            case .drop: rule.drop = step.fraction
            case .delay: rule.delay = step.fraction; rule.delay_ms = step.delayMs
            default: rule.duplicate = step.fraction
            }
            injector.rules.append(rule)
            try injector.write(to: planPath)
            record.note = "\(step.fault.rawValue) \(Int(step.fraction * 100)) % \(step.from.joined(separator: ",")) -> \(step.to.joined(separator: ","))"
                + (step.fault == .delay ? " by \(Int(step.delayMs)) ms" : "")
        case .clear:
            injector.rules = []
            try injector.write(to: planPath)
        }
        return record
    }

    private func launcher(_ dir: String) throws -> RunState { try RunState.load(runDir: dir) }

    private func waitPing(_ address: String, key: ClusterKey?, seconds: Double) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let reply = await LiveQuery.ask(address, .ping(Ping(probeID: 0)), timeout: .milliseconds(300), key: key), case .ack = reply.body {
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Jobs a fault affected and, for faults that stop workers (fail-node, kill-agent), the time
    /// until every one of them ran again (or completed). Affected: fail-node, the workers the node
    /// failure stopped; kill-agent, kill-shard and partition, the jobs running on the agents
    /// concerned at the fault; kill-gateway and message faults, the jobs running anywhere.
    static func measure(_ record: FaultRecord, events: [AuditEvent]) -> FaultRecord {
        var r = record
        let t0 = record.clusterTime
        var stopped: [String: Double] = [:]
        if record.fault == "fail-node" {
            for e in events where e.ev == "worker_stop" && e.reason == "node_failed" && e.t >= t0 - 1 && e.t <= t0 + 600 {
                if let j = e.job { stopped[j] = min(stopped[j] ?? e.t, e.t) }
            }
            r.jobsAffected = stopped.keys.sorted()
        } else {
            var running: [String: Set<String>] = [:]  // agent -> jobs
            for e in events where e.t <= t0 && e.proc.hasPrefix("agent-") {
                if e.ev == "worker_start", let j = e.job { running[e.proc, default: []].insert(j) }
                if e.ev == "worker_stop", let j = e.job { running[e.proc]?.remove(j) }
                if e.ev == "process_start" { running[e.proc] = [] }
            }
            let agents = record.agents.contains("*") ? Array(running.keys) : record.agents
            r.jobsAffected = Set(agents.flatMap { running[$0] ?? [] }).sorted()
            if record.fault == "kill-agent" { for j in r.jobsAffected { stopped[j] = t0 } }
        }
        guard !stopped.isEmpty else { return r }
        var worst = 0.0
        for (job, at) in stopped.sorted(by: { $0.key < $1.key }) {
            let back = events.filter { ($0.ev == "worker_start" && $0.job == job && $0.t > at) }.map(\.t).min()
            if let back {
                worst = max(worst, back - t0)
            } else if !events.contains(where: { $0.ev == "worker_stop" && $0.job == job && $0.reason == "completed" && $0.t >= at }) {
                r.jobsNotRecovered.append(job)
            }
        }
        if r.jobsNotRecovered.isEmpty {
            r.recoveryClusterSeconds = worst
            r.recoveryWallSeconds = nil
            r.recoveryWhat = "every affected job running again"
        } else {
            r.recoveryClusterSeconds = nil
            r.recoveryWhat = "never ran again: \(r.jobsNotRecovered.joined(separator: ", "))"
        }
        return r
    }
}

struct FaultRecord {
    var fault: String
    var target: String?
    var clusterTime: Double
    var wallTime: Double
    var recoveryWallSeconds: Double?
    var recoveryClusterSeconds: Double?
    var recoveryWhat: String?
    var jobsAffected: [String] = []
    var jobsNotRecovered: [String] = []
    /// Agents whose jobs the fault concerns ("*": all).
    var agents: [String] = []
    var note: String?

    var fields: [String: Any] {
        [
            "fault": fault, "target": target ?? NSNull(), "cluster_time": clusterTime, "wall_time": wallTime,
            "recovery_cluster_seconds": recoveryClusterSeconds ?? NSNull(),
            "recovery_wall_seconds": recoveryWallSeconds ?? recoveryClusterSeconds.map { _ in NSNull() } ?? NSNull(),
            "recovered_at_cluster_time": recoveryClusterSeconds.map { clusterTime + $0 } ?? NSNull(),
            "recovery": recoveryWhat ?? NSNull(), "jobs_affected": jobsAffected, "jobs_not_recovered": jobsNotRecovered,
            "note": note ?? NSNull(),
        ]
    }
}

/// The fault plan the runner rewrites as its timeline goes (read by every shard and agent).
final class FaultState: @unchecked Sendable {
    var rules: [FaultPlan.Rule] = []
    var partition: [[String]] = []
    let seed: UInt64
    let addresses: [String: String]
    init(seed: UInt64, addresses: [String: String]) {
        self.seed = seed
        self.addresses = addresses
    }
    func clearAll() {
        rules = []
        partition = []
    }

    func write(to path: String) throws {
        let plan = FaultPlan(seed: seed, addresses: addresses, rules: rules, partition: partition)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(plan).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
