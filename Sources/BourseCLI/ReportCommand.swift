import ArgumentParser
import BourseModel
import BourseSimulator
import BourseWire
import Foundation

/// `bourse report`: the simulator's metrics for a live cluster, from the gateway's records.
struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Metrics of a live cluster (JCT, makespan, restarts, outcomes), from the gateway's store.",
        discussion: """
            Reads every job from the gateway and computes the metrics of `bourse sim` that its \
            records support, on the cluster clock: JCT = finish - submission (a replayed trace \
            submits each job at its arrival), average/median/p95/p99 over completed jobs, \
            makespan = last finish - first submission, restarts. The keys of `bourse sim --json` \
            that need the GPUs' timelines (utilization, ftf_*, lr_max, fragmentation) are null \
            and listed under "not_measured". Adds the counts completed, failed, cancelled, pending \
            (pending = not finished yet).

            When the shards trade (policy bourse), a "trading" object sums the counters each shard \
            gossips in its digest (asked of every shard of the config): offers, accepts, rejects, \
            leases, messages per round, trading phases per round. objective_ratio_mean is null: a \
            live cluster has no central optimum to compare with (see `bourse sim --shards`).

            Examples:
              bourse report                      # the last `bourse up`
              bourse report --run-dir /tmp/g444 --json
            """)

    @OptionGroup var connection: GatewayOptions
    @Flag(help: "Print JSON instead of a summary.") var json = false

    func run() async throws {
        let client = try connection.connect()
        defer { client.close() }
        let reply = try await client.call(.listJobsRequest(ListJobsRequest()))
        guard case .listJobsReply(let list) = reply else { throw GatewayClient.unexpected(reply, wanted: "list_jobs_reply") }
        let run = connection.runState()
        let summary = LiveSummary(jobs: list.jobs)
        let trading = await tradingTotals()
        if json {
            var fields: [String: Any] = summary.fields
            fields["policy"] = run?.policy ?? NSNull()
            fields["cluster"] = run?.cluster ?? NSNull()
            fields["trace"] = NSNull()
            fields["trading"] = trading.map(Self.tradingFields) ?? NSNull()
            let data = try JSONSerialization.data(withJSONObject: fields, options: [.prettyPrinted, .sortedKeys])
            Output.line(String(decoding: data, as: UTF8.self))
            return
        }
        if let run { Output.line("cluster \(run.cluster), policy \(run.policy), speed-up \(run.speedup)") }
        Output.line(
            "jobs          \(list.jobs.count): \(summary.completed) completed, \(summary.failed) failed, "
                + "\(summary.cancelled) cancelled, \(summary.pending) not finished")
        guard !summary.jcts.isEmpty else { return }
        func h(_ s: Double) -> String { String(format: "%.0f s (%.2f h)", s, s / 3600) }
        Output.line("JCT           avg \(h(summary.avg))  median \(h(summary.p(0.5)))  p95 \(h(summary.p(0.95)))  p99 \(h(summary.p(0.99)))")
        Output.line("makespan      \(h(summary.makespan))")
        Output.line("restarts      \(summary.restarts)")
        if let trading {
            let f = Self.tradingFields(trading)
            Output.line(
                "trading       \(f["offers"]!) offers, \(f["accepts"]!) accepted, \(f["rejects"]!) rejected; "
                    + "\(f["leases_granted"]!) leases granted (\(f["leases_held"]!) held now); "
                    + String(format: "%.1f messages and %.1f phases per round", f["messages_per_round"] as! Double, f["phases_per_round_mean"] as! Double))
        }
    }

    /// Every trading shard's counters, from the newest digest of each that any shard of the
    /// config knows (nil: no config known, no shard answered, or none trades).
    private func tradingTotals() async -> [String: TradingTotals]? {
        guard let path = connection.config ?? connection.runState()?.config,
              let cluster = try? ClusterConfig.load(path: path) else { return nil }
        let key = (try? connection.clusterKey()) ?? nil
        var newest: [String: ShardDigest] = [:]
        for rack in cluster.racks {
            guard let reply = await LiveQuery.ask(rack.shardAddress, .ping(Ping(probeID: 0)), timeout: .milliseconds(1000), key: key),
                  case .ack(let ack) = reply.body else { continue }
            for d in ack.digests where (newest[d.shardID]?.version ?? 0) <= d.version { newest[d.shardID] = d }
        }
        let totals = newest.compactMapValues(\.trading)
        return totals.isEmpty ? nil : totals
    }

    /// The `trading` object: the keys of `bourse sim --json`'s that a live cluster measures.
    static func tradingFields(_ shards: [String: TradingTotals]) -> [String: Any] {
        let all = Array(shards.values)
        func sum(_ f: (TradingTotals) -> UInt64) -> Int { Int(all.reduce(0) { $0 + f($1) }) }
        let rounds = max(1, all.map { Int($0.rounds) }.max() ?? 1)
        let shardRounds = max(1, sum(\.rounds))
        return [
            "shards": all.count, "rounds": rounds, "offers": sum(\.offersSent), "accepts": sum(\.accepts),
            "rejects": sum(\.rejects), "leases_granted": sum(\.leasesGranted), "leases_ended": sum(\.leasesEnded),
            "leases_held": sum { UInt64($0.leasesHeld) }, "guests": sum { UInt64($0.guests) }, "messages": sum(\.messagesSent),
            "messages_per_round": Double(sum(\.messagesSent)) / Double(rounds),
            "phases_per_round_mean": Double(sum(\.phases)) / Double(shardRounds),
            "objective_ratio_mean": NSNull(),
        ]
    }
}

/// The metrics a gateway's job records support.
struct LiveSummary {
    var jcts: [Double] = []
    var completed = 0, failed = 0, cancelled = 0, pending = 0
    var restarts = 0
    var makespan = 0.0

    init(jobs: [JobStatus]) {
        var firstSubmit = Double.infinity
        var lastFinish = -Double.infinity
        for job in jobs {
            restarts += Int(job.restarts)
            firstSubmit = min(firstSubmit, job.submittedAt)
            switch job.state {
            case .completed:
                completed += 1
                jcts.append(job.finishedAt - job.submittedAt)
                lastFinish = max(lastFinish, job.finishedAt)
            case .failed: failed += 1
            case .cancelled: cancelled += 1
            default: pending += 1
            }
        }
        jcts.sort()
        makespan = lastFinish > firstSubmit ? lastFinish - firstSubmit : 0
    }

    var avg: Double { jcts.isEmpty ? 0 : jcts.reduce(0, +) / Double(jcts.count) }
    func p(_ q: Double) -> Double { percentile(jcts, q) }

    var fields: [String: Any] {
        let unmeasured = ["utilization", "ftf_max", "ftf_mean", "lr_max", "fragmentation"]
        var out: [String: Any] = [
            "jobs": completed + failed + cancelled + pending,
            "completed": completed, "failed": failed, "cancelled": cancelled, "pending": pending,
            "avg_jct_s": avg, "median_jct_s": p(0.5), "p95_jct_s": p(0.95), "p99_jct_s": p(0.99),
            "makespan_s": makespan, "restarts": restarts, "not_measured": unmeasured,
        ]
        for key in unmeasured { out[key] = NSNull() }
        return out
    }
}
