import ArgumentParser
import BourseModel
import BourseSimulator
import BourseTransport
import BourseWire
import BourseWorkload
import Foundation

/// `bourse bench`: benchmarks that print figures. Wall-clock numbers on a shared machine are
/// noisy: compare ratios measured in one run, not figures across runs.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks: simulator speed, policy decision time, transport round trips.",
        discussion: "Build in release mode first (swift build -c release); debug builds are many times slower.",
        subcommands: [BenchSim.self, BenchPolicy.self, BenchTransport.self]
    )
}

/// Seconds elapsed since `start` on the continuous clock.
func secondsSince(_ start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

struct BenchSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulator speed: wall time and simulated events per second on the dev traces.",
        discussion: """
            Runs each shipped dev trace (data/traces) on its Gavel cluster under each policy and \
            prints wall time, simulated events and events per second.

            Example: bourse bench sim --policies fifo,gavel-las --json bench.json
            """)

    @Option(help: "Comma-separated policies.") var policies: String = "fifo,gavel-las,gavel-ftf"
    @Option(help: "Throughput mode: placement or consolidated.") var throughputMode: String = "placement"
    @Option(help: "Write the figures as JSON to this file ('-' for standard output).") var json: String?

    /// The dev traces and the clusters Gavel ran them on.
    static let devRuns: [(trace: String, cluster: String)] = [
        ("data/traces/dev-80-multi.trace", "cluster-configs/gavel-4-4-4.yaml"),
        ("data/traces/dev-80-single.trace", "cluster-configs/gavel-4-4-4.yaml"),
        ("data/traces/dev-120-static.trace", "cluster-configs/gavel-8-8-8.yaml"),
        ("data/traces/dev-300-multi.trace", "cluster-configs/gavel-12-12-12.yaml"),
    ]

    func run() async throws {
        guard let mode = ThroughputMode(rawValue: throughputMode) else {
            throw ValidationError("--throughput-mode must be placement or consolidated, got '\(throughputMode)'")
        }
        let root = URL(fileURLWithPath: try SimFiles.defaultTablePath()).deletingLastPathComponent()
            .deletingLastPathComponent()
        let table = try SimFiles.report { try ThroughputTable.load(path: root.appendingPathComponent(SimFiles.shippedTable).path) }
        var options = SimulationOptions()
        options.throughputMode = mode
        var rows: [[String: Any]] = []
        Output.line("trace                 cluster          policy           jobs  events   wall s   events/s")
        for (tracePath, clusterPath) in Self.devRuns {
            let cluster = try ClusterConfig.load(path: root.appendingPathComponent(clusterPath).path)
            let jobs = try SimFiles.report { try GavelTrace.load(path: root.appendingPathComponent(tracePath).path, table: table) }
            for policy in policies.split(separator: ",").map(String.init) {
                let simulation = try SimFiles.report {
                    try Simulation(trace: jobs, cluster: cluster, table: table, policy: policy, options: options)
                }
                let start = ContinuousClock.now
                let result = try SimFiles.report { try simulation.run() }
                let wall = secondsSince(start)
                let trace = URL(fileURLWithPath: tracePath).lastPathComponent
                Output.line(
                    trace.padding(toLength: 22, withPad: " ", startingAt: 0)
                        + cluster.name.padding(toLength: 17, withPad: " ", startingAt: 0)
                        + policy.padding(toLength: 15, withPad: " ", startingAt: 0)
                        + String(format: "%6d %7d %8.3f %10.0f", jobs.count, result.events, wall, Double(result.events) / wall))
                rows.append([
                    "trace": trace, "cluster": cluster.name, "policy": policy, "jobs": jobs.count,
                    "events": result.events, "wall_s": wall, "events_per_s": Double(result.events) / wall,
                ])
            }
        }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: ["throughput_mode": throughputMode, "runs": rows], options: [.prettyPrinted, .sortedKeys])
            try SimFiles.write(String(decoding: data, as: UTF8.self) + "\n", to: json)
        }
    }
}

struct BenchTransport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "Round trip and messages per second of Bourse frames over NNG request/reply.",
        discussion: """
            Starts a reply server in this process on the given address and measures round trips \
            with 1 request in flight, then throughput with many in flight (one NNG context each). \
            Frames are encoded and decoded with protobuf-c on both sides.

            Example: bourse bench transport --address ipc:///tmp/bench.sock --requests 20000
            """)

    @Option(help: "NNG URL to run on (tcp://127.0.0.1:PORT, ipc:///path).") var address: String = "ipc:///tmp/bourse-bench-transport.sock"
    @Option(help: "Requests per measurement.") var requests: Int = 10_000
    @Option(help: "Requests in flight for the throughput measurement.") var inFlight: Int = 32

    func run() async throws {
        let server = try ReplyServer(listening: address, options: SocketOptions())
        let serving = Task { try await server.serve(concurrency: inFlight) { frame in
            guard let request = try? WireCodec.decode(frame), case .ping(let ping) = request.body else { return [] }
            return (try? WireCodec.encode(Envelope(senderID: "bench", body: .ack(Ack(probeID: ping.probeID))))) ?? []
        } }
        defer { server.close(); serving.cancel() }
        let client = try RequestClient(dialing: address)
        defer { client.close() }
        let frame = try WireCodec.encode(Envelope(senderID: "bench", body: .ping(Ping(probeID: 1))))
        _ = try await client.request(frame, timeout: .seconds(5))  // connect

        var rtts: [Double] = []
        for _ in 0..<requests {
            let start = ContinuousClock.now
            _ = try WireCodec.decode(try await client.request(frame, timeout: .seconds(5)))
            rtts.append(secondsSince(start))
        }
        rtts.sort()
        let start = ContinuousClock.now
        let perWorker = max(1, requests / max(1, inFlight))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<inFlight {
                group.addTask { for _ in 0..<perWorker { _ = try await client.request(frame, timeout: .seconds(10)) } }
            }
            try await group.waitForAll()
        }
        let wall = secondsSince(start)
        Output.line(String(format: "%@: round trip p50 %.1f us, p99 %.1f us (1 in flight, %d requests)",
                           address, rtts[rtts.count / 2] * 1e6, rtts[rtts.count * 99 / 100] * 1e6, requests))
        Output.line(String(format: "%@: %.0f requests/s with %d in flight (%d requests in %.2f s)",
                           address, Double(perWorker * inFlight) / wall, inFlight, perWorker * inFlight, wall))
    }
}
