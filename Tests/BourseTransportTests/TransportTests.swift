import Foundation
import XCTest

@testable import BourseTransport

/// Unique endpoints per test so tests may run in parallel and re-run after a crash.
enum Endpoints {
    static func ipc(_ name: String) -> String {
        "ipc://\(NSTemporaryDirectory())bourse-test-\(getpid())-\(name)-\(UInt32.random(in: 0...UInt32.max)).sock"
    }
    static func inproc(_ name: String) -> String { "inproc://\(name)-\(UUID().uuidString)" }
    /// A loopback port the kernel just handed out (bound and released), so collisions are unlikely.
    static func tcp() -> String { "tcp://127.0.0.1:\(freePort())" }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

final class TransportTests: XCTestCase {
    /// Starts an echo server that prefixes replies with "re:" and returns it with its serving task.
    private func echoServer(_ url: String, options: SocketOptions = .default) throws -> (ReplyServer, Task<Void, Error>) {
        let server = try ReplyServer(listening: url, options: options)
        let task = Task { try await server.serve { Array("re:".utf8) + $0 } }
        return (server, task)
    }

    func testRequestReplyRoundTripOverEveryTransport() async throws {
        for url in [Endpoints.inproc("rr"), Endpoints.ipc("rr"), Endpoints.tcp()] {
            let (server, serving) = try echoServer(url)
            let client = try RequestClient(dialing: url)
            let reply = try await client.request(Array("hello".utf8), timeout: .seconds(5))
            XCTAssertEqual(String(decoding: reply, as: UTF8.self), "re:hello", url)
            client.close()
            server.close()
            try await serving.value  // serve returns normally once closed
        }
    }

    func testManyConcurrentRequestsEachGetTheirOwnReply() async throws {
        let url = Endpoints.ipc("concurrent")
        let (server, serving) = try echoServer(url)
        let client = try RequestClient(dialing: url)
        let replies = try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for i in 0..<200 {
                group.addTask {
                    let reply = try await client.request(Array("\(i)".utf8), timeout: .seconds(10))
                    return (i, String(decoding: reply, as: UTF8.self))
                }
            }
            var all: [Int: String] = [:]
            for try await (i, reply) in group { all[i] = reply }
            return all
        }
        XCTAssertEqual(replies.count, 200)
        for (i, reply) in replies { XCTAssertEqual(reply, "re:\(i)") }
        client.close()
        server.close()
        try await serving.value
    }

    func testRequestWithoutServerTimesOut() async throws {
        let client = try RequestClient(dialing: Endpoints.ipc("nobody"))
        let start = ContinuousClock.now
        do {
            _ = try await client.request([1, 2, 3], timeout: .milliseconds(200))
            XCTFail("expected a timeout")
        } catch {
            XCTAssertTrue(error.isTimeout, "\(error)")
            XCTAssertTrue(error.description.lowercased().contains("timed out"), error.description)
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        client.close()
    }

    func testCancellingTheTaskCancelsTheRequest() async throws {
        let client = try RequestClient(dialing: Endpoints.ipc("cancel"))
        let pending = Task { try await client.request([1], timeout: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(50))
        pending.cancel()
        let start = ContinuousClock.now
        do {
            _ = try await pending.value
            XCTFail("expected cancellation")
        } catch let error as NNGError {
            XCTAssertTrue(error.isCancelled, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(3))
        client.close()
    }

    func testOversizeFrameIsRefusedAndServerKeepsServing() async throws {
        let url = Endpoints.ipc("oversize")
        let (server, serving) = try echoServer(url, options: SocketOptions(receiveMaxBytes: 1024))
        let big = try RequestClient(dialing: url)
        do {
            _ = try await big.request([UInt8](repeating: 7, count: 64 * 1024), timeout: .milliseconds(300))
            XCTFail("an oversize frame must not be answered")
        } catch {
            XCTAssertTrue(error.isTimeout, "\(error)")
        }
        big.close()
        let small = try RequestClient(dialing: url)
        let reply = try await small.request(Array("ok".utf8), timeout: .seconds(5))
        XCTAssertEqual(String(decoding: reply, as: UTF8.self), "re:ok")
        small.close()
        server.close()
        try await serving.value
    }

    func testPushPullDeliversABurstInOrder() async throws {
        let url = Endpoints.ipc("gossip")
        let inbox = try PullReceiver(listening: url)
        let sender = try PushSender(dialing: url)
        for i in 0..<1000 { try await sender.send(Array("\(i)".utf8), timeout: .seconds(5)) }
        var got: [String] = []
        for _ in 0..<1000 { got.append(String(decoding: try await inbox.receive(timeout: .seconds(5)), as: UTF8.self)) }
        XCTAssertEqual(got, (0..<1000).map { "\($0)" })
        sender.close()
        inbox.close()
    }

    func testReceiveTimesOutAndCloseEndsTheWait() async throws {
        let inbox = try PullReceiver(listening: Endpoints.inproc("quiet"))
        do {
            _ = try await inbox.receive(timeout: .milliseconds(50))
            XCTFail("expected a timeout")
        } catch {
            XCTAssertTrue(error.isTimeout)
        }
        let waiting = Task { try await inbox.receive() }
        try await Task.sleep(for: .milliseconds(50))
        inbox.close()
        do {
            _ = try await waiting.value
            XCTFail("expected closed")
        } catch let error as NNGError {
            XCTAssertTrue(error.isClosed, "\(error)")
        }
    }

    func testListeningTwiceOnOneAddressNamesTheProblem() throws {
        let url = Endpoints.tcp()
        let first = try PullReceiver(listening: url)
        defer { first.close() }
        XCTAssertThrowsError(try PullReceiver(listening: url)) { error in
            let nng = error as! NNGError
            XCTAssertTrue(nng.isAddressInUse, "\(nng)")
            XCTAssertTrue(nng.description.contains(url), nng.description)
        }
    }
}
