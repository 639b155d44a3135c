import Foundation
import Testing

private let validConfig = """
    name: cli-test
    gpu_types: [v100, p100, k80]
    gateway: {address: "tcp://127.0.0.1:17700"}
    racks:
      - id: r0
        shard: "tcp://127.0.0.1:17710"
        agent: "tcp://127.0.0.1:17720"
        nodes:
          - {id: r0-n0, gpus: {v100: 4}}
          - {id: r0-n1, gpus: {p100: 4}}

    """

/// Writes `yaml` to a fresh temp directory and returns its path.
private func writeTemp(_ yaml: String, name: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-cfg-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent(name)
    try yaml.write(to: url, atomically: true, encoding: .utf8)
    return url.path
}

@Suite("bourse config check (as a process)")
struct ConfigCheckCLITests {
    @Test("the demo config is valid and its GPU summary is printed")
    func demoIsValid() throws {
        let result = try runBourse(["config", "check", "cluster-configs/demo.yaml"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("cluster-configs/demo.yaml: valid"))
        #expect(result.stdout.contains("36 total: v100 12, p100 12, k80 12"), "stdout: \(result.stdout)")
        #expect(result.stdout.contains("tcp://127.0.0.1:7700"))
        #expect(result.stderr.isEmpty)
    }

    @Test("every shipped config checks in one run")
    func allShipped() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("cluster-configs").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "cluster-configs/\($0)" }
        #expect(files.count >= 6)
        let result = try runBourse(["config", "check", "--quiet"] + files)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("--json prints a machine-readable summary")
    func json() throws {
        let result = try runBourse(["config", "check", "--json", "cluster-configs/gavel-4-4-4.yaml"])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        let parsed = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]]
        let entry = try #require(parsed?.first)
        #expect(entry["valid"] as? Bool == true)
        let summary = try #require(entry["summary"] as? [String: Any])
        #expect(summary["total_gpus"] as? Int == 12)
        #expect(summary["gpus"] as? [String: Int] == ["v100": 4, "p100": 4, "k80": 4])
    }

    @Test("a valid temp config passes")
    func validTemp() throws {
        let path = try writeTemp(validConfig, name: "ok.yaml")
        let result = try runBourse(["config", "check", path])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("8 total: v100 4, p100 4"))
    }

    @Test("an unknown GPU type fails naming the field and the type")
    func unknownGPUType() throws {
        let path = try writeTemp(validConfig.replacingOccurrences(of: "{p100: 4}", with: "{v200: 4}"), name: "gpu.yaml")
        let result = try runBourse(["config", "check", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("racks[0].nodes[1].gpus.v200: unknown GPU type 'v200' (declared: v100, p100, k80)"),
                "stderr: \(result.stderr)")
    }

    @Test("a duplicate node fails naming both places")
    func duplicateNode() throws {
        let path = try writeTemp(validConfig.replacingOccurrences(of: "r0-n1", with: "r0-n0"), name: "dup.yaml")
        let result = try runBourse(["config", "check", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("racks[0].nodes[1].id: duplicate node id 'r0-n0' (first defined at racks[0].nodes[0])"),
                "stderr: \(result.stderr)")
    }

    @Test("a missing field fails naming the field")
    func missingField() throws {
        let path = try writeTemp(validConfig.replacingOccurrences(of: "    shard: \"tcp://127.0.0.1:17710\"\n", with: ""),
                                 name: "missing.yaml")
        let result = try runBourse(["config", "check", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("racks[0].shard: missing required field 'shard'"), "stderr: \(result.stderr)")
    }

    @Test("one bad file among good ones fails the run; good files are still summarised")
    func mixed() throws {
        let bad = try writeTemp("name: x\n", name: "bad.yaml")
        let result = try runBourse(["config", "check", "cluster-configs/gavel-4-4-4.yaml", bad])
        #expect(result.status != 0)
        #expect(result.stdout.contains("gavel-4-4-4.yaml: valid"))
        #expect(result.stderr.contains("missing required field 'racks'"))
        #expect(result.stderr.contains("1 of 2 config files are invalid"))
    }

    @Test("a missing file fails")
    func missingFile() throws {
        let result = try runBourse(["config", "check", "cluster-configs/no-such-config.yaml"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("cluster-configs/no-such-config.yaml: no such file"))
    }
}
