import BourseModel
import BourseShard
import BourseWire
import BourseWorkload
import Foundation
import Logging
import Testing

/// The shard process's door (issue 7): what reaches `Shard.handle(frame:)` with a cluster key.
@Suite("Shard wire security")
struct ShardWireTests {
    static let key = try! ClusterKey(secret: "shard-test-cluster-key-0123456789")
    static let wrongKey = try! ClusterKey(secret: "a-forger-key-that-is-long-enough")

    private func ipc(_ name: String) -> String {
        "ipc://\(FileManager.default.temporaryDirectory.path)/bourse-shardwire-\(getpid())-\(name)-\(UUID().uuidString.prefix(8)).sock"
    }

    /// Runs `body` with a keyed shard of rack r0, then shuts the shard down.
    private func withShard(_ body: (BourseShard.Shard) async throws -> Void) async throws {
        let shard = try makeShard()
        do {
            try await body(shard)
        } catch {
            await shard.shutdown()
            throw error
        }
        await shard.shutdown()
    }

    private func makeShard() throws -> BourseShard.Shard {
        let cluster = ClusterConfig(
            name: "t", gpuTypes: [GPUTypeSpec(name: "v100")], gateway: GatewaySpec(address: ipc("gw")),
            racks: [
                RackSpec(id: "r0", shardAddress: ipc("s0"), agentAddress: ipc("a0"), nodes: [NodeSpec(id: "r0-n0", rack: "r0", gpus: ["v100": 2])]),
                RackSpec(id: "r1", shardAddress: ipc("s1"), agentAddress: ipc("a1"), nodes: [NodeSpec(id: "r1-n0", rack: "r1", gpus: ["v100": 2])]),
            ])
        let table = ThroughputTable(entries: ["v100": [JobTypeKey(model: "ResNet", scaleFactor: 1): 10]])
        return try BourseShard.Shard(
            cluster: cluster, rackID: "r0", table: table, policy: "fifo", clock: ManualClusterClock(now: 100),
            logger: Logger(label: "test.shard"), clusterKey: Self.key)
    }

    private let offer = Envelope.Body.tradeOffer(TradeOffer(
        offerID: 1, buyerShard: "shard-r1", jobID: "j-000001", gpuType: "v100", gpus: 2, bid: 5, round: 1, leaseSeconds: 360))

    @Test("a forged trade offer is refused UNAUTHORIZED and counted; a signed one gets past the door")
    func forgedTradeOffer() async throws { try await withShard { shard in
        var forger = WireEndpoint(senderID: "shard-r1", key: Self.wrongKey)
        var peer = WireEndpoint(senderID: "shard-r1", key: Self.key)

        let refused = await shard.handle(frame: forger.encode(offer, sentAt: 0))
        guard case .success(let reply) = peer.decode(refused), case .error(let error) = reply.body else {
            Issue.record("expected a signed Error reply")
            return
        }
        #expect(error.code == .unauthorized)
        #expect(await shard.rejectedFrames == 1)

        // Signed with the cluster key: it passes the door and is handed to the shard (one-way:
        // the reply is an empty frame; this fifo shard does not trade, so it is ignored).
        #expect(await shard.handle(frame: peer.encode(offer, sentAt: 0)).isEmpty)
        #expect(await shard.rejectedFrames == 1)
        // Signed but not a valid trade: INVALID, naming the field.
        let bad = Envelope.Body.tradeOffer(TradeOffer(offerID: 2, jobID: "job-1", gpus: 1, bid: 1, buyer: 9))
        let answer = try peer.decode(await shard.handle(frame: peer.encode(bad, sentAt: 0))).get()
        guard case .error(let invalid) = answer.body else {
            Issue.record("expected an Error reply")
            return
        }
        #expect(invalid.code == .invalid)
        #expect(invalid.message.contains("trade_offer") && invalid.message.contains("buyer 9"))
    } }

    @Test("a replayed frame is refused and counted; the sender's next frame passes")
    func replay() async throws { try await withShard { shard in
        var cli = WireEndpoint(senderID: "cli-42", key: Self.key)
        let query = cli.encode(.agentHeartbeat(AgentHeartbeat()), sentAt: 0)
        let first = try cli.decode(await shard.handle(frame: query)).get()
        guard case .agentHeartbeat(let view) = first.body else {
            Issue.record("expected the shard's view, got \(first.body.kindName)")
            return
        }
        #expect(view.nodes.map(\.nodeID) == ["r0-n0"])
        let again = try cli.decode(await shard.handle(frame: query)).get()
        guard case .error(let error) = again.body else {
            Issue.record("a replay must be refused")
            return
        }
        #expect(error.code == .unauthorized)
        #expect(error.message.contains("replay"))
        #expect(await shard.rejectedFrames == 1)
        let next = try cli.decode(await shard.handle(frame: cli.encode(.agentHeartbeat(AgentHeartbeat()), sentAt: 0))).get()
        #expect(next.body.kindName == "agent_heartbeat")
    } }
}
