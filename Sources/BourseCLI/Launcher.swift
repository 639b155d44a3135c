import ArgumentParser
import BourseModel
import BourseTransport
import BourseWire
import Foundation

/// What `bourse up` and `bourse chaos run` start: the processes of a cluster config with their
/// arguments, launched as children logging to the run directory, and the wait until all answer.
struct ClusterLauncher {
    /// Chaos options passed to every process (nil: off).
    struct Chaos {
        /// Audit logs: RUN_DIR/audit/<id>.jsonl.
        var audit = false
        /// Fault plan polled by shards and agents.
        var faultPlan: String?
        /// Agents' control files: RUN_DIR/control/<agent id>.
        var control = false
        var probePeriod: Double?
        var checkpointSeconds: Double?
    }

    var configPath: String
    var cluster: ClusterConfig
    var dir: String
    var policy: String
    var speedup: Double
    var seed: UInt64
    var epoch: Double
    var logLevel: String
    var failNode: [String] = []
    var chaos = Chaos()
    var trading = true
    var rehome = true

    static func auditDir(_ dir: String) -> String { URL(fileURLWithPath: dir).appendingPathComponent("audit").path }
    static func controlFile(_ dir: String, agent: String) -> String {
        URL(fileURLWithPath: dir).appendingPathComponent("control").appendingPathComponent(agent).path
    }

    /// The processes in start order (gateway, then shard and agent per rack), not started (pid 0).
    func processes() throws -> [RunState.Process] {
        let clock = ["--epoch", String(format: "%.3f", epoch), "--speedup", "\(speedup)", "--log-level", logLevel]
        func path(_ name: String) -> String { URL(fileURLWithPath: dir).appendingPathComponent(name).path }
        if chaos.audit { try FileManager.default.createDirectory(atPath: Self.auditDir(dir), withIntermediateDirectories: true) }
        if chaos.control {
            try FileManager.default.createDirectory(atPath: path("control"), withIntermediateDirectories: true)
        }
        func chaosArgs(_ id: String) -> [String] {
            var args: [String] = []
            if chaos.audit { args += ["--audit-log", URL(fileURLWithPath: Self.auditDir(dir)).appendingPathComponent("\(id).jsonl").path] }
            if let plan = chaos.faultPlan { args += ["--fault-plan", plan] }
            return args
        }
        var out: [RunState.Process] = []
        func add(_ role: String, _ id: String, _ address: String, _ arguments: [String]) {
            out.append(RunState.Process(role: role, id: id, pid: 0, address: address, log: path("\(id).log"), arguments: arguments))
        }
        add("gateway", "gateway", cluster.gateway.address, ["gateway", "--config", configPath, "--db", path("gateway.db")] + clock)
        for rack in cluster.racks {
            let failures = failNode.filter { f in rack.nodes.contains { $0.id == Agent.parseFailure(f)?.nodeID } }
                .flatMap { ["--fail-node", $0] }
            var shardArgs = ["shard", "--config", configPath, "--rack", rack.id, "--policy", policy] + clock + chaosArgs(rack.shardID)
            if let p = chaos.probePeriod { shardArgs += ["--probe-period", "\(p)"] }
            if !trading { shardArgs.append("--no-trading") }
            if !rehome { shardArgs.append("--no-rehome") }
            add("shard", rack.shardID, rack.shardAddress, shardArgs)
            let agentID = "agent-\(rack.id)"
            var agentArgs = ["agent", "--config", configPath, "--rack", rack.id, "--seed", "\(seed)"] + failures + clock
                + chaosArgs(agentID)
            if chaos.control { agentArgs += ["--control-file", Self.controlFile(dir, agent: agentID)] }
            agentArgs += ["--checkpoint-dir", path("checkpoints")]
            if let c = chaos.checkpointSeconds { agentArgs += ["--checkpoint-seconds", "\(c)"] }
            add("agent", agentID, rack.agentAddress, agentArgs)
        }
        return out
    }

    /// Starts `process` (its recorded arguments); returns it with its pid.
    static func start(_ process: RunState.Process) throws -> RunState.Process {
        var p = process
        p.pid = try ProcessControl.spawn(executable: ProcessControl.executable(), arguments: process.arguments ?? [], log: process.log)
        return p
    }

    /// Starts every process; on a failure stops those started and throws.
    static func startAll(_ processes: [RunState.Process]) throws -> [RunState.Process] {
        var started: [RunState.Process] = []
        for process in processes {
            do {
                started.append(try start(process))
            } catch {
                ProcessControl.stop(started.map(\.pid))
                throw ValidationError("cannot start \(process.id): \(error)")
            }
        }
        return started
    }

    /// Refuses to start when something already answers on one of the processes' addresses (a
    /// cluster from the same config still running): its answers would pass for the new processes'.
    static func ensureAddressesFree(_ processes: [RunState.Process], key: ClusterKey?) async throws {
        for p in processes {
            if await LiveQuery.ask(p.address, .ping(Ping(probeID: 0)), timeout: .milliseconds(200), key: key) != nil {
                throw ValidationError(
                    "\(p.address) (\(p.id)'s address) already answers: another cluster runs on this config's addresses "
                        + "(stop it with `bourse down --run-dir DIR`, or use a config with other ports)")
            }
        }
    }

    /// Waits until every process answers a ping; stops them all and throws after `timeoutMs`.
    static func waitHealthy(_ started: [RunState.Process], key: ClusterKey?, timeoutMs: Int, dir: String) async throws {
        let clients = try started.map { try RequestClient(dialing: $0.address) }
        defer { clients.forEach { $0.close() } }
        var wire = WireEndpoint(senderID: "cli-\(getpid())", key: key)
        var healthy = Array(repeating: false, count: started.count)
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while healthy.contains(false) {
            for (i, process) in started.enumerated() where !healthy[i] {
                if !ProcessControl.isAlive(process.pid) {
                    ProcessControl.stop(started.map(\.pid))
                    throw ValidationError("\(process.id) exited during start-up; its log (\(process.log)):\n\(ProcessControl.tail(process.log))")
                }
                let ping = try wire.seal(.ping(Ping(probeID: 0)), sentAt: Date().timeIntervalSince1970)
                if let bytes = try? await clients[i].request(ping, timeout: .milliseconds(300)),
                   case .success(let reply) = wire.decode(bytes), case .ack = reply.body {
                    healthy[i] = true
                }
            }
            if ContinuousClock.now > deadline {
                let missing = started.indices.filter { !healthy[$0] }.map { started[$0].id }
                ProcessControl.stop(started.map(\.pid))
                throw ValidationError("no answer within \(timeoutMs) ms from \(missing.joined(separator: ", ")); logs in \(dir)")
            }
        }
    }
}
