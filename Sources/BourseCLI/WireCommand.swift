import ArgumentParser
import BourseModel
import BourseTransport
import BourseWire
import BourseWorkload
import Foundation
import Synchronization

/// `bourse wire`: talk Bourse's protocol by hand. Useful to check that two hosts can reach each
/// other, to measure round trips, and to show that a process survives garbage on its sockets.
struct Wire: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Diagnostics: send and receive Bourse frames (protobuf-c over NNG).",
        discussion: """
            Every frame is one bourse.Envelope (proto/bourse.proto). Addresses are NNG URLs:
            tcp://127.0.0.1:7710, ipc:///tmp/bourse.sock, inproc://name.

            Examples:
              bourse wire serve --listen tcp://127.0.0.1:7710 &
              bourse wire ping tcp://127.0.0.1:7710 --count 100
              bourse wire ping --config cluster-configs/demo.yaml     # every shard of a cluster
              bourse wire fuzz tcp://127.0.0.1:7710 --frames 2000 --seed 7
            """,
        subcommands: [WireServe.self, WirePing.self, WireFuzz.self, WirePush.self, WireSink.self]
    )
}

/// Parses an optional millisecond option into a Duration.
private func milliseconds(_ value: Int) -> Duration { .milliseconds(value) }

struct WireServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Answer Bourse frames on an address: a ping gets an ack, anything else an error reply.",
        discussion: """
            Malformed frames are counted, logged on stderr and answered with an Error envelope \
            (code MALFORMED); the process keeps serving. Prints "serving on URL" once listening.
            """)

    @Option(help: "NNG URL to listen on (request/reply).") var listen: String
    @Option(help: "Member id this process answers as.") var id: String = "wire-server"
    @Option(help: "Exit after this many requests (0: serve until killed).") var maxRequests: Int = 0

    func run() async throws {
        let server = try ReplyServer(listening: listen)
        let stats = ServeStats()
        let id = self.id
        let limit = maxRequests
        Output.line("serving on \(listen) as \(id)")
        try await server.serve { frame in
            let reply = Self.answer(frame, id: id, stats: stats)
            if limit > 0, stats.requests >= limit { server.close() }
            return reply
        }
        Output.line("served \(stats.requests) requests, \(stats.malformed) malformed")
    }

    static func answer(_ frame: [UInt8], id: String, stats: ServeStats) -> [UInt8] {
        let sequence = stats.nextRequest()
        let reply: Envelope.Body
        do {
            let request = try WireCodec.decode(frame)
            switch request.body {
            case .ping(let ping):
                reply = .ack(Ack(probeID: ping.probeID, targetID: id))
            default:
                reply = .error(WireErrorMessage(
                    code: .invalid, message: "\(id) answers only ping, got \(request.body.kindName)"))
            }
        } catch {
            let count = stats.countMalformed()
            Output.error("\(id): dropped malformed frame #\(count) (\(frame.count) bytes): \(error)")
            reply = .error(WireErrorMessage(code: .malformed, message: error.description))
        }
        // Replies are small and well-formed; failing to encode one would be a bug in the codec.
        return (try? WireCodec.encode(Envelope(senderID: id, sequence: sequence, body: reply))) ?? []
    }
}

/// Counters shared by the serving contexts.
final class ServeStats: Sendable {
    private let counters = Mutex<(requests: Int, malformed: Int)>((0, 0))
    var requests: Int { counters.withLock { $0.requests } }
    var malformed: Int { counters.withLock { $0.malformed } }
    func nextRequest() -> UInt64 { counters.withLock { $0.requests += 1; return UInt64($0.requests) } }
    func countMalformed() -> Int { counters.withLock { $0.malformed += 1; return $0.malformed } }
}

struct WirePing: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Send pings to one or more addresses and report round-trip times.",
        discussion: "Exit status 1 when a target answered none of its pings.")

    @Argument(help: "NNG URLs to ping.") var targets: [String] = []
    @Option(help: "Ping every rack shard address of this cluster config too.") var config: String?
    @Option(help: "Pings per target.") var count: Int = 10
    @Option(name: .customLong("timeout-ms"), help: "Timeout of one ping in milliseconds.") var timeoutMs: Int = 2000
    @Option(help: "Sender id written into the envelopes.") var id: String = "wire-ping"

    func validate() throws {
        if targets.isEmpty && config == nil { throw ValidationError("give at least one URL or --config FILE") }
        if count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        var all = targets
        if let config {
            let cluster = try ClusterConfig.load(path: config)
            all += cluster.racks.map(\.shardAddress)
        }
        var failed = false
        let width = max(6, all.map(\.count).max() ?? 0)
        Output.line("target".padding(toLength: width, withPad: " ", startingAt: 0) + "  sent  acked   p50 ms   max ms  error")
        for target in all {
            let result = await ping(target)
            failed = failed || result.acked == 0
            let p50 = result.rtts.isEmpty ? "-" : String(format: "%.3f", result.rtts.sorted()[result.rtts.count / 2] * 1000)
            let max = result.rtts.max().map { String(format: "%.3f", $0 * 1000) } ?? "-"
            Output.line(
                target.padding(toLength: width, withPad: " ", startingAt: 0)
                    + String(format: "  %4d  %5d  %7@  %7@  %@", count, result.acked, p50, max, result.error ?? ""))
        }
        if failed { throw ExitCode(1) }
    }

    private func ping(_ target: String) async -> (acked: Int, rtts: [Double], error: String?) {
        var rtts: [Double] = []
        var lastError: String?
        do {
            let client = try RequestClient(dialing: target)
            defer { client.close() }
            for probe in 1...count {
                let frame = try WireCodec.encode(Envelope(senderID: id, sequence: UInt64(probe), body: .ping(Ping(probeID: UInt64(probe)))))
                let start = ContinuousClock.now
                do {
                    let reply = try WireCodec.decode(try await client.request(frame, timeout: milliseconds(timeoutMs)))
                    guard case .ack(let ack) = reply.body, ack.probeID == UInt64(probe) else {
                        lastError = "unexpected reply \(reply.body.kindName)"
                        continue
                    }
                    let elapsed = ContinuousClock.now - start
                    rtts.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                } catch {
                    lastError = "\(error)"
                }
            }
        } catch {
            lastError = "\(error)"
        }
        return (rtts.count, rtts, rtts.count == count ? nil : lastError)
    }
}

struct WireFuzz: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Throw seeded garbage at a Bourse endpoint, then check it still answers a ping.",
        discussion: """
            Frames are random bytes, valid envelopes truncated or bit-flipped, and oversize \
            frames. Exit status 0 only if the target still answers a ping afterwards.
            """)

    @Argument(help: "NNG URL of the target (request/reply).") var target: String
    @Option(help: "Number of bad frames to send.") var frames: Int = 1000
    @Option(help: "Seed of the frame generator.") var seed: UInt64 = 1
    @Option(name: .customLong("timeout-ms"), help: "Wait for each reply at most this long.") var timeoutMs: Int = 500

    func run() async throws {
        var random = SeededRandom(seed: seed)
        let valid = try WireCodec.encode(Envelope(
            senderID: "fuzz", sequence: 1,
            body: .submitJob(SubmitJob(spec: JobSpec(jobType: "ResNet-18 (batch size 32)", totalSteps: 1000, workers: 2)))))
        var answered = 0
        var errorReplies = 0
        var unanswered = 0
        var oversize = 0
        let client = try RequestClient(dialing: target)
        // Oversize frames go out on sockets of their own: the receiver drops the connection that
        // carried one, and NNG 1.5's REQ socket does not always recover from that. They stay open
        // until the end, since closing sockets in a loop exposes an NNG close race (see Socket).
        var oversizeClients: [RequestClient] = []
        defer {
            client.close()
            oversizeClients.forEach { $0.close() }
        }
        for i in 0..<frames {
            var frame: [UInt8]
            switch i % 4 {
            case 0: frame = (0..<random.nextInt(below: 256)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case 1: frame = Array(valid.prefix(random.nextInt(below: valid.count)))
            case 2:
                frame = valid
                let bit = random.nextInt(below: frame.count * 8)
                frame[bit / 8] ^= UInt8(1 << (bit % 8))
            default:
                if i % 100 == 3 {
                    oversize += 1
                    let big = try RequestClient(dialing: target)
                    oversizeClients.append(big)
                    _ = try? await big.request([UInt8](repeating: 0xAB, count: 8 << 20), timeout: milliseconds(timeoutMs))
                    continue
                }
                frame = valid + [0xFF, 0xFF, 0xFF]
            }
            do {
                let reply = try WireCodec.decode(try await client.request(frame, timeout: milliseconds(timeoutMs)))
                answered += 1
                if case .error = reply.body { errorReplies += 1 }
            } catch {
                unanswered += 1
            }
        }
        let ping = try WireCodec.encode(Envelope(senderID: "fuzz", sequence: 2, body: .ping(Ping(probeID: 99))))
        let alive: Bool
        do {
            let reply = try WireCodec.decode(try await client.request(ping, timeout: .seconds(5)))
            if case .ack(let ack) = reply.body, ack.probeID == 99 { alive = true } else { alive = false }
        } catch {
            alive = false
        }
        Output.line(
            "sent \(frames) bad frames: \(oversize) oversize (dropped by the receive limit), "
                + "\(answered) answered (\(errorReplies) with an error reply), \(unanswered) unanswered")
        Output.line(alive ? "target still answers pings: ok" : "target no longer answers pings: FAILED")
        if !alive || unanswered > 0 { throw ExitCode(1) }
    }
}

struct WirePush: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Send pings one-way (the gossip pattern) to an inbox started with 'bourse wire sink'.")

    @Argument(help: "NNG URL of the inbox.") var target: String
    @Option(help: "Frames to send.") var count: Int = 100
    @Option(help: "Sender id written into the envelopes.") var id: String = "wire-push"
    @Option(
        name: .customLong("linger-ms"),
        help: "Wait this long after the last send before closing: a send returns once NNG has queued the frame, and NNG drops frames still queued when the socket closes.")
    var lingerMs: Int = 500

    func run() async throws {
        let sender = try PushSender(dialing: target)
        defer { sender.close() }
        for i in 1...max(count, 1) {
            let frame = try WireCodec.encode(Envelope(senderID: id, sequence: UInt64(i), body: .ping(Ping(probeID: UInt64(i)))))
            try await sender.send(frame, timeout: .seconds(5))
        }
        try await Task.sleep(for: .milliseconds(max(lingerMs, 0)))
        Output.line("sent \(count) frames to \(target)")
    }
}

struct WireSink: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "A one-way inbox: count the Bourse frames pushed to it.",
        discussion: "Prints \"listening on URL\" once ready, then one summary line when done.")

    @Option(help: "NNG URL to listen on (pull).") var listen: String
    @Option(help: "Exit after this many valid frames.") var expect: Int = 100
    @Option(name: .customLong("timeout-ms"), help: "Give up after this long without a frame.") var timeoutMs: Int = 10_000

    func run() async throws {
        let inbox = try PullReceiver(listening: listen)
        defer { inbox.close() }
        Output.line("listening on \(listen)")
        var valid = 0
        var malformed = 0
        var inOrder = true
        while valid < expect {
            let frame: [UInt8]
            do {
                frame = try await inbox.receive(timeout: milliseconds(timeoutMs))
            } catch {
                Output.line("received \(valid) valid frames, \(malformed) malformed, then: \(error)")
                throw ExitCode(1)
            }
            do {
                let envelope = try WireCodec.decode(frame)
                valid += 1
                if envelope.sequence != UInt64(valid) { inOrder = false }
            } catch {
                malformed += 1
                Output.error("dropped malformed frame #\(malformed): \(error)")
            }
        }
        Output.line("received \(valid) valid frames, \(malformed) malformed, \(inOrder ? "in order" : "out of order")")
    }
}
