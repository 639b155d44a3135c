import ArgumentParser
import BourseAudit
import BourseModel
import BourseTransport
import BourseWorkload
import Dispatch
import Foundation
import Logging

/// Shared plumbing of the long-running live-cluster processes (agent, shard).
enum LiveProcess {
    static func bootstrapLogging(level: String) {
        let level = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Runs `body` until it returns or the process gets SIGTERM / SIGINT; then runs `onStop`.
    static func runUntilSignal(
        _ body: @escaping @Sendable () async throws -> Void, onStop: @escaping @Sendable () async -> Void
    ) async throws {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        let (signals, continuation) = AsyncStream<Int32>.makeStream()
        let sources = [SIGTERM, SIGINT].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask {
                for await _ in signals { return }
            }
            try await group.next()
            group.cancelAll()
        }
        await onStop()
    }
}

/// Options every live-cluster process (shard, agent) takes, and what they resolve to.
struct LiveProcessOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Cluster config (YAML).", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("Common epoch of the cluster clock, Unix seconds (default: now).", valueName: "seconds"))
    var epoch: Double?

    @Option(help: ArgumentHelp("Cluster clock speed-up (default: the config's).", valueName: "x"))
    var speedup: Double?

    @Option(help: ArgumentHelp("Throughput table (default: the shipped data/gavel-throughputs.json).", valueName: "file"))
    var throughputs: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("audit-log"), help: ArgumentHelp("Chaos: append worker/command/lease events to this JSON-lines audit log.", valueName: "file"))
    var auditLog: String?

    @Option(name: .customLong("fault-plan"), help: ArgumentHelp("Chaos: poll this fault plan (JSON) and fault outgoing requests by it.", valueName: "file"))
    var faultPlan: String?

    /// Opens the audit log and starts the fault plan poller when asked to.
    func enableChaos(process: String, clock: WallClusterClock) throws {
        if let auditLog {
            let clock = clock
            try AuditLog.configure(path: auditLog, process: process) { clock.now }
        }
        if let faultPlan { FaultInjection.enable(process: process, planPath: faultPlan) }
    }

    func validate() throws {
        if let speedup, !(speedup > 0) { throw ValidationError("--speedup must be positive") }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    /// Starts logging and loads the cluster, the table and the clock.
    func prepare(label: String) throws -> (logger: Logger, cluster: ClusterConfig, table: ThroughputTable, clock: WallClusterClock) {
        LiveProcess.bootstrapLogging(level: logLevel)
        let cluster = try SimFiles.report { try ClusterConfig.load(path: config) }
        let table = try SimFiles.report { try ThroughputTable.load(path: try throughputs ?? SimFiles.defaultTablePath()) }
        let clock = WallClusterClock(epoch: epoch ?? Date().timeIntervalSince1970, speedup: speedup ?? cluster.speedup)
        return (Logger(label: label), cluster, table, clock)
    }
}
