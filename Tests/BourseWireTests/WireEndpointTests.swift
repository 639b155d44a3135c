import XCTest

@testable import BourseWire

final class WireEndpointTests: XCTestCase {
    func testStampsSenderIncreasingSequenceAndClock() throws {
        var endpoint = WireEndpoint(senderID: "shard-r0")
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

        guard case .failure(let error) = endpoint.decode([0xFF, 0x00]) else { return XCTFail("garbage must not decode") }
        _ = endpoint.decode([])
        XCTAssertEqual(endpoint.malformedFrames, 2)
        let reply = try WireCodec.decode(endpoint.malformedReply(error, sentAt: 3))
        guard case .error(let message) = reply.body else { return XCTFail("expected an Error envelope, got \(reply.body.kindName)") }
        XCTAssertEqual(message.code, .malformed)
        XCTAssertEqual(message.message, error.description)
        XCTAssertEqual(reply.senderID, "agent-r1")
    }
}
