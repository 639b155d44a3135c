import BourseModel

/// Speeds of jobs whose workers are spread over servers, for GPU types the throughput table has
/// no `*_unconsolidated` entries for: a model from the cluster's network tiers. A step of a
/// w-worker job takes the compute time of a 1-worker step (1 / steps/s at 1 worker) plus a
/// communication time; inside a node that is what the consolidated entry adds,
/// max(0, 1 / steps/s(w) - 1 / steps/s(1)), and spread over nodes it grows by the bandwidth
/// ratio node / rack (one rack) or node / spine (several racks), as an all-reduce's time does.
/// Types with `*_unconsolidated` entries use the table (a missing entry = cannot run spread).
public struct NetworkSpeedModel: Sendable {
    public var table: ThroughputTable
    public var network: NetworkSpec
    /// GPU types the model is used for (no `*_unconsolidated` entries in the table).
    public var modelledTypes: Set<String>

    public init(table: ThroughputTable, network: NetworkSpec, gpuTypes: [String]) {
        self.table = table
        self.network = network
        self.modelledTypes = Set(
            gpuTypes.filter { table.entries[ThroughputTable.unconsolidatedName(of: $0)] == nil })
    }

    /// Steps/s of `model` at `workers` workers of `gpuType`, packed on one node (`.node`) or spread
    /// within a rack (`.rack`) or over racks (`.spine`).
    public func stepsPerSecond(model: String, workers: Int, gpuType: String, tier: NetworkTier) -> Double {
        let key = JobTypeKey(model: model, scaleFactor: workers)
        if tier == .node || workers <= 1 { return table.throughput(key, gpuType: gpuType, consolidated: true) }
        guard modelledTypes.contains(gpuType) else { return table.throughput(key, gpuType: gpuType, consolidated: false) }
        let packed = table.throughput(key, gpuType: gpuType, consolidated: true)
        let single = table.throughput(JobTypeKey(model: model, scaleFactor: 1), gpuType: gpuType, consolidated: true)
        guard packed > 0, single > 0,
            let node = network.tiers[.node]?.bandwidthGbps, let link = network.tiers[tier]?.bandwidthGbps, link > 0
        else { return 0 }
        let compute = 1 / single
        let communication = max(0, 1 / packed - compute)
        return 1 / (compute + communication * node / link)
    }
}
