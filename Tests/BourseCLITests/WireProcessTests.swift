import Foundation
import Testing

/// Two real `bourse` processes exchange protobuf-c frames over NNG, on TCP loopback and on IPC.
@Suite("bourse wire between processes", .serialized)
struct WireProcessTests {
    static let addresses: [String] = ["tcp", "ipc"]

    private func address(_ kind: String, _ name: String) -> String {
        kind == "tcp" ? "tcp://127.0.0.1:\(freeLoopbackPort())" : uniqueIPCAddress(name)
    }

    @Test("request/reply: pings from one process are acked by another", arguments: addresses)
    func requestReply(kind: String) async throws {
        let url = address(kind, "rr")
        let server = try BourseProcess(["wire", "serve", "--listen", url, "--id", "shard-test"])
        #expect(await server.waitForOutput("serving on \(url)"), "server did not start: \(server.stderr)")
        let client = try BourseProcess(["wire", "ping", url, "--count", "50"])
        let result = await client.wait(timeout: .seconds(30))
        #expect(result.status == 0, "ping failed: \(result.stdout) \(result.stderr)")
        // One row per target: URL, sent, acked.
        let row = result.stdout.split(separator: "\n").first { $0.hasPrefix(url) }.map(String.init) ?? ""
        let columns = row.split(separator: " ")
        #expect(columns.count >= 3 && columns[1] == "50" && columns[2] == "50", "row: \(row)")
    }

    @Test("one-way push/pull (the gossip pattern) delivers every frame in order", arguments: addresses)
    func pushPull(kind: String) async throws {
        let url = address(kind, "pp")
        let sink = try BourseProcess(["wire", "sink", "--listen", url, "--expect", "500"])
        #expect(await sink.waitForOutput("listening on \(url)"), "sink did not start: \(sink.stderr)")
        let push = try BourseProcess(["wire", "push", url, "--count", "500"])
        let pushed = await push.wait(timeout: .seconds(30))
        #expect(pushed.status == 0, "push failed: \(pushed.stderr)")
        let received = await sink.wait(timeout: .seconds(30))
        #expect(received.status == 0, "sink failed: \(received.stdout) \(received.stderr)")
        #expect(received.stdout.contains("received 500 valid frames, 0 malformed, in order"), "\(received.stdout)")
    }

    @Test("garbage frames are counted and answered with errors; the process lives on")
    func garbageDoesNotKill() async throws {
        let url = address("tcp", "fuzz")
        let server = try BourseProcess(["wire", "serve", "--listen", url])
        #expect(await server.waitForOutput("serving on"), "server did not start: \(server.stderr)")
        let fuzz = try BourseProcess(["wire", "fuzz", url, "--frames", "2000", "--seed", "42"])
        let result = await fuzz.wait(timeout: .seconds(90))
        #expect(result.status == 0, "fuzz: \(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("target still answers pings: ok"), "\(result.stdout)")
        #expect(server.process.isRunning)
        // Frames that did not decode were logged one by one (a bit flip may still decode into a
        // valid envelope, which gets an "invalid" reply instead, so not all 2,000 are malformed).
        let logged = server.stderr.split(separator: "\n").filter { $0.contains("dropped malformed frame") }.count
        #expect(logged > 1000, "server logged \(logged) malformed frames")
        // And a fresh process is still served.
        let ping = try runBourse(["wire", "ping", url, "--count", "3"])
        #expect(ping.status == 0, "\(ping.stdout)")
    }

    @Test("a ping to an address nobody serves fails with a clear timeout and exit status 1")
    func unreachable() async throws {
        let result = try runBourse(["wire", "ping", uniqueIPCAddress("nobody"), "--count", "1", "--timeout-ms", "200"])
        #expect(result.status == 1)
        #expect(result.stdout.lowercased().contains("timed out"), "\(result.stdout)")
    }
}
