import ArgumentParser
import BourseWire
import Foundation

/// `bourse nodes`: nodes and GPUs as the shards report them.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nodes",
        abstract: "List nodes, their GPUs and the jobs on them, as the shards that own them report.",
        discussion: """
            Asks every shard for its view (an AgentHeartbeat query): the nodes of the racks it owns \
            as their agents last reported them. Columns: node, rack, owning shard, health, GPUs \
            busy/total by type, jobs on the node.

            Examples:
              bourse nodes
              bourse nodes --config cluster-configs/demo.yaml --json
            """)

    @OptionGroup var cluster: ClusterOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let shards = try cluster.shards()
        let key = try cluster.clusterKey()
        var rows = [["NODE", "RACK", "SHARD", "HEALTH", "GPUS BUSY/TOTAL", "JOBS"]]
        var objects: [[String: Any]] = []
        var silent: [String] = []
        var seen = Set<String>()
        for shard in shards {
            guard let reply = await LiveQuery.ask(shard.address, .agentHeartbeat(AgentHeartbeat()), timeout: .milliseconds(cluster.timeoutMs), key: key),
                  case .agentHeartbeat(let view) = reply.body else {
                silent.append(shard.id)
                continue
            }
            for node in view.nodes where !seen.contains(node.nodeID) {
                seen.insert(node.nodeID)
                var byType: [String: (busy: Int, total: Int)] = [:]
                for gpu in node.gpus {
                    var c = byType[gpu.gpuType] ?? (0, 0)
                    c.total += 1
                    if !gpu.jobID.isEmpty { c.busy += 1 }
                    byType[gpu.gpuType] = c
                }
                let jobs = Array(Set(node.gpus.map(\.jobID).filter { !$0.isEmpty })).sorted()
                let health = Self.health(node.health)
                rows.append([
                    node.nodeID, node.rack, view.agentID, health,
                    byType.keys.sorted().map { "\($0) \(byType[$0]!.busy)/\(byType[$0]!.total)" }.joined(separator: ", "),
                    jobs.isEmpty ? "-" : jobs.joined(separator: ","),
                ])
                objects.append([
                    "node_id": node.nodeID, "rack": node.rack, "shard": view.agentID, "health": health,
                    "gpus": node.gpus.map { ["gpu_id": $0.gpuID, "gpu_type": $0.gpuType, "healthy": $0.healthy, "job_id": $0.jobID] as [String: Any] },
                ])
            }
        }
        if json {
            Output.line(try JobFormat.jsonText(objects))
        } else {
            Output.line(JobFormat.table(rows))
        }
        if !silent.isEmpty { Output.error("no answer from \(silent.joined(separator: ", "))") }
        if objects.isEmpty { throw ExitCode.failure }
    }

    static func health(_ h: NodeHealth) -> String {
        switch h {
        case .healthy: "healthy"
        case .degraded: "degraded"
        case .failed: "failed"
        default: "unknown"
        }
    }
}
