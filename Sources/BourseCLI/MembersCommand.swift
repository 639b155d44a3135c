import ArgumentParser
import BourseWire
import Foundation

/// `bourse members`: the membership as each shard's SWIM instance sees it.
struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "List cluster members (shards, gateway) as each shard's gossip sees them.",
        discussion: """
            Pings every shard of the cluster; a shard answers a non-member's ping with its whole \
            membership view. One column per shard that answered: status and incarnation of each \
            member in that shard's view. Then each shard's latest digest (racks, free GPUs, queue).

            Examples:
              bourse members
              bourse members --run-dir run/demo
              bourse members --config cluster-configs/demo.yaml --json
            """)

    @OptionGroup var cluster: ClusterOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() async throws {
        let shards = try cluster.shards()
        let key = try cluster.clusterKey()
        // All shards at once: a dead one costs one timeout, not one per shard after it.
        let timeout = Duration.milliseconds(cluster.timeoutMs)
        let answers = await withTaskGroup(of: (Int, Ack?).self) { group in
            for (i, shard) in shards.enumerated() {
                group.addTask {
                    let reply = await LiveQuery.ask(shard.address, .ping(Ping(probeID: 0)), timeout: timeout, key: key)
                    if let reply, case .ack(let ack) = reply.body { return (i, ack) }
                    return (i, nil)
                }
            }
            var out: [Int: Ack] = [:]
            for await (i, ack) in group { out[i] = ack }
            return out
        }
        let views: [(shard: String, ack: Ack?)] = shards.enumerated().map { ($1.id, answers[$0]) }
        if json {
            let object = views.map { view -> [String: Any] in
                var o: [String: Any] = ["shard": view.shard, "answered": view.ack != nil]
                if let ack = view.ack {
                    o["members"] = ack.updates.map {
                        ["member_id": $0.memberID, "address": $0.address, "status": Self.status($0.status),
                         "incarnation": $0.incarnation, "role": Self.role($0.role)] as [String: Any]
                    }
                    o["digests"] = ack.digests.map {
                        ["shard_id": $0.shardID, "racks": $0.racks, "queued_jobs": Int($0.queuedJobs), "round": $0.round,
                         "free_gpus": Dictionary(uniqueKeysWithValues: $0.asks.map { ($0.gpuType, Int($0.freeGpus)) })] as [String: Any]
                    }
                }
                return o
            }
            Output.line(try JobFormat.jsonText(object))
            return
        }
        let answered = views.filter { $0.ack != nil }
        if answered.isEmpty {
            throw ValidationError("no shard answered (\(shards.map(\.address).joined(separator: ", ")))")
        }
        var ids: [String] = []
        var info: [String: MemberUpdate] = [:]
        for view in answered {
            for u in view.ack!.updates where info[u.memberID] == nil {
                ids.append(u.memberID)
                info[u.memberID] = u
            }
        }
        var rows = [["MEMBER", "ROLE", "ADDRESS"] + answered.map { "SEEN BY \($0.shard)" }]
        for id in ids.sorted() {
            let u = info[id]!
            rows.append([id, Self.role(u.role), u.address] + answered.map { view in
                guard let seen = view.ack!.updates.first(where: { $0.memberID == id }) else { return "-" }
                return "\(Self.status(seen.status))#\(seen.incarnation)"
            })
        }
        Output.line(JobFormat.table(rows))
        for view in views where view.ack == nil { Output.line("\(view.shard): no answer") }
        var digests: [String: ShardDigest] = [:]
        for view in answered {
            for d in view.ack!.digests where (digests[d.shardID]?.version ?? 0) <= d.version { digests[d.shardID] = d }
        }
        if !digests.isEmpty {
            Output.line("")
            var drows = [["SHARD", "RACKS", "FREE GPUS", "QUEUED", "ROUND"]]
            for (id, d) in digests.sorted(by: { $0.key < $1.key }) {
                drows.append([
                    id, d.racks.joined(separator: ","), d.asks.map { "\($0.gpuType):\($0.freeGpus)" }.joined(separator: " "),
                    "\(d.queuedJobs)", "\(d.round)",
                ])
            }
            Output.line(JobFormat.table(drows))
        }
    }

    static func status(_ s: MemberStatus) -> String {
        switch s {
        case .alive: "alive"
        case .suspect: "suspect"
        case .dead: "dead"
        default: "unknown"
        }
    }

    static func role(_ r: MemberRole) -> String {
        switch r {
        case .shard: "shard"
        case .gateway: "gateway"
        case .agent: "agent"
        default: "-"
        }
    }
}
