import BourseWire
import XCTest

final class RoundTripTests: XCTestCase {
    /// Encode, decode, compare; re-encoding must give the same bytes. Returns false on a mismatch.
    @discardableResult
    private func roundTrip(_ envelope: Envelope, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
        let bytes = try WireCodec.encode(envelope)
        let decoded = try WireCodec.decode(bytes)
        guard decoded == envelope else {
            XCTFail("round trip changed a \(envelope.body.kindName) envelope:\n  sent \(envelope)\n  got  \(decoded)", file: file, line: line)
            return false
        }
        guard try WireCodec.encode(decoded) == bytes else {
            XCTFail("re-encoding a \(envelope.body.kindName) envelope is not byte-identical", file: file, line: line)
            return false
        }
        return true
    }

    func testFixturesCoverEveryBodyKind() {
        XCTAssertEqual(allBodyKinds.count, 22)
        XCTAssertEqual(Fixtures.rich.map(\.body.kindName), allBodyKinds)
        XCTAssertEqual(Fixtures.defaults.map(\.body.kindName), allBodyKinds)
        XCTAssertEqual(Fixtures.rich.map { kindIndex($0.body) }, Array(0..<22))
    }

    func testRichEnvelopesRoundTrip() throws {
        for envelope in Fixtures.rich { try roundTrip(envelope) }
    }

    func testDefaultEnvelopesRoundTrip() throws {
        for envelope in Fixtures.defaults {
            try roundTrip(envelope)
            // Only the oneof member itself is on the wire: its tag, and a zero length.
            XCTAssertLessThanOrEqual(try WireCodec.encode(envelope).count, 3, envelope.body.kindName)
        }
    }

    func testRandomEnvelopesRoundTrip() throws {
        var random = RandomEnvelopes(rng: SplitMix64(seed: 0xB0_0125))
        for i in 0..<3000 {
            guard try roundTrip(random.envelope(kind: i % 22)) else { return XCTFail("first mismatch at random envelope #\(i)") }
        }
    }

    func testWireFormatIsStandardProtobuf() throws {
        // Hand-assembled: sender_id "a" (field 1), sequence 1 (field 2), ping (field 40) { probe_id 2 }.
        let envelope = Envelope(senderID: "a", sequence: 1, body: .ping(Ping(probeID: 2)))
        XCTAssertEqual(try WireCodec.encode(envelope), [0x0A, 0x01, 0x61, 0x10, 0x01, 0xC2, 0x02, 0x02, 0x08, 0x02])
    }

    func testSubMessagePresenceIsKept() throws {
        let absent = Envelope(body: .submitJob(SubmitJob(spec: nil, idempotencyKey: "k")))
        let empty = Envelope(body: .submitJob(SubmitJob(spec: JobSpec(), idempotencyKey: "k")))
        XCTAssertNotEqual(try WireCodec.encode(absent), try WireCodec.encode(empty))
        guard case .submitJob(let a) = try WireCodec.decode(WireCodec.encode(absent)).body,
              case .submitJob(let e) = try WireCodec.decode(WireCodec.encode(empty)).body
        else { return XCTFail("wrong body kind") }
        XCTAssertNil(a.spec)
        XCTAssertEqual(e.spec, JobSpec())
        for status in [JobStatus(placement: nil), JobStatus(placement: Placement())] {
            try roundTrip(Envelope(body: .jobStatus(status)))
        }
    }

    func testUnrecognizedEnumValuesSurvive() throws {
        let envelope = Envelope(body: .listJobsRequest(ListJobsRequest(states: [.unrecognized(42), .running, .unrecognized(-7), .unrecognized(Int32.max)])))
        let decoded = try WireCodec.decode(WireCodec.encode(envelope))
        guard case .listJobsRequest(let request) = decoded.body else { return XCTFail("wrong body kind") }
        XCTAssertEqual(request.states.map(\.rawValue), [42, 2, -7, Int32.max])
        guard case .unrecognized(42) = request.states[0] else { return XCTFail("expected .unrecognized(42), got \(request.states[0])") }
        try roundTrip(Envelope(body: .error(WireErrorMessage(code: .unrecognized(1234), message: "from the future"))))
        try roundTrip(Envelope(body: .ping(Ping(updates: [MemberUpdate(status: .unrecognized(9), role: .unrecognized(-1))]))))
    }

    func testEnumNormalizationAndEquality() {
        XCTAssertEqual(JobState(rawValue: 2), .running)
        XCTAssertEqual(JobState.unrecognized(2), .running, "equality goes through rawValue")
        XCTAssertEqual(Set([JobState.unrecognized(2), .running]).count, 1)
        XCTAssertEqual(JobState(rawValue: 7), .unrecognized(7))
        XCTAssertEqual(WireErrorCode.internal.rawValue, 6)
        XCTAssertEqual(MemberRole(rawValue: 3), .agent)
        XCTAssertEqual(NodeHealth(rawValue: 3), .failed)
        XCTAssertEqual(WorkerCommandKind(rawValue: 3), .resize)
        XCTAssertEqual(MemberStatus(rawValue: 3), .dead)
    }

    func testExtremeNumbers() throws {
        try roundTrip(Envelope(
            sequence: .max, sentAt: -.infinity,
            body: .jobStatus(JobStatus(stepsDone: .greatestFiniteMagnitude, checkpointSteps: .leastNonzeroMagnitude,
                                       submittedAt: .infinity, startedAt: -0.0, restarts: .max))))
        // NaN != NaN, so compare bit patterns.
        let nan = Double(bitPattern: 0x7FF8_0000_DEAD_BEEF)
        let decoded = try WireCodec.decode(WireCodec.encode(Envelope(sentAt: nan, body: .tradeAccept(TradeAccept(expiresAt: nan)))))
        XCTAssertEqual(decoded.sentAt.bitPattern, nan.bitPattern)
        guard case .tradeAccept(let accept) = decoded.body else { return XCTFail("wrong body kind") }
        XCTAssertEqual(accept.expiresAt.bitPattern, nan.bitPattern)
    }

    func testNegativeZeroIsSentAsZero() throws {
        // protobuf-c treats -0.0 like the proto3 default and leaves the field out (Google's
        // protobuf sends it), so -0.0 arrives as +0.0. Swift's == does not tell them apart anyway.
        let bytes = try WireCodec.encode(Envelope(sentAt: -0.0, body: .ping(Ping())))
        XCTAssertEqual(bytes, [0xC2, 0x02, 0x00])
        XCTAssertEqual(try WireCodec.decode(bytes).sentAt.bitPattern, (0.0 as Double).bitPattern)
        // Receiving -0.0 from a peer that does send it keeps the sign.
        let fromPython: [UInt8] = [0x21, 0, 0, 0, 0, 0, 0, 0, 0x80, 0xC2, 0x02, 0x00]
        XCTAssertEqual(try WireCodec.decode(fromPython).sentAt.bitPattern, (-0.0 as Double).bitPattern)
    }

    func testLongStringsAndManyElements() throws {
        let long = String(repeating: "日本語 text ", count: 10_000)
        let ids = (0..<5000).map { "r\($0 / 100)-n\($0 % 100)-g\($0 % 8)" }
        try roundTrip(Envelope(senderID: long, body: .tradeAccept(TradeAccept(leaseID: long, gpuIDs: ids))))
    }

    func testUnknownFieldsAreSkipped() throws {
        let envelope = Fixtures.rich[13]
        var bytes = try WireCodec.encode(envelope)
        bytes += [0x98, 0x06, 0x01]  // field 99, varint 1
        bytes += [0xA2, 0x06, 0x03, 0x61, 0x62, 0x63]  // field 100, length-delimited "abc"
        XCTAssertEqual(try WireCodec.decode(bytes), envelope)
    }

    func testUnknownBodyKindIsMissingBody() {
        // sender_id "x", then field 70 (a body kind from a newer .proto), an empty message.
        XCTAssertThrowsError(try WireCodec.decode([0x0A, 0x01, 0x78, 0xB2, 0x04, 0x00])) { error in
            XCTAssertEqual(error as? WireError, .missingBody)
        }
    }

    func testEncodeRejectsNULInStrings() {
        let envelope = Envelope(body: .submitJob(SubmitJob(spec: JobSpec(jobType: "bad\0type"))))
        XCTAssertThrowsError(try WireCodec.encode(envelope)) { error in
            guard case .encodingFailed(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("JobSpec.job_type"), why)
        }
        let list = Envelope(body: .tradeAccept(TradeAccept(gpuIDs: ["ok", "b\0d"])))
        XCTAssertThrowsError(try WireCodec.encode(list)) { error in
            XCTAssertEqual((error as? WireError)?.description.contains("TradeAccept.gpu_ids[1]"), true, "\(error)")
        }
    }

    func testEncodeRespectsMaxFrameSize() throws {
        let envelope = Fixtures.rich[5]
        let size = try WireCodec.encode(envelope).count
        XCTAssertEqual(try WireCodec.encode(envelope, maxFrameSize: size).count, size)
        XCTAssertThrowsError(try WireCodec.encode(envelope, maxFrameSize: size - 1)) { error in
            XCTAssertEqual(error as? WireError, .tooLarge(size: size, limit: size - 1))
        }
    }

    func testSigningBytesExcludeOnlyTheHMAC() throws {
        var envelope = Fixtures.rich[0]
        let signed = try WireCodec.encodeForSigning(envelope)
        envelope.hmac = []
        XCTAssertEqual(signed, try WireCodec.encode(envelope))
        envelope.hmac = Array(repeating: 0xAB, count: 32)
        XCTAssertEqual(try WireCodec.encodeForSigning(envelope), signed)
        envelope.sequence += 1
        XCTAssertNotEqual(try WireCodec.encodeForSigning(envelope), signed)
    }

    func testUnsafeBufferDecodeMatchesArrayDecode() throws {
        let bytes = try WireCodec.encode(Fixtures.rich[9])
        let decoded = try bytes.withUnsafeBytes { try WireCodec.decode($0) }
        XCTAssertEqual(decoded, Fixtures.rich[9])
    }

    func testErrorDescriptionsSayWhatWasWrong() {
        XCTAssertEqual(WireError.tooLarge(size: 20, limit: 10).description, "frame too large: 20 bytes exceeds the limit of 10 bytes")
        XCTAssertTrue(WireError.empty.description.contains("0 bytes"))
        XCTAssertTrue(WireError.malformed("Placement.gpu_type is not valid UTF-8").description.contains("Placement.gpu_type"))
        XCTAssertTrue(WireError.missingBody.description.contains("no body"))
        XCTAssertTrue(WireError.encodingFailed("x").description.contains("cannot encode"))
    }
}
