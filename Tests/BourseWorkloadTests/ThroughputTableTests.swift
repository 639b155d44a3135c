import BourseModel
import Foundation
import XCTest

@testable import BourseWorkload

/// The repository root, found from this file's path so tests run from a fresh clone.
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

final class ThroughputTableTests: XCTestCase {
    private func parseError(_ json: String) -> ThroughputTableError? {
        do {
            _ = try ThroughputTable.parse(data: Data(json.utf8), source: "t.json")
            XCTFail("expected an error")
            return nil
        } catch let error as ThroughputTableError {
            return error
        } catch {
            XCTFail("unexpected error type \(error)")
            return nil
        }
    }

    func testJobTypeKeyParsing() {
        let key = JobTypeKey(tableKey: "('ResNet-18 (batch size 32)', 4)")
        XCTAssertEqual(key, JobTypeKey(model: "ResNet-18 (batch size 32)", scaleFactor: 4))
        XCTAssertEqual(key?.tableKey, "('ResNet-18 (batch size 32)', 4)")
        XCTAssertEqual(JobTypeKey(tableKey: "('A3C', 1)")?.model, "A3C")
        XCTAssertNil(JobTypeKey(tableKey: "A3C"))
        XCTAssertNil(JobTypeKey(tableKey: "('A3C', x)"))
        XCTAssertNil(JobTypeKey(tableKey: "('A3C', 0)"))
        XCTAssertNil(JobTypeKey(tableKey: "('', 1)"))
    }

    func testShippedTable() throws {
        let table = try ThroughputTable.load(path: repoRoot.appendingPathComponent("data/gavel-throughputs.json").path)
        XCTAssertEqual(table.gpuTypes, ["k80", "p100", "v100"])
        XCTAssertEqual(table.workerTypes.count, 6)
        XCTAssertEqual(table.jobTypes.count, 83)
        XCTAssertEqual(table.scaleFactors(model: "ResNet-50 (batch size 64)"), [1, 2, 4, 8])
        XCTAssertEqual(table.scaleFactors(model: "A3C"), [1])
        let r50 = JobTypeKey(model: "ResNet-50 (batch size 64)", scaleFactor: 4)
        XCTAssertEqual(table.throughput(r50, gpuType: "v100", consolidated: true), 9.451949566394442, accuracy: 1e-12)
        XCTAssertEqual(
            table.throughput(r50, gpuType: "v100", consolidated: false), 11.136430014818272, accuracy: 1e-12)
        // k80_unconsolidated lacks multi-GPU ResNet-50 (batch size 64): reads as "cannot run".
        XCTAssertNil(table.throughput(r50, workerType: "k80_unconsolidated"))
        XCTAssertEqual(table.throughput(r50, gpuType: "k80", consolidated: false), 0)
        // A 1-GPU job reads the consolidated entry either way.
        let single = JobTypeKey(model: "A3C", scaleFactor: 1)
        XCTAssertEqual(
            table.throughput(single, gpuType: "p100", consolidated: false),
            table.throughput(single, gpuType: "p100", consolidated: true))
        XCTAssertNil(table.problem(with: r50))
        XCTAssertEqual(
            table.problem(with: JobTypeKey(model: "GPT-9", scaleFactor: 1)),
            "unknown job type 'GPT-9': not in the throughput table")
        XCTAssertEqual(
            table.problem(with: JobTypeKey(model: "A3C", scaleFactor: 2)),
            "scale factor 2 is not in the throughput table for 'A3C' (it has 1)")
    }

    func testMalformedTables() {
        XCTAssertEqual(parseError("[1, 2]")?.message, "the top level must be an object keyed by worker type (e.g. \"v100\")")
        XCTAssertTrue(parseError("{ nope")?.message.hasPrefix("not valid JSON") ?? false)
        XCTAssertEqual(
            parseError(#"{"v100": {"A3C": {"null": 1}}}"#)?.message,
            "worker type 'v100': job type key \"A3C\" is not of the form ('MODEL', SCALE)")
        XCTAssertEqual(
            parseError(#"{"v100": {"('A3C', 1)": {"x": 1}}}"#)?.message,
            "worker type 'v100', job type ('A3C', 1): missing the \"null\" (isolated) throughput")
        XCTAssertEqual(
            parseError(#"{"v100": {"('A3C', 1)": {"null": "fast"}}}"#)?.message,
            "worker type 'v100', job type ('A3C', 1): the \"null\" throughput must be a number >= 0, got fast")
        XCTAssertEqual(
            parseError(#"{"v100": {"('A3C', 1)": {"null": -2}}}"#)?.message,
            "worker type 'v100', job type ('A3C', 1): the \"null\" throughput must be a number >= 0, got -2")
        XCTAssertEqual(parseError(#"{"v100": 3}"#)?.description, "t.json: worker type 'v100': expected an object keyed by job type")
    }

    func testPairEntriesAreIgnored() throws {
        let table = try ThroughputTable.parse(
            data: Data(#"{"v100": {"('A3C', 1)": {"null": 2.5, "('LM (batch size 5)', 1)": [1.0, 2.0]}}}"#.utf8))
        XCTAssertEqual(table.throughput(JobTypeKey(model: "A3C", scaleFactor: 1), workerType: "v100"), 2.5)
        XCTAssertEqual(table.jobTypes.count, 1)
    }

    func testClusterValidationNamesTheGPUType() throws {
        let table = try ThroughputTable.parse(data: Data(#"{"v100": {"('A3C', 1)": {"null": 2.5}}}"#.utf8))
        let node = NodeSpec(id: "n0", rack: "r0", gpus: ["a100": 2])
        let cluster = ClusterConfig(
            name: "c", gpuTypes: [GPUTypeSpec(name: "a100")], gateway: GatewaySpec(address: "tcp://127.0.0.1:1"),
            racks: [RackSpec(id: "r0", shardAddress: "tcp://127.0.0.1:2", agentAddress: "tcp://127.0.0.1:3", nodes: [node])])
        XCTAssertThrowsError(try table.validate(cluster: cluster)) { error in
            XCTAssertEqual(
                (error as? ThroughputTableError)?.description,
                "cluster 'c': GPU type 'a100' is not in the throughput table (it has: v100)")
        }
    }
}
