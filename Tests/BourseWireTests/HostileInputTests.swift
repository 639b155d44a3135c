import BourseWire
import XCTest

/// Garbage in must give a valid Envelope or a typed WireError, never a crash.
final class HostileInputTests: XCTestCase {
    private struct Tally {
        var decoded = 0
        var errors: [String: Int] = [:]
        var failures: [String] = []
        var total: Int { decoded + errors.values.reduce(0, +) }
        var summary: String { "decoded \(decoded), errors \(errors.sorted { $0.key < $1.key })" }

        /// One assertion per test, showing the first few failing inputs (not thousands of them).
        func assertNoFailures(file: StaticString = #filePath, line: UInt = #line) {
            XCTAssert(failures.isEmpty, "\(failures.count) bad outcomes, first: \(failures.prefix(3).joined(separator: "; "))",
                      file: file, line: line)
        }
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        let shown = bytes.prefix(48).map { String($0, radix: 16) }.joined(separator: " ")
        return "[\(bytes.count) bytes: \(shown)\(bytes.count > 48 ? " ..." : "")]"
    }

    /// Decodes `bytes`. A success must re-encode, and re-decoding that must be a fixed point.
    private func probe(_ bytes: [UInt8], _ tally: inout Tally) {
        do {
            let envelope = try WireCodec.decode(bytes)
            tally.decoded += 1
            do {
                let reencoded = try WireCodec.encode(envelope)
                if try WireCodec.encode(WireCodec.decode(reencoded)) != reencoded {
                    tally.failures.append("decode(encode(x)) is not a fixed point for \(Self.hex(bytes))")
                }
            } catch {
                tally.failures.append("decoded envelope does not re-encode: \(error) for \(Self.hex(bytes))")
            }
        } catch {
            switch error {
            case .empty: tally.errors["empty", default: 0] += 1
            case .malformed: tally.errors["malformed", default: 0] += 1
            case .missingBody: tally.errors["missingBody", default: 0] += 1
            case .tooLarge, .encodingFailed: tally.failures.append("unexpected \(error) for \(Self.hex(bytes))")
            }
        }
    }

    func testEmptyFrame() {
        XCTAssertThrowsError(try WireCodec.decode([])) { XCTAssertEqual($0 as? WireError, .empty) }
        XCTAssertThrowsError(try WireCodec.decode(UnsafeRawBufferPointer(start: nil, count: 0))) {
            XCTAssertEqual($0 as? WireError, .empty)
        }
    }

    func testOversizeFrame() {
        let limit = WireCodec.defaultMaxFrameSize
        XCTAssertEqual(limit, 16 * 1024 * 1024)
        let huge = [UInt8](repeating: 0, count: limit + 1)
        XCTAssertThrowsError(try WireCodec.decode(huge)) {
            XCTAssertEqual($0 as? WireError, .tooLarge(size: limit + 1, limit: limit))
        }
        let frame = try! WireCodec.encode(Fixtures.rich[3])
        XCTAssertNoThrow(try WireCodec.decode(frame, maxFrameSize: frame.count))
        XCTAssertThrowsError(try WireCodec.decode(frame, maxFrameSize: frame.count - 1)) {
            XCTAssertEqual($0 as? WireError, .tooLarge(size: frame.count, limit: frame.count - 1))
        }
    }

    func testInvalidUTF8IsMalformed() {
        // sender_id = 0xFF 0xFE, body = empty ping.
        XCTAssertThrowsError(try WireCodec.decode([0x0A, 0x02, 0xFF, 0xFE, 0xC2, 0x02, 0x00])) { error in
            guard case .malformed(let why) = error as? WireError else { return XCTFail("got \(error)") }
            XCTAssertTrue(why.contains("sender_id") || why.contains("unpack"), why)
        }
    }

    func testNotProtobufIsMalformed() {
        // Field 1 declared with length 100 but only 3 bytes follow.
        XCTAssertThrowsError(try WireCodec.decode([0x0A, 0x64, 0x61, 0x62, 0x63])) { error in
            guard case .malformed = error as? WireError else { return XCTFail("got \(error)") }
        }
        // Wire type 7 does not exist.
        XCTAssertThrowsError(try WireCodec.decode([0x0F, 0x00])) { error in
            guard case .malformed = error as? WireError else { return XCTFail("got \(error)") }
        }
    }

    func testRandomByteStrings() {
        var rng = SplitMix64(seed: 42)
        var tally = Tally()
        for _ in 0..<6000 {
            let count = Int.random(in: 1...200, using: &rng)
            // Half the inputs start with a valid oneof tag (ping), so parsing gets past the first field.
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng) { bytes.insert(contentsOf: [0xC2, 0x02], at: 0) }
            probe(bytes, &tally)
        }
        tally.assertNoFailures()
        XCTAssertEqual(tally.total, 6000)
        XCTAssertGreaterThan(tally.errors["malformed", default: 0], 1000, tally.summary)
    }

    func testEveryTruncationOfEveryFixture() throws {
        var tally = Tally()
        for envelope in Fixtures.rich + Fixtures.defaults {
            let frame = try WireCodec.encode(envelope)
            for length in 0..<frame.count { probe(Array(frame[..<length]), &tally) }
            XCTAssertEqual(try WireCodec.decode(frame), envelope)
        }
        tally.assertNoFailures()
        XCTAssertEqual(tally.errors["empty"], 44, tally.summary)
        XCTAssertGreaterThan(tally.errors["malformed", default: 0], 0, tally.summary)
    }

    func testEveryBitFlipOfEveryRichFixture() throws {
        var tally = Tally()
        for envelope in Fixtures.rich {
            let frame = try WireCodec.encode(envelope)
            for bit in 0..<(frame.count * 8) {
                var flipped = frame
                flipped[bit / 8] ^= 1 << UInt8(bit % 8)
                probe(flipped, &tally)
            }
        }
        tally.assertNoFailures()
        XCTAssertGreaterThan(tally.decoded, 0, tally.summary)
        XCTAssertGreaterThan(tally.errors["malformed", default: 0], 0, tally.summary)
    }

    func testRandomSplicesOfFixtures() throws {
        var rng = SplitMix64(seed: 7)
        let frames = try Fixtures.rich.map { try WireCodec.encode($0) }
        var tally = Tally()
        for _ in 0..<4000 {
            var bytes = frames.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: at)
                default:  // splice in a piece of another frame
                    let other = frames.randomElement(using: &rng)!
                    let start = Int.random(in: 0..<other.count, using: &rng)
                    bytes.insert(contentsOf: other[start..<min(other.count, start + 16)], at: at)
                }
                if bytes.isEmpty { bytes = [0] }
            }
            probe(bytes, &tally)
        }
        tally.assertNoFailures()
        XCTAssertEqual(tally.total, 4000)
    }
}
