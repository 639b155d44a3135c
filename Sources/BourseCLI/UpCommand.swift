import ArgumentParser
import BourseModel
import BoursePolicy
import BourseTransport
import BourseWire
import Foundation

/// `bourse up`: the local launcher.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start gateway, shards and agents of a cluster config as local processes; return once all answer.",
        discussion: """
            Starts `bourse gateway` (job store RUN_DIR/gateway.db), then one `bourse shard` and one \
            `bourse agent` per rack, all on one cluster clock (a common epoch, the speed-up). Each \
            process logs to RUN_DIR/<id>.log; RUN_DIR/bourse-up.json records pids and addresses. \
            Returns once every process answers a ping, printing where the logs are. The run \
            directory is remembered as the last `bourse up` for `bourse down`, `members`, `nodes`.

            A run directory that already holds a gateway.db resumes that job store.

            The processes inherit this command's environment: a cluster key in BOURSE_CLUSTER_KEY \
            (or the variable / file the config's security section names) reaches all of them.

            Examples:
              bourse up cluster-configs/demo.yaml
              bourse up cluster-configs/gavel-4-4-4.yaml --policy gavel-las --speedup 600 --run-dir /tmp/g444
            """)

    @Argument(help: ArgumentHelp("Cluster config (YAML).", valueName: "config"))
    var config: String

    @Option(help: ArgumentHelp("Scheduling policy of every shard: \(PolicyCatalog.allNames.joined(separator: ", ")).", valueName: "name"))
    var policy: String = "bourse"

    @Option(help: ArgumentHelp("Cluster clock speed-up (default: the config's).", valueName: "x"))
    var speedup: Double?

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Logs, state and job store (default: ./run/<cluster name>).", valueName: "dir"))
    var runDir: String?

    @Option(help: "Seed of the agents' throughput noise.")
    var seed: UInt64 = 1

    @Option(
        name: .customLong("fail-node"),
        help: ArgumentHelp("Chaos: the node's agent fails it that many cluster seconds after start (repeatable).", valueName: "node@seconds"))
    var failNode: [String] = []

    @Option(name: .customLong("timeout-ms"), help: "Give up when the processes do not all answer within this many milliseconds.")
    var timeoutMs: Int = 30000

    @Option(name: .customLong("log-level"), help: "Log level of the started processes.")
    var logLevel: String = "info"

    @Flag(name: .customLong("no-trading"), help: "Shards do not trade GPUs across racks (every job runs on its home rack).")
    var noTrading = false

    @Flag(name: .customLong("no-rehome"), help: "Shards keep a job that runs on another rack's lease at its home (see `bourse shard --help`).")
    var noRehome = false

    func validate() throws {
        if let speedup, !(speedup > 0) { throw ValidationError("--speedup must be positive") }
        if !PolicyCatalog.allNames.contains(policy) {
            throw ValidationError("unknown policy '\(policy)'; known: \(PolicyCatalog.allNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let configPath = URL(fileURLWithPath: config).standardizedFileURL.path
        let cluster = try SimFiles.report { try ClusterConfig.load(path: configPath) }
        // Resolved here to fail before starting anything; the processes inherit this environment
        // and resolve the same key themselves (it is never on a command line or in bourse-up.json).
        let clusterKey = try ClusterSecurity.key(cluster.security)
        for f in failNode {
            guard let failure = Agent.parseFailure(f), cluster.nodes.contains(where: { $0.id == failure.nodeID }) else {
                throw ValidationError("--fail-node takes NODE@SECONDS with a node of the config; got '\(f)'")
            }
        }
        let dir = URL(fileURLWithPath: runDir ?? "run/\(cluster.name)").standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let old = try? RunState.load(runDir: dir), old.processes.contains(where: { ProcessControl.isBourse($0.pid) }) {
            throw ValidationError("a cluster is already running from \(dir) (stop it with `bourse down --run-dir \(dir)`)")
        }
        let epoch = Date().timeIntervalSince1970
        let speed = speedup ?? cluster.speedup
        var launcher = ClusterLauncher(
            configPath: configPath, cluster: cluster, dir: dir, policy: policy, speedup: speed, seed: seed, epoch: epoch,
            logLevel: logLevel, failNode: failNode)
        launcher.trading = !noTrading
        launcher.rehome = !noRehome
        let processes = try launcher.processes()
        try await ClusterLauncher.ensureAddressesFree(processes, key: clusterKey)
        let started = try ClusterLauncher.startAll(processes)
        let state = RunState(
            config: configPath, cluster: cluster.name, policy: policy, epoch: epoch, speedup: speed,
            gateway: cluster.gateway.address, startedAt: ISO8601DateFormatter().string(from: Date()), processes: started)
        try state.save(runDir: dir)
        LastRun.remember(dir)

        // Wait until every process answers a ping (one long-lived client each).
        try await ClusterLauncher.waitHealthy(started, key: clusterKey, timeoutMs: timeoutMs, dir: dir)
        let shards = cluster.racks.count
        Output.line(
            "cluster '\(cluster.name)' is up: gateway \(cluster.gateway.address), \(shards) shard\(shards == 1 ? "" : "s"), "
                + "\(shards) agent\(shards == 1 ? "" : "s") (policy \(policy), speed-up \(speed))")
        if clusterKey == nil { Output.line("note:  \(WireEndpoint.noKeyWarning)") }
        Output.line("logs:  \(dir)/*.log")
        Output.line("state: \(RunState.path(runDir: dir))")
        Output.line("stop:  bourse down --run-dir \(dir)")
    }
}

/// Starting and stopping the launcher's child processes.
enum ProcessControl {
    /// This `bourse` executable.
    static func executable() -> URL {
        let proc = URL(fileURLWithPath: "/proc/self/exe")
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: proc.path) {
            return URL(fileURLWithPath: resolved)
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
    }

    /// Starts `executable arguments` with stdout and stderr appended to `log`; returns its pid.
    static func spawn(executable: URL, arguments: [String], log: String) throws -> Int32 {
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process.processIdentifier
    }

    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        // A zombie (exited, not yet reaped) is not alive.
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).prefix(1)
            return state != "Z"
        }
        return true
    }

    /// True when `pid` is alive and runs a `bourse` executable (guards against pid reuse).
    static func isBourse(_ pid: Int32) -> Bool {
        guard isAlive(pid) else { return false }
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        return String(decoding: cmdline, as: UTF8.self).contains("bourse")
    }

    /// SIGTERM to each, then SIGKILL to those still alive after `grace`. Returns the pids killed.
    @discardableResult
    static func stop(_ pids: [Int32], grace: TimeInterval = 5) -> [Int32] {
        let mine = pids.filter(isBourse)
        for pid in mine { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        while Date() < deadline && mine.contains(where: isAlive) { usleep(50_000) }
        let stubborn = mine.filter(isAlive)
        for pid in stubborn { kill(pid, SIGKILL) }
        return stubborn
    }

    static func tail(_ path: String, lines: Int = 15) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "(no log)" }
        return String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).suffix(lines)
            .joined(separator: "\n")
    }
}
