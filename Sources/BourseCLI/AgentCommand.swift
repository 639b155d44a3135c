import ArgumentParser
import BourseAgent
import BourseModel
import BourseWorkload
import Foundation
import Logging

/// `bourse agent`: the data plane of one rack (embedded default: one agent process per rack).
struct Agent: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the agent of one rack: emulated workers on the rack's GPUs, driven by its shard.",
        discussion: """
            Listens on the rack's agent address for worker commands (start / stop / resize) and \
            emulates the workers on the cluster clock: each advances at the throughput table's \
            steps/s for its configuration (consolidated when all its GPUs sit on one node) with \
            seeded noise, after a checkpoint-restart delay, and checkpoints periodically. It \
            registers with the rack's shard and heartbeats its nodes and jobs to it; when the shard \
            stops answering it keeps the workers running and tries the next shard in config order \
            (the rack's successor after a failover).

            Prints "agent agent-R listening on ADDR" once ready.

            Example:
              bourse agent --config cluster-configs/demo.yaml --rack r0 --epoch 1700000000
            """)


    @OptionGroup var live: LiveProcessOptions

    @Option(help: ArgumentHelp("Rack id whose nodes this agent runs.", valueName: "id"))
    var rack: String

    @Option(help: "Seed of the throughput noise.")
    var seed: UInt64 = 1



    @Option(name: .customLong("checkpoint-seconds"), help: "Cluster seconds between periodic checkpoints.")
    var checkpointSeconds: Double = 120

    @Option(help: "Relative throughput noise (0.05 = +-5 %).")
    var noise: Double = 0.05

    @Option(
        name: .customLong("fail-node"),
        help: ArgumentHelp("Chaos: fail node NODE that many cluster seconds after start (repeatable).", valueName: "node@seconds"))
    var failNode: [String] = []

    @Option(
        name: .customLong("checkpoint-dir"),
        help: ArgumentHelp(
            "Shared checkpoint storage: a stopped worker saves its checkpoint here and a worker started on another rack resumes from it (bourse up: RUN_DIR/checkpoints).",
            valueName: "dir"))
    var checkpointDir: String?

    @Option(name: .customLong("control-file"), help: ArgumentHelp("Chaos: poll this file for `fail NODE` / `recover NODE` lines.", valueName: "file"))
    var controlFile: String?

    static func parseFailure(_ text: String) -> (nodeID: String, after: Double)? {
        let parts = text.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let after = Double(parts[1]), after >= 0 else { return nil }
        return (String(parts[0]), after)
    }



    func validate() throws {
        if !(checkpointSeconds > 0) { throw ValidationError("--checkpoint-seconds must be positive") }
        for f in failNode where Self.parseFailure(f) == nil {
            throw ValidationError("--fail-node takes NODE@SECONDS, e.g. r0-n1@600; got '\(f)'")
        }
        if !(noise >= 0 && noise < 1) { throw ValidationError("--noise must be in [0, 1)") }
    }

    func run() async throws {
        let (logger, cluster, table, clock) = try live.prepare(label: "bourse.agent.\(rack)")
        let clusterKey = try ClusterSecurity.key(cluster.security)
        ClusterSecurity.announce(clusterKey, cluster.security, logger: logger)
        var options = BourseAgent.Agent.Options()
        options.nodeFailures = failNode.compactMap(Self.parseFailure)
        options.controlFile = controlFile
        if let checkpointDir { options.checkpointStore = try CheckpointStore(directory: checkpointDir) }
        try live.enableChaos(process: "agent-\(rack)", clock: clock)
        let agent = try BourseAgent.Agent(
            cluster: cluster, rackID: rack, table: table,
            settings: AgentSettings(checkpointSeconds: checkpointSeconds, noise: noise, seed: seed), clock: clock,
            logger: logger, options: options, clusterKey: clusterKey)
        Output.line("agent \(agent.agentID) listening on \(agent.listenAddress)")
        try await LiveProcess.runUntilSignal { try await agent.run() } onStop: { await agent.shutdown() }
    }
}
