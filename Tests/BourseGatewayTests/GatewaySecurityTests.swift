@testable import BourseGateway
import BourseTransport
import BourseWire
import Foundation
import Testing

/// The closed door (issue 7) at the gateway: HMACs, replays, tenant tokens.
@Suite("Gateway security")
struct GatewaySecurityTests {
    static let key = try! ClusterKey(secret: "gateway-test-cluster-key-0123456789")
    static let wrongKey = try! ClusterKey(secret: "not-the-cluster-key-at-all-9876543210")
    static let aliceToken = "alice-token-5f1c"
    static let bobToken = "bob-token-77a0"
    static let tenants = TenantDirectory(
        tokenHashes: [("alice", SecretHash.sha256Hex(aliceToken)), ("bob", SecretHash.sha256Hex(bobToken))],
        internalSenders: ["shard-r0", "shard-r1", "shard-r2"])

    private func body(_ bytes: [UInt8]) throws -> Envelope.Body { try WireCodec.decode(bytes).body }

    @Test("with a cluster key: unsigned, forged and replayed frames are UNAUTHORIZED and counted; signed ones pass")
    func hmacAndReplay() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), clusterKey: Self.key)
        var client = WireEndpoint(senderID: "cli-1", key: Self.key)
        var forger = WireEndpoint(senderID: "cli-2", key: Self.wrongKey)
        var unsigned = WireEndpoint(senderID: "cli-3")

        let plain = try body(await gateway.handle(frame: unsigned.encode(.submitJob(SubmitJob(spec: spec())), sentAt: 0)))
        #expect(plain.errorMessage?.code == .unauthorized)
        #expect(plain.errorMessage?.message.contains("no HMAC") == true)
        let forged = try body(await gateway.handle(frame: forger.encode(.submitJob(SubmitJob(spec: spec())), sentAt: 0)))
        #expect(forged.errorMessage?.code == .unauthorized)
        #expect(await gateway.jobCount == 0)

        let signed = client.encode(.submitJob(SubmitJob(spec: spec())), sentAt: 0)
        let replyBytes = await gateway.handle(frame: signed)
        // The reply is signed by the gateway: the client's endpoint verifies it.
        guard case .success(let reply) = client.decode(replyBytes) else {
            Issue.record("the gateway's reply must verify with the cluster key")
            return
        }
        #expect(reply.body.submitAck?.jobID == "j-000001")

        // The same bytes again: a replay, refused, and no second job.
        let replayed = try body(await gateway.handle(frame: signed))
        #expect(replayed.errorMessage?.code == .unauthorized)
        #expect(replayed.errorMessage?.message.contains("replay") == true)
        #expect(await gateway.jobCount == 1)

        let counters = await gateway.wireCounters
        #expect(counters.unauthenticated == 2)
        #expect(counters.replayed == 1)
        #expect(await gateway.stats.unauthorized == 3)
        // Garbage is still MALFORMED, and the gateway lives on.
        #expect(try body(await gateway.handle(frame: [0xFF, 0x00])).errorMessage?.code == .malformed)
        #expect(try body(await gateway.handle(frame: client.encode(.ping(Ping(probeID: 9)), sentAt: 0))) == .ack(Ack(probeID: 9, targetID: "gateway", updates: [MemberUpdate(memberID: "gateway", status: .alive, role: .gateway)])))
    }

    @Test("a request redone after a failed commit is not mistaken for its own replay")
    func failedCommitIsNotAReplay() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), clusterKey: Self.key)
        await gateway.shutdown()  // every commit now fails: the batch is redone one by one, then refused
        var client = WireEndpoint(senderID: "cli-1", key: Self.key)
        let reply = try body(await gateway.handle(frame: client.encode(.submitJob(SubmitJob(spec: spec())), sentAt: 0)))
        #expect(reply.errorMessage?.code == .unavailable, "\(reply)")
        #expect(await gateway.wireCounters.replayed == 0)
    }

    @Test("a forged trade offer to the gateway is refused as unauthenticated, not as an unknown message")
    func forgedTradeOffer() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), clusterKey: Self.key)
        var forger = WireEndpoint(senderID: "shard-r1", key: Self.wrongKey)
        let offer = Envelope.Body.tradeOffer(TradeOffer(offerID: 1, buyerShard: "shard-r1", jobID: "j-000001", gpuType: "v100", gpus: 2, bid: 3))
        let reply = try body(await gateway.handle(frame: forger.encode(offer, sentAt: 0)))
        #expect(reply.errorMessage?.code == .unauthorized)
        #expect(await gateway.wireCounters.unauthenticated == 1)
    }

    @Test("tenants: a token is required, submissions take the token's tenant, other tenants' jobs are NOT_FOUND")
    func tenantScoping() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), tenants: Self.tenants)
        func ask(_ body: Envelope.Body, from sender: String = "cli") async -> Envelope.Body {
            await gateway.handle(Envelope(senderID: sender, body: body))
        }
        // No token, or an unknown one: UNAUTHORIZED.
        #expect(await ask(.submitJob(SubmitJob(spec: spec()))).errorMessage?.code == .unauthorized)
        let unknown = await ask(.listJobsRequest(ListJobsRequest(tenantToken: "guess")))
        #expect(unknown.errorMessage?.code == .unauthorized)
        #expect(unknown.errorMessage?.field == "tenant_token")
        #expect(unknown.errorMessage?.message.contains("guess") == false)

        // Alice claims to be "bob" in the spec: the token decides.
        let aliceJob = try #require(await ask(.submitJob(SubmitJob(spec: spec(tenant: "bob"), tenantToken: Self.aliceToken))).submitAck).jobID
        let bobJob = try #require(await ask(.submitJob(SubmitJob(spec: spec(), tenantToken: Self.bobToken))).submitAck).jobID
        #expect(await gateway.job(aliceJob)?.spec.tenant == "alice")
        #expect(await gateway.job(bobJob)?.spec.tenant == "bob")

        // Bob can neither see nor cancel Alice's job; to him it does not exist.
        #expect(await ask(.jobStatusRequest(JobStatusRequest(jobID: aliceJob, tenantToken: Self.bobToken))).errorMessage?.code == .notFound)
        #expect(await ask(.cancelJob(CancelJob(jobID: aliceJob, tenantToken: Self.bobToken))).errorMessage?.code == .notFound)
        #expect(await gateway.job(aliceJob)?.state == .pending)
        let bobsList = await ask(.listJobsRequest(ListJobsRequest(tenantToken: Self.bobToken))).listJobs?.jobs.map(\.jobID)
        #expect(bobsList == [bobJob])

        // Alice sees and cancels her own.
        #expect(await ask(.jobStatusRequest(JobStatusRequest(jobID: aliceJob, tenantToken: Self.aliceToken))).jobStatus?.jobID == aliceJob)
        #expect(await ask(.cancelJob(CancelJob(jobID: aliceJob, tenantToken: Self.aliceToken))).cancelAck?.state == .cancelled)

        // A shard polls without a token and sees every job; a client posing without a token does not.
        #expect(await ask(.listJobsRequest(ListJobsRequest()), from: "shard-r0").listJobs?.jobs.count == 2)
        #expect(await ask(.listJobsRequest(ListJobsRequest()), from: "cli-9").errorMessage?.code == .unauthorized)
        #expect(await gateway.stats.unauthorized == 3)
    }

    @Test("idempotency keys are per tenant: the same key from two tenants makes two jobs")
    func idempotencyPerTenant() async throws {
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), tenants: Self.tenants)
        let a = await gateway.handle(Envelope(body: .submitJob(SubmitJob(spec: spec(), idempotencyKey: "k", tenantToken: Self.aliceToken))))
        let b = await gateway.handle(Envelope(body: .submitJob(SubmitJob(spec: spec(), idempotencyKey: "k", tenantToken: Self.bobToken))))
        #expect(a.submitAck?.jobID == "j-000001")
        #expect(b.submitAck?.jobID == "j-000002")
    }

    @Test("GatewayCore scopes status, list and cancel to a tenant")
    func coreScope() {
        var core = GatewayCore(settings: testSettings)
        let mine = core.handle(submit(spec(tenant: "alice")), now: 1).reply.submitAck!.jobID
        let theirs = core.handle(submit(spec(tenant: "bob")), now: 1).reply.submitAck!.jobID
        let cancel = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: theirs))), now: 2, scope: .tenant("alice"))
        #expect(cancel.reply.errorMessage?.code == .notFound)
        #expect(cancel.writes.isEmpty)
        #expect(core.job(theirs)?.state == .pending)
        let list = core.handle(Envelope(body: .listJobsRequest(ListJobsRequest())), now: 2, scope: .tenant("alice"))
        #expect(list.reply.listJobs?.jobs.map(\.jobID) == [mine])
        #expect(core.handle(Envelope(body: .listJobsRequest(ListJobsRequest())), now: 2).reply.listJobs?.jobs.count == 2)
    }

    @Test("over NNG with a key: a signed client is served, an unsigned one is refused")
    func overNNG() async throws {
        let url = "inproc://gateway-security-\(UUID().uuidString)"
        let gateway = try Gateway(settings: testSettings, store: try JobStore(path: ":memory:"), clusterKey: Self.key)
        let server = try ReplyServer(listening: url)
        let serving = Task { try await gateway.serve(server) }
        let client = try RequestClient(dialing: url)
        let signer = SharedWireEndpoint(WireEndpoint(senderID: "cli-signed", key: Self.key))
        // A generous timeout: on a loaded CI machine the other tests, not this gateway, set the pace.
        let replies = try await withThrowingTaskGroup(of: Envelope.Body.self) { group in
            for i in 0..<12 {
                group.addTask {
                    let frame = i % 3 == 2
                        ? try WireCodec.encode(Envelope(senderID: "cli-plain", sequence: UInt64(i), body: .submitJob(SubmitJob(spec: spec()))))
                        : try signer.seal(.submitJob(SubmitJob(spec: spec())), sentAt: 0)
                    return try signer.decode(try await client.request(frame, timeout: .seconds(30))).get().body
                }
            }
            return try await group.reduce(into: [Envelope.Body]()) { $0.append($1) }
        }
        #expect(replies.compactMap(\.submitAck).count == 8)
        #expect(replies.compactMap(\.errorMessage).filter { $0.code == .unauthorized }.count == 4)
        client.close()
        server.close()
        try await serving.value
    }
}
