import Foundation

/// What an operator wants to know about a cluster config at a glance; `ClusterConfig.summary` renders
/// it as text, `jsonData()` as JSON (snake_case keys as in the YAML, sorted) for scripts.
public struct ClusterSummary: Sendable, Hashable, Codable {
    public struct Rack: Sendable, Hashable, Codable {
        public var id: String
        public var shard: String
        public var agent: String
        public var nodes: Int
        public var gpus: [String: Int]
        public var totalGPUs: Int

        enum CodingKeys: String, CodingKey {
            case id, shard, agent, nodes, gpus, totalGPUs = "total_gpus"
        }
    }

    public struct Link: Sendable, Hashable, Codable {
        public var bandwidthGbps: Double
        public var latencyUs: Double

        enum CodingKeys: String, CodingKey {
            case bandwidthGbps = "bandwidth_gbps", latencyUs = "latency_us"
        }
    }

    public var name: String
    /// Declared GPU types in config order.
    public var gpuTypes: [String]
    /// GPUs per declared type (0 for a declared type no node has).
    public var gpus: [String: Int]
    public var totalGPUs: Int
    public var racks: Int
    public var nodes: Int
    public var gateway: String
    public var roundSeconds: Double
    public var speedup: Double
    public var restartSeconds: Double
    /// Network tiers by name (node, rack, spine).
    public var network: [String: Link]
    public var rackDetails: [Rack]

    enum CodingKeys: String, CodingKey {
        case name, gpus, racks, nodes, gateway, speedup, network
        case gpuTypes = "gpu_types", totalGPUs = "total_gpus", roundSeconds = "round_seconds"
        case restartSeconds = "restart_seconds", rackDetails = "rack_details"
    }

    public init(_ config: ClusterConfig) {
        let counts = config.gpuCounts
        let typeNames = config.gpuTypes.map(\.name) + counts.keys.filter { k in !config.gpuTypes.contains { $0.name == k } }.sorted()
        name = config.name
        gpuTypes = typeNames
        gpus = Dictionary(uniqueKeysWithValues: typeNames.map { ($0, counts[$0] ?? 0) })
        totalGPUs = config.totalGPUs
        racks = config.racks.count
        nodes = config.racks.reduce(0) { $0 + $1.nodes.count }
        gateway = config.gateway.address
        roundSeconds = config.roundSeconds
        speedup = config.speedup
        restartSeconds = config.restartSeconds
        network = Dictionary(uniqueKeysWithValues: config.network.tiers.map {
            ($0.key.rawValue, Link(bandwidthGbps: $0.value.bandwidthGbps, latencyUs: $0.value.latencyMicroseconds))
        })
        rackDetails = config.racks.map { rack in
            let rackCounts = rack.gpuCounts
            return Rack(id: rack.id, shard: rack.shardAddress, agent: rack.agentAddress, nodes: rack.nodes.count,
                        gpus: rackCounts, totalGPUs: rackCounts.values.reduce(0, +))
        }
    }

    /// Pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// Multi-line, human-readable text (no trailing newline).
    public var text: String {
        func perType(_ counts: [String: Int]) -> String {
            gpuTypes.compactMap { type in counts[type].map { "\(type) \($0)" } }.joined(separator: ", ")
        }
        var lines: [String] = []
        lines.append("cluster  \(name)")
        lines.append("GPUs     \(totalGPUs) total: \(perType(gpus))")
        lines.append("racks    \(racks), nodes \(nodes)")
        let wallRound = roundSeconds / speedup
        lines.append("round    \(formatNumber(roundSeconds)) s, speed-up \(formatNumber(speedup))x"
            + " (\(formatNumber((wallRound * 100).rounded() / 100)) s wall time per round), restart \(formatNumber(restartSeconds)) s")
        lines.append("gateway  \(gateway)")
        let tiers = NetworkTier.allCases.compactMap { tier in
            network[tier.rawValue].map { "\(tier.rawValue) \(formatNumber($0.bandwidthGbps)) Gb/s \(formatNumber($0.latencyUs)) us" }
        }
        lines.append("network  \(tiers.joined(separator: ", "))")
        lines.append("")

        let header = ["rack", "nodes", "GPUs", "shard", "agent"]
        let rows = rackDetails.map { rack in
            [rack.id, String(rack.nodes), "\(rack.totalGPUs) (\(perType(rack.gpus)))", rack.shard, rack.agent]
        }
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        for row in [header] + rows {
            let cells = row.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 1 ? pad + cell : cell + pad  // right-align the node count
            }
            var line = cells.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

extension ClusterConfig {
    /// The structured summary (racks, nodes, GPUs per type, addresses, round and speed-up).
    public var summaryInfo: ClusterSummary { ClusterSummary(self) }

    /// A readable multi-line summary: name, GPUs per type and total, racks and nodes, round length,
    /// speed-up, gateway, network, and one line per rack with its shard and agent addresses.
    public var summary: String { summaryInfo.text }
}
