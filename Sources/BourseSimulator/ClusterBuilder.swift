import BourseModel

extension ClusterConfig {
    /// A cluster like Gavel's simulated ones, built in code: one rack per GPU type (in the given
    /// order), `gpusPerServer` GPUs per node. Addresses are placeholders (simulation only).
    public static func simulated(
        name: String, gpus: [(type: String, count: Int)], gpusPerServer: Int = 1
    ) -> ClusterConfig {
        var racks: [RackSpec] = []
        for (r, entry) in gpus.enumerated() {
            var nodes: [NodeSpec] = []
            var left = entry.count
            while left > 0 {
                let n = min(gpusPerServer, left)
                nodes.append(NodeSpec(id: "\(entry.type)-n\(nodes.count)", rack: entry.type, gpus: [entry.type: n]))
                left -= n
            }
            racks.append(
                RackSpec(
                    id: entry.type, shardAddress: "inproc://shard-\(r)", agentAddress: "inproc://agent-\(r)", nodes: nodes))
        }
        return ClusterConfig(
            name: name, gpuTypes: gpus.map { GPUTypeSpec(name: $0.type) },
            gateway: GatewaySpec(address: "inproc://gateway"), racks: racks)
    }
}
