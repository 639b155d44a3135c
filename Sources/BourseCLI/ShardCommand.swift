import ArgumentParser
import BoursePolicy
import BourseModel
import BourseShard
import BourseWorkload
import Foundation
import Logging

/// `bourse shard`: the scheduler of one rack.
struct Shard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shard",
        abstract: "Run the scheduler shard of one rack: plans its home jobs every round on the rack's GPUs.",
        discussion: """
            Owns the GPUs of the rack (the only process that commands them). Every round it polls \
            the gateway for unfinished jobs whose home shard it is, plans them with the policy \
            (Gavel's round mechanism, or Bourse's planner), sends start / stop commands to the \
            rack's agent and reports running / preempted / completed transitions to the gateway. \
            Takes part in SWIM membership with the other shards and the gateway (probe period \
            0.5 s of wall time).

            With policy bourse on a cluster of several racks, shards trade GPUs (docs/trading.md): \
            every round opens a short market (~0.12 s of wall time, at most 30 % of a round) in \
            which a home job that would gain from another rack's GPUs bids for them and the \
            owner accepts when the bid beats its own price; the owner then runs the job's \
            workers on a lease. Each round's market is summarised in the log ("market round N"). \
            A job that runs on one other rack's lease alone is handed over to that rack's shard, \
            which schedules it from then on as its own (no renewal to win each round); \
            --no-rehome keeps it at its home. --no-trading keeps every job on its home rack.

            Prints "shard shard-R listening on ADDR" once ready.

            Example:
              bourse shard --config cluster-configs/demo.yaml --rack r0 --policy fifo --epoch 1700000000
            """)


    @OptionGroup var live: LiveProcessOptions

    @Option(help: ArgumentHelp("Rack id this shard owns.", valueName: "id"))
    var rack: String

    @Option(help: ArgumentHelp("Scheduling policy: \(PolicyCatalog.allNames.joined(separator: ", ")).", valueName: "name"))
    var policy: String = "bourse"



    @Option(help: "Seed of the SWIM instance.")
    var seed: UInt64 = 1

    @Option(name: .customLong("probe-period"), help: "SWIM probe period in wall seconds.")
    var probePeriod: Double = 0.5

    @Flag(name: .customLong("no-trading"), help: "Do not trade GPUs with the other racks' shards (policy bourse only trades).")
    var noTrading = false

    @Flag(name: .customLong("no-rehome"), help: "Keep a job that runs on another rack's lease at its home shard, which renews the lease every round.")
    var noRehome = false



    func validate() throws {
        if !(probePeriod > 0) { throw ValidationError("--probe-period must be positive") }
        if !PolicyCatalog.allNames.contains(policy) {
            throw ValidationError("unknown policy '\(policy)'; known: \(PolicyCatalog.allNames.joined(separator: ", "))")
        }
    }

    func run() async throws {
        let (logger, cluster, table, clock) = try live.prepare(label: "bourse.shard.\(rack)")
        let clusterKey = try ClusterSecurity.key(cluster.security)
        ClusterSecurity.announce(clusterKey, cluster.security, logger: logger)
        if let rackSpec = cluster.racks.first(where: { $0.id == rack }) { try live.enableChaos(process: rackSpec.shardID, clock: clock) }
        var options = BourseShard.Shard.Options()
        options.seed = seed
        options.swim.probePeriod = probePeriod
        options.swim.probeTimeout = probePeriod * 0.4
        options.trading.enabled = !noTrading
        options.trading.rehome = !noRehome
        let shard = try BourseShard.Shard(
            cluster: cluster, rackID: rack, table: table, policy: policy, clock: clock, logger: logger, options: options,
            clusterKey: clusterKey)
        let trading = await shard.trading ? "on" : "off"
        logger.info(
            "cluster '\(cluster.name)', policy \(policy), round \(cluster.roundSeconds) s, speed-up \(clock.speedup), trading \(trading)")
        Output.line("shard \(shard.shardID) listening on \(shard.address)")
        try await LiveProcess.runUntilSignal { try await shard.run() } onStop: { await shard.shutdown() }
    }
}
