import BourseWire
import Foundation
import XCTest

/// Cross-checks the wire format against Google's Python protobuf (scripts/wire_interop.py).
/// Needs /usr/bin/python3 with google.protobuf (Debian: python3-protobuf) and protoc
/// (Debian: protobuf-compiler). Without them the tests are skipped, or fail when CI is set.
final class PythonInteropTests: XCTestCase {
    private static let repoRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let python = "/usr/bin/python3"

    private var workDir: URL!
    private var genDir: URL!

    /// Generates the Python code. Returns false (after recording a failure) when tools are
    /// missing and CI is set; throws XCTSkip when they are missing otherwise.
    private func prepare() throws -> Bool {
        guard try haveTools() else { return false }
        workDir = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-wire-interop-\(UUID().uuidString)")
        genDir = workDir.appendingPathComponent("gen")
        try FileManager.default.createDirectory(at: genDir, withIntermediateDirectories: true)
        let proto = Self.repoRoot.appendingPathComponent("proto")
        let protoc = try XCTUnwrap(Self.findOnPath("protoc"))
        _ = try run(protoc, ["--proto_path=\(proto.path)", "--python_out=\(genDir.path)", proto.appendingPathComponent("bourse.proto").path])
        return true
    }

    override func tearDownWithError() throws {
        if let workDir { try? FileManager.default.removeItem(at: workDir) }
    }

    // MARK: - Swift encodes, Python decodes

    func testPythonDecodesWhatSwiftEncodes() throws {
        guard try prepare() else { return }
        var random = RandomEnvelopes(rng: SplitMix64(seed: 2024))
        let envelopes = Fixtures.rich + Fixtures.defaults + (0..<110).map { random.envelope(kind: $0 % 22) }
        let frames = try envelopes.map { try WireCodec.encode($0) }
        let input = frames.map(Self.hex).joined(separator: "\n")
        let output = try run(Self.python, [script, genDir.path, "decode"], stdin: input)

        struct Decoded: Decodable { let fields: [String: String]; let reencoded: String }
        let decoded = try JSONDecoder().decode([Decoded].self, from: Data(output.utf8))
        XCTAssertEqual(decoded.count, envelopes.count)
        var failing = 0
        for (i, (envelope, python)) in zip(envelopes, decoded).enumerated() where failing < 3 {
            let context = "envelope #\(i) (\(envelope.body.kindName))"
            var ok = compare(swift: Flattened(envelope).fields, python: python.fields, context)
            if python.reencoded != Self.hex(frames[i]) {
                XCTFail("\(context): Python re-encodes to different bytes")
                ok = false
            }
            if !ok { failing += 1 }
        }
    }

    // MARK: - Python encodes, Swift decodes

    /// The envelopes scripts/wire_interop.py builds in `python_envelopes`, in order.
    private static let expectedFromPython: [Result<Envelope, WireError>] = [
        .success(Envelope(
            senderID: "client-1", sequence: 7, hmac: [0x01, 0x02, 0xFF], sentAt: 12.5,
            body: .submitJob(SubmitJob(
                spec: JobSpec(jobType: "ResNet-50 (batch size 64)", totalSteps: 1 << 40, workers: 8, minWorkers: 4,
                              maxWorkers: 16, tenant: "acme", weight: 1.5, arrivalTime: 30.25, slo: -1, name: "exp ü"),
                idempotencyKey: "k-1", tenantToken: "t")))),
        .success(Envelope(senderID: "gateway", sequence: 8, body: .listJobsReply(ListJobsReply(jobs: [
            JobStatus(jobID: "job-1", spec: JobSpec(jobType: "A3C", totalSteps: 10, workers: 1), state: .running, stepsDone: 3.5,
                      placement: Placement(gpuType: "K80", gpuIDs: ["g0", "g1"], shardID: "shard-r0"), restarts: 2),
            JobStatus(jobID: "job-2", state: .unrecognized(42), reason: "from the future"),
        ])))),
        .success(Envelope(senderID: "shard-r0", sequence: .max, body: .ping(Ping(
            probeID: .max,
            updates: [MemberUpdate(memberID: "a", address: "tcp://a:1", status: .alive, incarnation: 3, role: .shard),
                      MemberUpdate(memberID: "b", status: .dead, role: .agent)],
            digests: [ShardDigest(shardID: "shard-r0", racks: ["r0", "r1"], asks: [AskPrice(gpuType: "V100", ask: 2.25, freeGpus: 3)],
                                  queuedJobs: 4, round: 5, version: 6)])))),
        .success(Envelope(senderID: "agent-1", sentAt: .infinity, body: .agentHeartbeat(AgentHeartbeat(
            agentID: "agent-1", at: 99.5,
            nodes: [NodeReport(nodeID: "n1", rack: "r0", health: .degraded, gpus: [
                GPUReport(gpuID: "g0", gpuType: "V100", healthy: true, jobID: "job-1"),
                GPUReport(gpuID: "g1", gpuType: "V100", healthy: false)])],
            jobs: [JobProgress(jobID: "job-1", stepsDone: 10, checkpointSteps: 8, stepsPerSecond: 1.25, workers: 1, gpuType: "V100")])))),
        .success(Envelope(body: .listJobsRequest(ListJobsRequest(tenantToken: "t", states: [.pending, .unrecognized(99), .unrecognized(-3)])))),
        .success(Envelope(body: .error(WireErrorMessage(code: .unauthorized, message: "bad hmac", field: "hmac")))),
        .success(Envelope(body: .submitJob(SubmitJob()))),
        .failure(.missingBody),
    ]

    func testSwiftDecodesWhatPythonEncodes() throws {
        guard try prepare() else { return }
        let output = try run(Self.python, [script, genDir.path, "encode"])
        let frames = try output.split(separator: "\n").map { try XCTUnwrap(Self.bytes(fromHex: String($0)), "bad hex from Python: \($0)") }
        XCTAssertEqual(frames.count, Self.expectedFromPython.count, "scripts/wire_interop.py and this test disagree on the set")
        for (i, (frame, expected)) in zip(frames, Self.expectedFromPython).enumerated() {
            let got = Result { () throws(WireError) -> Envelope in try WireCodec.decode(frame) }
            XCTAssertEqual(got, expected, "Python envelope #\(i)")
            if case .success(let envelope) = got {
                XCTAssertEqual(try WireCodec.encode(envelope), frame, "Python envelope #\(i): Swift re-encodes to different bytes")
            }
        }
    }

    // MARK: - comparison

    /// Records a failure per differing field; returns whether everything matched.
    private func compare(swift: [String: Flattened.Value], python: [String: String], _ context: String) -> Bool {
        var ok = true
        let missing = Set(swift.keys).subtracting(python.keys).sorted()
        let extra = Set(python.keys).subtracting(swift.keys).sorted()
        if !missing.isEmpty || !extra.isEmpty {
            XCTFail("\(context): fields only in Swift \(missing), only in Python \(extra)")
            ok = false
        }
        for (path, value) in swift.sorted(by: { $0.key < $1.key }) {
            guard let text = python[path] else { continue }
            let same = switch value {
            case .text(let expected): text == expected
            case .double(let expected):
                // Exact, except that -0.0 == 0.0: protobuf-c does not send -0.0 (see
                // RoundTripTests.testNegativeZeroIsSentAsZero).
                Double(text).map { $0 == expected || ($0.isNaN && expected.isNaN) } ?? false
            }
            if !same {
                XCTFail("\(context): \(path) is \(value) in Swift, \(text.debugDescription) in Python")
                ok = false
            }
        }
        return ok
    }

    // MARK: - tools

    private var script: String { Self.repoRoot.appendingPathComponent("scripts/wire_interop.py").path }

    private func haveTools() throws -> Bool {
        var problems: [String] = []
        if Self.findOnPath("protoc") == nil {
            problems.append("protoc is not on PATH (Debian package protobuf-compiler: apt-get install -y protobuf-compiler)")
        }
        if (try? run(Self.python, ["-c", "import google.protobuf"])) == nil {
            problems.append("\(Self.python) cannot import google.protobuf (Debian package python3-protobuf: apt-get install -y python3-protobuf)")
        }
        guard !problems.isEmpty else { return true }
        let message = "Python interop test needs: " + problems.joined(separator: "; ")
        if ProcessInfo.processInfo.environment["CI"] != nil {
            XCTFail(message)
            return false
        }
        throw XCTSkip(message)
    }

    private static func findOnPath(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    private struct CommandFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs a program to completion with files for stdin/stdout/stderr (no pipe deadlocks).
    @discardableResult
    private func run(_ program: String, _ arguments: [String], stdin: String = "") throws -> String {
        let dir = workDir ?? FileManager.default.temporaryDirectory
        let id = UUID().uuidString
        let inURL = dir.appendingPathComponent("\(id).in"), outURL = dir.appendingPathComponent("\(id).out")
        let errURL = dir.appendingPathComponent("\(id).err")
        defer { for url in [inURL, outURL, errURL] { try? FileManager.default.removeItem(at: url) } }
        try Data(stdin.utf8).write(to: inURL)
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        try process.run()
        process.waitUntilExit()
        let output = try String(contentsOf: outURL, encoding: .utf8)
        guard process.terminationStatus == 0 else {
            let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw CommandFailed(description: "\(program) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(stderr)")
        }
        return output
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    private static func bytes(fromHex hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        return stride(from: 0, to: digits.count, by: 2).map { i in
            UInt8(String(decoding: digits[i..<i + 2], as: UTF8.self), radix: 16)
        }.reduce(into: [UInt8]?.some([])) { result, byte in
            if let byte { result?.append(byte) } else { result = nil }
        }
    }
}

/// A Swift value flattened the way scripts/wire_interop.py flattens the decoded protobuf, by
/// reflection (independent of the codec): proto field paths -> values.
struct Flattened {
    enum Value: Equatable { case text(String), double(Double) }
    private(set) var fields: [String: Value] = [:]

    init(_ envelope: Envelope) { add(envelope, path: "") }

    /// `senderID` -> `sender_id`, `gpuIDs` -> `gpu_ids`, `freeGpus` -> `free_gpus`.
    static func protoName(_ swiftName: String) -> String {
        let spelled = swiftName.replacingOccurrences(of: "IDs", with: "Ids").replacingOccurrences(of: "ID", with: "Id")
        return spelled.map { $0.isUppercase ? "_" + $0.lowercased() : String($0) }.joined()
    }

    private mutating func add(_ value: Any, path: String) {
        switch value {
        case let e as any WireEnum: fields[path] = .text(String(e.rawValue))
        case let d as Double: fields[path] = .double(d)
        case let b as Bool: fields[path] = .text(b ? "true" : "false")
        case let s as String: fields[path] = .text(s)
        // Exact type check: an empty [JobState] would also cast to [UInt8].
        case let bytes as [UInt8] where type(of: value) == [UInt8].self: fields[path] = .text(bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
        case let n as UInt64: fields[path] = .text(String(n))
        case let n as UInt32: fields[path] = .text(String(n))
        default:
            let mirror = Mirror(reflecting: value)
            switch mirror.displayStyle {
            case .optional:
                if let some = mirror.children.first { add(some.value, path: path) }
            case .collection:
                for (i, element) in mirror.children.enumerated() { add(element.value, path: "\(path)[\(i)]") }
            case .enum, .struct:  // Envelope.Body: the case name is the oneof member's name
                if mirror.displayStyle == .struct && !path.isEmpty { fields[path] = .text("{}") }
                for child in mirror.children {
                    // Envelope.body is the oneof itself, which has no name on the wire.
                    if child.value is Envelope.Body { add(child.value, path: path); continue }
                    let name = Self.protoName(child.label ?? "?")
                    add(child.value, path: path.isEmpty ? name : "\(path).\(name)")
                }
            default:
                fields[path] = .text("unsupported \(type(of: value))")
            }
        }
    }
}
