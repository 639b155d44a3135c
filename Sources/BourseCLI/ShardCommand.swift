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

            Prints "shard shard-R listening on ADDR" once ready.

            Example:
              bourse shard --config cluster-configs/demo.yaml --rack r0 --policy fifo --epoch 1700000000
            """)

    @Option(help: ArgumentHelp("Cluster config (YAML).", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("Rack id this shard owns.", valueName: "id"))
    var rack: String

    @Option(help: ArgumentHelp("Scheduling policy: \(PolicyCatalog.allNames.joined(separator: ", ")).", valueName: "name"))
    var policy: String = "fifo"

    @Option(help: ArgumentHelp("Common epoch of the cluster clock, Unix seconds (default: now).", valueName: "seconds"))
    var epoch: Double?

    @Option(help: ArgumentHelp("Cluster clock speed-up (default: the config's).", valueName: "x"))
    var speedup: Double?

    @Option(help: "Seed of the SWIM instance.")
    var seed: UInt64 = 1

    @Option(name: .customLong("probe-period"), help: "SWIM probe period in wall seconds.")
    var probePeriod: Double = 0.5

    @Option(help: ArgumentHelp("Throughput table (default: the shipped data/gavel-throughputs.json).", valueName: "file"))
    var throughputs: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        if let speedup, !(speedup > 0) { throw ValidationError("--speedup must be positive") }
        if !(probePeriod > 0) { throw ValidationError("--probe-period must be positive") }
        if !PolicyCatalog.allNames.contains(policy) {
            throw ValidationError("unknown policy '\(policy)'; known: \(PolicyCatalog.allNames.joined(separator: ", "))")
        }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        LiveProcess.bootstrapLogging(level: logLevel)
        let logger = Logger(label: "bourse.shard.\(rack)")
        let cluster = try SimFiles.report { try ClusterConfig.load(path: config) }
        let table = try SimFiles.report { try ThroughputTable.load(path: try throughputs ?? SimFiles.defaultTablePath()) }
        let clock = WallClusterClock(epoch: epoch ?? Date().timeIntervalSince1970, speedup: speedup ?? cluster.speedup)
        var options = BourseShard.Shard.Options()
        options.seed = seed
        options.swim.probePeriod = probePeriod
        options.swim.probeTimeout = probePeriod * 0.4
        let shard = try BourseShard.Shard(
            cluster: cluster, rackID: rack, table: table, policy: policy, clock: clock, logger: logger, options: options)
        logger.info("cluster '\(cluster.name)', policy \(policy), round \(cluster.roundSeconds) s, speed-up \(clock.speedup)")
        Output.line("shard \(shard.shardID) listening on \(shard.address)")
        try await LiveProcess.runUntilSignal { try await shard.run() } onStop: { await shard.shutdown() }
    }
}
