@testable import BourseGateway
import BourseTransport
import BourseWire
import Foundation
import Testing

@Suite("Gateway actor")
struct GatewayShellTests {
    private func frame(_ body: Envelope.Body, sender: String = "cli") throws -> [UInt8] {
        try WireCodec.encode(Envelope(senderID: sender, body: body))
    }

    private func reply(_ bytes: [UInt8]) throws -> Envelope.Body { try WireCodec.decode(bytes).body }

    @Test("acknowledged submissions are in the store; a restarted gateway has them all")
    func restart() async throws {
        let dir = try TempDirectory()
        let path = dir.path("gw.db")
        var acked: [String] = []
        do {
            let gateway = try Gateway(settings: testSettings, store: try JobStore(path: path), clock: { 42 })
            for i in 0..<5 {
                let r = try reply(await gateway.handle(frame: try frame(.submitJob(SubmitJob(spec: spec(), idempotencyKey: "k\(i)")))))
                acked.append(try #require(r.submitAck).jobID)
            }
            _ = await gateway.handle(frame: try frame(.cancelJob(CancelJob(jobID: acked[1]))))
            _ = await gateway.handle(frame: try frame(.jobTransition(JobTransition(jobID: acked[2], state: .running, at: 50, transitionID: 1)), sender: "shard-r2"))
            await gateway.shutdown()
        }
        let again = try Gateway(settings: testSettings, store: try JobStore(path: path), clock: { 43 })
        #expect(await again.jobCount == 5)
        #expect(await again.job(acked[1])?.state == .cancelled)
        #expect(await again.job(acked[2])?.state == .running)
        #expect(try await again.history(jobID: acked[2]).map(\.to) == [.pending, .running])
        // Retries after the restart are still idempotent, and ids continue.
        let retry = try reply(await again.handle(frame: try frame(.submitJob(SubmitJob(spec: spec(), idempotencyKey: "k3")))))
        #expect(retry.submitAck?.jobID == acked[3])
        let next = try reply(await again.handle(frame: try frame(.submitJob(SubmitJob(spec: spec())))))
        #expect(next.submitAck?.jobID == "j-000006")
        await again.shutdown()
    }

    @Test("concurrent frames are group-committed: every one acknowledged is durable, ids unique")
    func groupCommit() async throws {
        let dir = try TempDirectory()
        let path = dir.path("gw.db")
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: path))
        let frames = try (0..<60).map { i in
            i % 10 == 9 ? [0xFF, 0x00] : try frame(.submitJob(SubmitJob(spec: spec(), idempotencyKey: i % 10 == 8 ? "same" : "")))
        }
        let replies = await withTaskGroup(of: Envelope.Body?.self) { group in
            for f in frames { group.addTask { try? WireCodec.decode(await gateway.handle(frame: f)).body } }
            return await group.reduce(into: [Envelope.Body?]()) { $0.append($1) }
        }
        let ids = replies.compactMap { $0?.submitAck?.jobID }
        let codes: [WireErrorCode] = replies.compactMap { $0?.errorMessage?.code }
        let malformed = codes.filter { $0 == .malformed }.count
        #expect(malformed == 6)
        #expect(ids.count == 54)
        #expect(Set(ids).count == 49)  // 48 distinct jobs + the 6 "same" retries answered with one id
        let commits = await gateway.commits
        #expect(commits.requests == 49)
        #expect(commits.transactions >= 1 && commits.transactions <= 49)
        await gateway.shutdown()
        let reopened = try JobStore(path: path)
        #expect(try reopened.jobs().count == 49)
    }

    @Test("garbage frames get a MALFORMED error, are counted, and change nothing")
    func garbage() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"))
        for bytes in [[UInt8](), [0xFF, 0x01, 0x02], [UInt8](repeating: 0x0A, count: 100)] {
            let r = try reply(await gateway.handle(frame: bytes))
            #expect(r.errorMessage?.code == .malformed)
        }
        #expect(await gateway.stats.malformed == 3)
        #expect(await gateway.jobCount == 0)
        let ping = try reply(await gateway.handle(frame: try frame(.ping(Ping(probeID: 3)))))
        #expect(ping == .ack(Ack(probeID: 3, targetID: "gateway", updates: [MemberUpdate(memberID: "gateway", status: .alive, role: .gateway)])))
    }

    @Test("when the store cannot write, the request is refused and the state is unchanged")
    func storeFailure() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"))
        await gateway.shutdown()
        let r = try reply(await gateway.handle(frame: try frame(.submitJob(SubmitJob(spec: spec())))))
        #expect(r.errorMessage?.code == .unavailable)
        #expect(await gateway.jobCount == 0)
        #expect(await gateway.stats.storeFailures == 1)
    }

    @Test("the tenant token hook can refuse requests")
    func tokenHook() async throws {
        let gateway = try Gateway(
            settings: testSettings, store: try JobStore(path: ":memory:"), tokenCheck: { $0.token == "secret" })
        let refused = await gateway.handle(Envelope(body: .submitJob(SubmitJob(spec: spec(tenant: "a")))))
        #expect(refused.errorMessage?.code == .unauthorized)
        let allowed = await gateway.handle(Envelope(body: .submitJob(SubmitJob(spec: spec(tenant: "a"), tenantToken: "secret"))))
        #expect(allowed.submitAck != nil)
    }

    @Test("served over NNG: concurrent clients each get their own job")
    func overNNG() async throws {
        let url = "inproc://gateway-test-\(UUID().uuidString)"
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"))
        let server = try ReplyServer(listening: url)
        let serving = Task { try await gateway.serve(server) }
        let client = try RequestClient(dialing: url)
        // A generous timeout: on a loaded CI machine the other tests, not this gateway, set the pace.
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    let bytes = try WireCodec.encode(Envelope(senderID: "t", body: .submitJob(SubmitJob(spec: spec()))))
                    return try WireCodec.decode(try await client.request(bytes, timeout: .seconds(30))).body.submitAck?.jobID ?? ""
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 20)
        #expect(ids.allSatisfy { $0.hasPrefix("j-") })
        client.close()
        server.close()
        try await serving.value
    }
}
