import ArgumentParser
import BourseGateway
import BourseModel
import BourseTransport
import BourseWorkload
import Foundation
import Logging

/// `bourse gateway`: the durable job store and the client API.
struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the gateway process: accepts, stores and answers for jobs (durable SQLite job store).",
        discussion: """
            Clients (bourse submit/jobs/status/cancel) and shards talk to the gateway over NNG \
            request/reply with protobuf-c frames. A submission is validated against the throughput \
            table, written to the store (SQLite, WAL, synchronous=FULL) and only then acknowledged, \
            so acknowledged jobs survive a crash (SIGKILL included) and a restart on the same store. \
            Each job gets a home shard: the rack shard of the config with the fewest unfinished jobs.

            Prints "gateway listening on ADDR, store PATH" once ready; logs its decisions on stderr. \
            Garbage frames are answered with a MALFORMED error, counted and logged; the gateway lives on.

            With a cluster key (the config's security section, or BOURSE_CLUSTER_KEY) every request \
            must carry a valid HMAC and a fresh sequence, else it is answered UNAUTHORIZED and \
            counted; with security.tenants every client request needs a tenant token and sees \
            only its tenant's jobs.

            Examples:
              bourse gateway --config cluster-configs/demo.yaml
              bourse gateway --config cluster-configs/demo.yaml --db /tmp/demo.db
              bourse gateway --config cluster-configs/demo.yaml \\
                  --listen ipc:///tmp/bourse-gw.sock --log-level debug
            """)

    @Option(help: ArgumentHelp("Cluster config (YAML): its racks' shards are the home shards; its gateway address is the default --listen.", valueName: "file"))
    var config: String

    @Option(help: ArgumentHelp("SQLite job store; created if missing (default: <cluster name>-gateway.db in the working directory).", valueName: "path"))
    var db: String?

    @Option(help: ArgumentHelp("NNG URL to listen on (default: the config's gateway address).", valueName: "addr"))
    var listen: String?

    @Option(help: ArgumentHelp("Throughput table in Gavel's JSON format (default: the shipped data/gavel-throughputs.json).", valueName: "file"))
    var throughputs: String?

    @Option(help: ArgumentHelp("Common epoch of the cluster clock, Unix seconds (default: now). Job times are stamped on the cluster clock, like the shards' reports.", valueName: "seconds"))
    var epoch: Double?

    @Option(help: ArgumentHelp("Cluster clock speed-up over the wall clock (default: 1, the wall clock; `bourse up` passes the cluster's).", valueName: "x"))
    var speedup: Double?

    @Option(help: "Requests handled concurrently by the listener (NNG contexts).")
    var concurrency: Int = 16

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    func validate() throws {
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let speedup, !(speedup > 0) { throw ValidationError("--speedup must be positive") }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        LiveProcess.bootstrapLogging(level: logLevel)
        let logger = Logger(label: "bourse.gateway")
        let cluster = try SimFiles.report { try ClusterConfig.load(path: config) }
        let clusterKey = try ClusterSecurity.key(cluster.security)
        ClusterSecurity.announce(clusterKey, cluster.security, logger: logger)
        let tenants = ClusterSecurity.tenants(cluster)
        if let tenants {
            logger.notice("tenants: \(tenants.tenantNames.joined(separator: ", ")); client requests need a tenant token")
            if clusterKey == nil {
                logger.warning("tenant tokens without a cluster key: sender ids are not authenticated, so a client can pose as a shard and list every job")
            }
        }
        let tablePath = try throughputs ?? SimFiles.defaultTablePath()
        let table = try SimFiles.report { try ThroughputTable.load(path: tablePath) }
        let storePath = db ?? "\(cluster.name)-gateway.db"
        let address = listen ?? cluster.gateway.address

        let store: JobStore
        do {
            store = try JobStore(path: storePath)
        } catch {
            let hint = error.isBusy ? " (another gateway has this store open)" : ""
            throw GatewayClientError("cannot open the job store \(storePath)\(hint): \(error)")
        }
        var settings = BourseGateway.Gateway.settings(cluster: cluster, catalog: JobCatalog(table: table))
        // SWIM incarnation: the start time in ms, so a restarted gateway is alive above its last life.
        settings.swimIncarnation = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let clusterClock = WallClusterClock(epoch: epoch ?? Date().timeIntervalSince1970, speedup: speedup ?? 1)
        let gateway = try BourseGateway.Gateway(
            settings: settings, store: store, clock: { clusterClock.now }, logger: logger, clusterKey: clusterKey,
            tenants: tenants)
        let server: ReplyServer
        do {
            server = try ReplyServer(listening: address)
        } catch {
            let hint = error.isAddressInUse ? " (is another gateway running there?)" : ""
            throw GatewayClientError("cannot listen on \(address)\(hint): \(error)")
        }
        let jobs = await gateway.jobCount
        logger.info(
            "cluster '\(cluster.name)': home shards \(settings.shards.joined(separator: ", ")); \(jobs) jobs in the store; table \(tablePath)")
        Output.line("gateway listening on \(address), store \(storePath)")
        try await gateway.serve(server, concurrency: concurrency)
    }
}
