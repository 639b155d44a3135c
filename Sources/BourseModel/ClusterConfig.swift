/// The cluster a Bourse deployment (or a simulation) runs on: GPU types, racks of nodes, network
/// tiers, one scheduler shard per rack, the gateway, and the round/clock settings.
///
/// Values only; loading and validation from YAML live in `ClusterConfigLoader.swift`.
public struct ClusterConfig: Sendable, Hashable {
    /// A label for logs and reports (e.g. "demo").
    public var name: String
    /// GPU types this cluster has, in config order (e.g. v100, p100, k80).
    public var gpuTypes: [GPUTypeSpec]
    /// Network tiers by name; `NetworkTier` names the standard ones.
    public var network: NetworkSpec
    public var gateway: GatewaySpec
    /// Racks in config order. Config order defines the deterministic successor for shard failover.
    public var racks: [RackSpec]
    /// Scheduling round length in cluster seconds (Gavel uses 360).
    public var roundSeconds: Double
    /// Cluster clock speed-up over the wall clock for live runs (1 = real time).
    public var speedup: Double
    /// Checkpoint-restart delay in cluster seconds charged when a job starts, moves or resizes.
    public var restartSeconds: Double
    /// The optional `security:` section: cluster key source, tenant tokens (see ``SecurityConfig``).
    public var security = SecurityConfig()
    /// Tenants sharing the cluster with their weights (optional top-level `tenants:`); empty =
    /// one tenant.
    public var tenants: [TenantSpec] = []

    public init(
        name: String, gpuTypes: [GPUTypeSpec], network: NetworkSpec = .default, gateway: GatewaySpec,
        racks: [RackSpec], roundSeconds: Double = 360, speedup: Double = 1, restartSeconds: Double = 30
    ) {
        self.name = name
        self.gpuTypes = gpuTypes
        self.network = network
        self.gateway = gateway
        self.racks = racks
        self.roundSeconds = roundSeconds
        self.speedup = speedup
        self.restartSeconds = restartSeconds
    }

    /// Every node of the cluster in config order.
    public var nodes: [NodeSpec] { racks.flatMap(\.nodes) }

    /// Total GPUs per type over the whole cluster.
    public var gpuCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes { for (type, n) in node.gpus { counts[type, default: 0] += n } }
        return counts
    }

    public var totalGPUs: Int { gpuCounts.values.reduce(0, +) }

    public func rack(_ id: String) -> RackSpec? { racks.first { $0.id == id } }
}

/// A tenant of the cluster: a name and a weight (its share of the cluster relative to the others).
public struct TenantSpec: Sendable, Hashable {
    public var name: String
    public var weight: Double

    public init(name: String, weight: Double = 1) {
        self.name = name
        self.weight = weight
    }
}

public struct GPUTypeSpec: Sendable, Hashable {
    /// Lower-case name as in the throughput table: "v100", "p100", "k80", "a100", ...
    public var name: String
    /// Device memory in GiB, informative.
    public var memoryGiB: Double?

    public init(name: String, memoryGiB: Double? = nil) {
        self.name = name
        self.memoryGiB = memoryGiB
    }
}

/// Where two workers of one job sit relative to each other.
public enum NetworkTier: String, Sendable, Hashable, CaseIterable, Comparable {
    /// Same node (NVLink / PCIe inside a server).
    case node
    /// Same rack, different nodes (top-of-rack switch).
    case rack
    /// Different racks (through the spine).
    case spine

    public static func < (a: NetworkTier, b: NetworkTier) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

public struct LinkSpec: Sendable, Hashable {
    public var bandwidthGbps: Double
    public var latencyMicroseconds: Double

    public init(bandwidthGbps: Double, latencyMicroseconds: Double) {
        self.bandwidthGbps = bandwidthGbps
        self.latencyMicroseconds = latencyMicroseconds
    }
}

public struct NetworkSpec: Sendable, Hashable {
    public var tiers: [NetworkTier: LinkSpec]

    public init(tiers: [NetworkTier: LinkSpec]) { self.tiers = tiers }

    /// NVLink-class inside a node, 100 Gb/s in a rack, 25 Gb/s over the spine.
    public static let `default` = NetworkSpec(tiers: [
        .node: LinkSpec(bandwidthGbps: 300, latencyMicroseconds: 2),
        .rack: LinkSpec(bandwidthGbps: 100, latencyMicroseconds: 5),
        .spine: LinkSpec(bandwidthGbps: 25, latencyMicroseconds: 20),
    ])
}

public struct GatewaySpec: Sendable, Hashable {
    /// NNG URL clients and shards reach the gateway at, e.g. "tcp://127.0.0.1:7700".
    public var address: String

    public init(address: String) { self.address = address }
}

public struct RackSpec: Sendable, Hashable {
    public var id: String
    /// NNG URL of the rack's scheduler shard.
    public var shardAddress: String
    /// NNG URL of the rack's embedded agent (one agent per rack in the embedded default).
    public var agentAddress: String
    public var nodes: [NodeSpec]

    public init(id: String, shardAddress: String, agentAddress: String, nodes: [NodeSpec]) {
        self.id = id
        self.shardAddress = shardAddress
        self.agentAddress = agentAddress
        self.nodes = nodes
    }

    /// The shard's member id, derived from the rack id.
    public var shardID: String { "shard-\(id)" }

    public var gpuCounts: [String: Int] {
        var counts: [String: Int] = [:]
        for node in nodes { for (type, n) in node.gpus { counts[type, default: 0] += n } }
        return counts
    }
}

public struct NodeSpec: Sendable, Hashable {
    /// Unique over the cluster, e.g. "r0-n3".
    public var id: String
    public var rack: String
    /// GPUs on this node by type (usually one type per node).
    public var gpus: [String: Int]

    public init(id: String, rack: String, gpus: [String: Int]) {
        self.id = id
        self.rack = rack
        self.gpus = gpus
    }

    /// Stable GPU ids of this node: "<node>-g<i>", grouped by type in name order.
    public var gpuIDs: [(id: String, type: String)] {
        var out: [(id: String, type: String)] = []
        for type in gpus.keys.sorted() {
            for _ in 0..<(gpus[type] ?? 0) { out.append((id: "\(id)-g\(out.count)", type: type)) }
        }
        return out
    }
}
