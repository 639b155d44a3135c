import ArgumentParser
import BourseModel
import BourseTransport
import BourseWire
import Foundation

/// What `bourse up` records in its run directory (`bourse-up.json`): the processes it started
/// and where they listen. `bourse down`, `members` and `nodes` read it.
struct RunState: Codable {
    struct Process: Codable {
        /// gateway, shard or agent.
        var role: String
        /// Member / agent id ("gateway", "shard-r0", "agent-r0").
        var id: String
        var pid: Int32
        var address: String
        var log: String
        /// The command line (after the executable) it was started with, for a restart.
        var arguments: [String]?
    }

    var config: String
    var cluster: String
    var policy: String
    var epoch: Double
    var speedup: Double
    var gateway: String
    var startedAt: String
    var processes: [Process]

    static let fileName = "bourse-up.json"

    static func path(runDir: String) -> String { URL(fileURLWithPath: runDir).appendingPathComponent(fileName).path }

    static func load(runDir: String) throws -> RunState {
        let file = path(runDir: runDir)
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ValidationError("no \(fileName) in \(runDir): is a cluster running there (bourse up)?")
        }
        do {
            return try JSONDecoder().decode(RunState.self, from: data)
        } catch {
            throw ValidationError("\(file) is not a bourse up state file: \(error)")
        }
    }

    func save(runDir: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: Self.path(runDir: runDir)), options: .atomic)
    }
}

/// The run directory of the last `bourse up` (remembered per user in the temp directory).
enum LastRun {
    static var pointer: URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("bourse-\(getuid())").appendingPathComponent("last-run-dir")
    }

    static func remember(_ runDir: String) {
        let url = pointer
        try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try? Data(runDir.utf8).write(to: url, options: .atomic)
    }

    static func remembered() -> String? {
        guard let data = FileManager.default.contents(atPath: pointer.path) else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }

    /// The run directory to use: the given one, else the last `bourse up`'s.
    static func resolve(_ runDir: String?) throws -> String {
        if let runDir { return URL(fileURLWithPath: runDir).standardizedFileURL.path }
        if let last = remembered() { return last }
        throw ValidationError("no --run-dir given and no `bourse up` remembered (\(pointer.path))")
    }
}

/// Where `members` / `nodes` find the shards: `--config FILE`, else `--run-dir DIR`, else the
/// last `bourse up`.
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory of `bourse up` (default: the last one).", valueName: "dir"))
    var runDir: String?

    @Option(help: ArgumentHelp("Cluster config whose shard addresses to use (instead of a run directory).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("timeout-ms"), help: "Give up on a process after this many milliseconds.")
    var timeoutMs: Int = 2000

    /// (shard id, address) in config order.
    func shards() throws -> [(id: String, address: String)] {
        try cluster().racks.map { ($0.shardID, $0.shardAddress) }
    }

    func cluster() throws -> ClusterConfig {
        let configPath: String
        if let config {
            configPath = config
        } else {
            configPath = try RunState.load(runDir: try LastRun.resolve(runDir)).config
        }
        return try SimFiles.report { try ClusterConfig.load(path: configPath) }
    }

    /// The cluster key of the config (security section, else BOURSE_CLUSTER_KEY).
    func clusterKey() throws -> ClusterKey? { try ClusterSecurity.key(try cluster().security) }
}

/// One request to a live process, answered with the reply body (nil: no answer in time).
enum LiveQuery {
    static func ask(_ address: String, _ body: Envelope.Body, timeout: Duration, key: ClusterKey? = nil) async -> Envelope? {
        guard let client = try? RequestClient(dialing: address) else { return nil }
        defer { client.close() }
        var wire = WireEndpoint(senderID: "cli-\(getpid())", key: key)
        guard let frame = try? wire.seal(body, sentAt: Date().timeIntervalSince1970),
              let bytes = try? await client.request(frame, timeout: timeout) else { return nil }
        return try? wire.decode(bytes).get()
    }

    /// Pings `address`; true when it answers with an Ack.
    static func ping(_ address: String, timeout: Duration) async -> Bool {
        guard let reply = await ask(address, .ping(Ping(probeID: 0)), timeout: timeout), case .ack = reply.body else { return false }
        return true
    }
}
