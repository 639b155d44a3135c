import BourseWire
import Foundation
import XCTest

/// Encoding allocates a C tree in an arena and decoding gets one from protobuf-c; both must be
/// freed. A leak of either costs hundreds of bytes per frame, which 20,000 frames make visible.
final class MemoryTests: XCTestCase {
    private func residentBytes() throws -> Int {
        // /proc/self/statm: size resident shared ... (in pages)
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else {
            throw XCTSkip("needs /proc/self/statm (Linux)")
        }
        let fields = statm.split(separator: " ")
        return try XCTUnwrap(Int(fields[1])) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    func testEncodeAndDecodeDoNotLeak() throws {
        let envelope = Fixtures.rich[10]  // agent heartbeat: nested lists of messages and strings
        let frame = try WireCodec.encode(envelope)
        func churn(_ n: Int) throws {
            for _ in 0..<n {
                _ = try WireCodec.encode(envelope)
                _ = try WireCodec.decode(frame)
                _ = try? WireCodec.decode(Array(frame.dropLast(3)))  // failing decodes too
            }
        }
        try churn(2000)  // warm up allocator caches
        let before = try residentBytes()
        try churn(20_000)
        let growth = try residentBytes() - before
        XCTAssertLessThan(growth, 4 << 20, "resident memory grew by \(growth) bytes over 20,000 frames of \(frame.count) bytes")
    }
}
