import ArgumentParser
import Foundation

/// `bourse down`: stops what `bourse up` started.
struct Down: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop the processes started by `bourse up` (SIGTERM, then SIGKILL after a grace period).",
        discussion: """
            Reads RUN_DIR/bourse-up.json (default: the last `bourse up`'s run directory), stops \
            agents, shards and the gateway, and removes the state file. Logs and the job store stay.

            Example:
              bourse down --run-dir run/demo
            """)

    @Option(name: .customLong("run-dir"), help: ArgumentHelp("Run directory of `bourse up` (default: the last one).", valueName: "dir"))
    var runDir: String?

    @Option(help: "Seconds to wait after SIGTERM before SIGKILL.")
    var grace: Double = 5

    func run() throws {
        let dir = try LastRun.resolve(runDir)
        let state = try RunState.load(runDir: dir)
        let running = state.processes.filter { ProcessControl.isBourse($0.pid) }
        // Agents first (they would otherwise fail over), then shards, then the gateway.
        let order = ["agent", "shard", "gateway"]
        let sorted = running.sorted { (order.firstIndex(of: $0.role) ?? 3) < (order.firstIndex(of: $1.role) ?? 3) }
        let killed = ProcessControl.stop(sorted.map(\.pid), grace: grace)
        try? FileManager.default.removeItem(atPath: RunState.path(runDir: dir))
        Output.line(
            "stopped \(running.count) of \(state.processes.count) processes of '\(state.cluster)'"
                + (killed.isEmpty ? "" : " (\(killed.count) needed SIGKILL)") + "; logs in \(dir)")
    }
}
