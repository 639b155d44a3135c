import Synchronization
import XCTest

@testable import BourseWire

final class WireEndpointTests: XCTestCase {
    func testStampsSenderIncreasingSequenceAndClock() throws {
        // A clock stuck at 0: the sequence is then previous + 1.
        var endpoint = WireEndpoint(senderID: "shard-r0", microseconds: { 0 })
        let first = try WireCodec.decode(endpoint.encode(.ping(Ping(probeID: 1)), sentAt: 10))
        let second = try WireCodec.decode(endpoint.encode(.ping(Ping(probeID: 2)), sentAt: 11))
        XCTAssertEqual(first.senderID, "shard-r0")
        XCTAssertEqual([first.sequence, second.sequence], [1, 2])
        XCTAssertEqual(second.sentAt, 11)
        XCTAssertEqual(endpoint.sequence, 2)
    }

    func testCountsMalformedFramesAndAnswersThemWithMalformedErrors() throws {
        var endpoint = WireEndpoint(senderID: "agent-r1")
        let good = try WireCodec.encode(Envelope(senderID: "x", body: .ping(Ping(probeID: 7))))
        guard case .success(let envelope) = endpoint.decode(good) else { return XCTFail("a valid frame must decode") }
        XCTAssertEqual(envelope.body, .ping(Ping(probeID: 7)))
        XCTAssertEqual(endpoint.malformedFrames, 0)

        guard case .failure(.malformed(let error)) = endpoint.decode([0xFF, 0x00]) else { return XCTFail("garbage must not decode") }
        _ = endpoint.decode([])
        XCTAssertEqual(endpoint.malformedFrames, 2)
        let reply = try WireCodec.decode(endpoint.malformedReply(error, sentAt: 3))
        guard case .error(let message) = reply.body else { return XCTFail("expected an Error envelope, got \(reply.body.kindName)") }
        XCTAssertEqual(message.code, .malformed)
        XCTAssertEqual(message.message, error.description)
        XCTAssertEqual(reply.senderID, "agent-r1")
    }

    func testSequenceStartsAtTheWallClockSoARestartedSenderContinuesAbove() throws {
        let before = WireEndpoint.wallClockMicroseconds()
        var first = WireEndpoint(senderID: "shard-r0")
        let a = try WireCodec.decode(first.encode(.ping(Ping(probeID: 1)), sentAt: 0)).sequence
        let b = try WireCodec.decode(first.encode(.ping(Ping(probeID: 2)), sentAt: 0)).sequence
        XCTAssertGreaterThanOrEqual(a, before)
        XCTAssertGreaterThan(b, a)
        // The same process restarted: its first sequence is above everything the first life sent.
        var restarted = WireEndpoint(senderID: "shard-r0")
        let c = try WireCodec.decode(restarted.encode(.ping(Ping(probeID: 3)), sentAt: 0)).sequence
        XCTAssertGreaterThan(c, b)
    }
}

/// A wall clock in microseconds that tests set.
final class TestMicroClock: Sendable {
    private let value: Mutex<UInt64>
    init(_ start: UInt64) { value = Mutex(start) }
    var now: UInt64 { value.withLock { $0 } }
    func advance(seconds: Double) { value.withLock { $0 += UInt64(seconds * 1_000_000) } }
    var function: @Sendable () -> UInt64 { { self.now } }
}

final class WireEndpointSecurityTests: XCTestCase {
    let clusterKey = try! ClusterKey(secret: "correct horse battery staple 42")
    let otherKey = try! ClusterKey(secret: "a different cluster key entirely")
    let start: UInt64 = 1_800_000_000_000_000  // 2027, in microseconds

    private func pair(_ clock: TestMicroClock, senderKey: ClusterKey?, receiverKey: ClusterKey?) -> (WireEndpoint, WireEndpoint) {
        (WireEndpoint(senderID: "shard-r1", key: senderKey, microseconds: clock.function),
         WireEndpoint(senderID: "shard-r0", key: receiverKey, microseconds: clock.function))
    }

    private let offer = Envelope.Body.tradeOffer(TradeOffer(
        offerID: 7, buyerShard: "shard-r1", jobID: "j-000042", gpuType: "v100", gpus: 4, bid: 12.5, round: 3, leaseSeconds: 360))

    func testValidSignedEnvelopePassesAndCarriesAnHMAC() throws {
        let clock = TestMicroClock(start)
        var (sender, receiver) = pair(clock, senderKey: clusterKey, receiverKey: clusterKey)
        let frame = sender.encode(offer, sentAt: 100)
        let wire = try WireCodec.decode(frame)
        XCTAssertEqual(wire.hmac.count, 32)
        XCTAssertEqual(wire.hmac, clusterKey.authenticationCode(for: try WireCodec.encodeForSigning(wire)))
        guard case .success(let envelope) = receiver.decode(frame) else { return XCTFail("a validly signed frame must pass") }
        XCTAssertEqual(envelope.body, offer)
        XCTAssertEqual(envelope.senderID, "shard-r1")
        XCTAssertEqual(receiver.rejectedFrames, 0)
    }

    func testForgedTradeOfferSignedWithAnotherKeyIsRejectedAndCounted() throws {
        let clock = TestMicroClock(start)
        var (forger, receiver) = pair(clock, senderKey: otherKey, receiverKey: clusterKey)
        let frame = forger.encode(offer, sentAt: 100)
        guard case .failure(let rejection) = receiver.decode(frame) else { return XCTFail("a forged offer must be refused") }
        guard case .unauthenticated(let sender, _) = rejection else { return XCTFail("expected unauthenticated, got \(rejection)") }
        XCTAssertEqual(sender, "shard-r1")
        XCTAssertEqual(receiver.unauthenticatedFrames, 1)
        XCTAssertEqual(receiver.replayedFrames, 0)
        XCTAssertTrue(receiver.counters.contains("bad hmac 1"), receiver.counters)
        // The refusal is an UNAUTHORIZED error, signed by the receiver.
        let reply = try WireCodec.decode(receiver.rejectionReply(rejection, sentAt: 101))
        guard case .error(let message) = reply.body else { return XCTFail("expected an Error reply") }
        XCTAssertEqual(message.code, .unauthorized)
        XCTAssertEqual(reply.hmac.count, 32)
        // The receiver still takes genuine frames afterwards.
        var genuine = WireEndpoint(senderID: "shard-r2", key: clusterKey, microseconds: clock.function)
        XCTAssertNoThrow(try receiver.decode(genuine.encode(offer, sentAt: 102)).get())
    }

    func testUnsignedAndTamperedFramesAreRejectedWhenAKeyIsSet() throws {
        let clock = TestMicroClock(start)
        var (unsigned, receiver) = pair(clock, senderKey: nil, receiverKey: clusterKey)
        guard case .failure(.unauthenticated(_, let reason)) = receiver.decode(unsigned.encode(offer, sentAt: 1)) else {
            return XCTFail("an unsigned frame must be refused")
        }
        XCTAssertTrue(reason.contains("no HMAC"), reason)

        var signer = WireEndpoint(senderID: "shard-r1", key: clusterKey, microseconds: clock.function)
        var envelope = try WireCodec.decode(signer.encode(offer, sentAt: 2))
        // Body altered, HMAC kept.
        var altered = envelope
        altered.body = .tradeOffer(TradeOffer(offerID: 7, buyerShard: "shard-r1", jobID: "j-000042", gpuType: "v100", gpus: 8, bid: 12.5))
        XCTAssertThrowsError(try receiver.decode(WireCodec.encode(altered)).get())
        // Re-stamped: another sender id, or another sequence, with the original HMAC.
        var restamped = envelope
        restamped.senderID = "shard-r3"
        XCTAssertThrowsError(try receiver.decode(WireCodec.encode(restamped)).get())
        envelope.sequence += 1
        XCTAssertThrowsError(try receiver.decode(WireCodec.encode(envelope)).get())
        XCTAssertEqual(receiver.unauthenticatedFrames, 4)
    }

    func testReplayedFrameIsRejectedAndCounted() throws {
        let clock = TestMicroClock(start)
        var (sender, receiver) = pair(clock, senderKey: clusterKey, receiverKey: clusterKey)
        let frame = sender.encode(.jobTransition(JobTransition(jobID: "j-000001", state: .running, transitionID: 1)), sentAt: 5)
        XCTAssertNoThrow(try receiver.decode(frame).get())
        clock.advance(seconds: 0.5)
        guard case .failure(let rejection) = receiver.decode(frame) else { return XCTFail("the same bytes twice must be refused") }
        guard case .replayed = rejection else { return XCTFail("expected replayed, got \(rejection)") }
        XCTAssertEqual(rejection.code, .unauthorized)
        XCTAssertEqual(receiver.replayedFrames, 1)
        XCTAssertEqual(receiver.unauthenticatedFrames, 0)
        // The sender's next frame still passes.
        XCTAssertNoThrow(try receiver.decode(sender.encode(.ping(Ping(probeID: 1)), sentAt: 6)).get())
    }

    func testOutOfOrderWithinTheWindowPassesOlderThanTheWindowIsRejected() throws {
        let clock = TestMicroClock(start)
        var (sender, receiver) = pair(clock, senderKey: clusterKey, receiverKey: clusterKey)
        // Two frames stamped in order, received in the opposite order (concurrent REQ/REP contexts).
        let early = sender.encode(.ping(Ping(probeID: 1)), sentAt: 0)
        clock.advance(seconds: 1)
        let late = sender.encode(.ping(Ping(probeID: 2)), sentAt: 0)
        XCTAssertNoThrow(try receiver.decode(late).get())
        XCTAssertNoThrow(try receiver.decode(early).get(), "a frame 1 s behind the newest is within the window")
        // A frame stamped long ago (an older sequence), seen for the first time after newer ones.
        let old = sender.encode(.ping(Ping(probeID: 3)), sentAt: 0)
        clock.advance(seconds: 40)
        XCTAssertNoThrow(try receiver.decode(sender.encode(.ping(Ping(probeID: 4)), sentAt: 0)).get())
        guard case .failure(.replayed(_, let reason)) = receiver.decode(old) else {
            return XCTFail("a sequence more than the window behind the newest must be refused")
        }
        XCTAssertTrue(reason.contains("behind the newest"), reason)
        XCTAssertEqual(receiver.replayedFrames, 1)
    }

    func testFramesOlderThanTheHorizonAreRejectedEvenFromUnknownSenders() throws {
        let clock = TestMicroClock(start)
        var (sender, receiver) = pair(clock, senderKey: clusterKey, receiverKey: clusterKey)
        let recorded = sender.encode(.ping(Ping(probeID: 1)), sentAt: 0)
        clock.advance(seconds: 301)
        guard case .failure(.replayed(_, let reason)) = receiver.decode(recorded) else {
            return XCTFail("a 5-minute-old frame must be refused")
        }
        XCTAssertTrue(reason.contains("older than"), reason)
    }

    func testARestartedSenderIsAcceptedAndItsOldFramesAreNot() throws {
        let clock = TestMicroClock(start)
        var (first, receiver) = pair(clock, senderKey: clusterKey, receiverKey: clusterKey)
        var frames: [[UInt8]] = []
        for i in 0..<100 { frames.append(first.encode(.ping(Ping(probeID: UInt64(i))), sentAt: 0)) }
        for frame in frames { XCTAssertNoThrow(try receiver.decode(frame).get()) }
        // The process restarts 2 ms later (100 frames were stamped within 100 us of the clock:
        // the sequence ran ahead of the clock by up to 100).
        clock.advance(seconds: 0.002)
        var second = WireEndpoint(senderID: "shard-r1", key: clusterKey, microseconds: clock.function)
        XCTAssertNoThrow(try receiver.decode(second.encode(.ping(Ping(probeID: 500)), sentAt: 0)).get())
        XCTAssertThrowsError(try receiver.decode(frames[50]).get())
        XCTAssertEqual(receiver.replayedFrames, 1)
    }

    func testForgettingSendersNeverReopensAReplay() throws {
        let clock = TestMicroClock(start)
        var receiver = WireEndpoint(senderID: "gateway", key: clusterKey, microseconds: clock.function)
        var settings = ReplayGuard()
        settings.maxSenders = 8
        receiver.setReplayGuard(settings)
        var victim = WireEndpoint(senderID: "cli-1", key: clusterKey, microseconds: clock.function)
        let recorded = victim.encode(.listJobsRequest(ListJobsRequest()), sentAt: 0)
        XCTAssertNoThrow(try receiver.decode(recorded).get())
        for i in 2..<40 {
            clock.advance(seconds: 0.01)
            var other = WireEndpoint(senderID: "cli-\(i)", key: clusterKey, microseconds: clock.function)
            XCTAssertNoThrow(try receiver.decode(other.encode(.ping(Ping()), sentAt: 0)).get())
        }
        XCTAssertThrowsError(try receiver.decode(recorded).get(), "cli-1 was forgotten, its frame must still be refused")
        XCTAssertEqual(receiver.replayedFrames, 1)
    }

    func testWithoutAKeyNothingIsSignedOrChecked() throws {
        let clock = TestMicroClock(start)
        var (sender, receiver) = pair(clock, senderKey: nil, receiverKey: nil)
        let frame = sender.encode(offer, sentAt: 0)
        XCTAssertTrue(try WireCodec.decode(frame).hmac.isEmpty)
        XCTAssertNoThrow(try receiver.decode(frame).get())
        XCTAssertNoThrow(try receiver.decode(frame).get(), "no replay check without a key")
        var signed = WireEndpoint(senderID: "x", key: clusterKey, microseconds: clock.function)
        XCTAssertNoThrow(try receiver.decode(signed.encode(offer, sentAt: 0)).get())
        XCTAssertEqual(receiver.rejectedFrames, 0)
    }

    func testTheKeyNeverPrintsAndShortKeysAreRefused() throws {
        let secret = "correct horse battery staple 42"
        let key = try ClusterKey(secret: secret)
        for text in ["\(key)", String(describing: key), String(reflecting: key)] {
            XCTAssertFalse(text.contains("horse"), text)
        }
        XCTAssertThrowsError(try ClusterKey(secret: "tiny-secret")) { error in
            XCTAssertFalse("\(error)".contains("tiny-secret"), "\(error)")
        }
        XCTAssertEqual(SecretHash.sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
