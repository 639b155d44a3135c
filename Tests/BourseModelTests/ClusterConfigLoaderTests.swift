import Foundation
import Testing
@testable import BourseModel

/// The repository root, found from this file's path (Tests/BourseModelTests/<this file>).
private let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

private func shippedConfig(_ name: String) -> String {
    repoRoot.appendingPathComponent("cluster-configs").appendingPathComponent(name).path
}

/// A small valid config the error cases below mutate by text replacement.
private let base = """
    name: t
    gpu_types: [v100, p100, k80]
    gateway: {address: "tcp://127.0.0.1:7700"}
    racks:
      - id: r0
        shard: "tcp://127.0.0.1:7710"
        agent: "tcp://127.0.0.1:7720"
        nodes:
          - {id: r0-n0, gpus: {v100: 4}}
      - id: r1
        shard: "tcp://127.0.0.1:7711"
        agent: "tcp://127.0.0.1:7721"
        nodes:
          - {id: r1-n0, gpus: {p100: 4}}
          - {prefix: r1-n, from: 1, count: 2, gpus: {k80: 2}}

    """

/// `base` up to (not including) its `racks:` section.
private let baseWithoutRacks = base.components(separatedBy: "racks:")[0]

private func variant(_ replacements: [(String, String)]) -> String {
    var yaml = base
    for (old, new) in replacements {
        precondition(yaml.contains(old), "test bug: '\(old)' not in base config")
        yaml = yaml.replacingOccurrences(of: old, with: new)
    }
    return yaml
}

/// The problems `yaml` has, or [] when it is valid.
private func problems(_ yaml: String, file: String = "cluster-configs/x.yaml") -> [ConfigError] {
    do {
        _ = try ClusterConfig.parse(yaml: yaml, file: file)
        return []
    } catch {
        return error.errors
    }
}

@Suite("Shipped cluster configs")
struct ShippedConfigTests {
    struct Expected: Sendable, CustomStringConvertible {
        var file: String
        var racks: Int
        var nodes: Int
        var gpus: [String: Int]
        var description: String { file }
    }

    static let expected: [Expected] = [
        Expected(file: "demo.yaml", racks: 4, nodes: 9, gpus: ["v100": 12, "p100": 12, "k80": 12]),
        Expected(file: "gavel-4-4-4.yaml", racks: 3, nodes: 12, gpus: ["v100": 4, "p100": 4, "k80": 4]),
        Expected(file: "gavel-4-4-4-split.yaml", racks: 6, nodes: 12, gpus: ["v100": 4, "p100": 4, "k80": 4]),
        Expected(file: "gavel-8-8-8.yaml", racks: 3, nodes: 24, gpus: ["v100": 8, "p100": 8, "k80": 8]),
        Expected(file: "gavel-12-12-12.yaml", racks: 3, nodes: 36, gpus: ["v100": 12, "p100": 12, "k80": 12]),
        Expected(file: "gavel-36-36-36.yaml", racks: 3, nodes: 108, gpus: ["v100": 36, "p100": 36, "k80": 36]),
        Expected(file: "large-16k.yaml", racks: 64, nodes: 2048, gpus: ["v100": 5632, "p100": 5376, "k80": 5376]),
    ]

    @Test("loads with the expected racks, nodes and GPUs", arguments: expected)
    func loads(_ expected: Expected) throws {
        let config = try ClusterConfig.load(path: shippedConfig(expected.file))
        #expect(config.racks.count == expected.racks)
        #expect(config.nodes.count == expected.nodes)
        #expect(config.gpuCounts == expected.gpus)
        #expect(config.totalGPUs == expected.gpus.values.reduce(0, +))
        #expect(config.gpuTypes.map(\.name) == ["v100", "p100", "k80"])
        #expect(Set(config.nodes.map(\.id)).count == config.nodes.count)
        for rack in config.racks { #expect(rack.nodes.allSatisfy { $0.rack == rack.id }) }
    }

    @Test("large-16k has 16,384 GPUs over 64 racks of 32 eight-GPU nodes")
    func large() throws {
        let config = try ClusterConfig.load(path: shippedConfig("large-16k.yaml"))
        #expect(config.totalGPUs == 16_384)
        #expect(config.racks.allSatisfy { $0.nodes.count == 32 && $0.nodes.allSatisfy { $0.gpus.values.first == 8 } })
    }

    @Test("every shipped config is covered by a test")
    func allCovered() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("cluster-configs").path)
            .filter { $0.hasSuffix(".yaml") }
        #expect(Set(files) == Set(Self.expected.map(\.file)))
    }

    @Test("shipped configs use disjoint addresses, so two clusters can run side by side")
    func disjointPorts() throws {
        var owner: [String: String] = [:]
        for expected in Self.expected {
            let config = try ClusterConfig.load(path: shippedConfig(expected.file))
            let addresses = [config.gateway.address] + config.racks.flatMap { [$0.shardAddress, $0.agentAddress] }
            for address in addresses {
                #expect(owner[address] == nil, "\(address) used by \(expected.file) and \(owner[address] ?? "")")
                owner[address] = expected.file
            }
        }
    }

    @Test("gavel configs have one single-GPU-node rack per GPU type")
    func gavelShape() throws {
        let config = try ClusterConfig.load(path: shippedConfig("gavel-36-36-36.yaml"))
        #expect(config.racks.map(\.id) == ["v100", "p100", "k80"])
        for rack in config.racks {
            #expect(rack.nodes.allSatisfy { $0.gpus == [rack.id: 1] })
        }
    }

    @Test("demo has live-run settings and a mixed rack")
    func demo() throws {
        let config = try ClusterConfig.load(path: shippedConfig("demo.yaml"))
        #expect(config.name == "demo")
        #expect(config.speedup == 60)
        #expect(config.roundSeconds == 360)
        #expect(config.restartSeconds == 30)
        #expect(config.nodes.allSatisfy { $0.gpus.values.reduce(0, +) == 4 })
        #expect(config.rack("r3")?.gpuCounts == ["v100": 4, "p100": 4, "k80": 4])
        #expect(config.gateway.address == "tcp://127.0.0.1:7700")
        #expect(config.racks.map(\.shardAddress) == (7710...7713).map { "tcp://127.0.0.1:\($0)" })
        #expect(config.gpuTypes.first == GPUTypeSpec(name: "v100", memoryGiB: 16))
    }

    @Test("summary names the cluster, GPUs per type and total, addresses, round and speed-up")
    func summary() throws {
        let config = try ClusterConfig.load(path: shippedConfig("demo.yaml"))
        let text = config.summary
        for part in ["demo", "36 total", "v100 12", "p100 12", "k80 12", "racks    4", "nodes 9",
                     "tcp://127.0.0.1:7700", "tcp://127.0.0.1:7713", "tcp://127.0.0.1:7723", "360 s", "speed-up 60x"] {
            #expect(text.contains(part), "summary lacks '\(part)':\n\(text)")
        }
        let json = try JSONSerialization.jsonObject(with: config.summaryInfo.jsonData()) as? [String: Any]
        #expect(json?["total_gpus"] as? Int == 36)
        #expect(json?["gpus"] as? [String: Int] == ["v100": 12, "p100": 12, "k80": 12])
        #expect(json?["speedup"] as? Double == 60)
        #expect((json?["rack_details"] as? [Any])?.count == 4)
    }
}

@Suite("Cluster config parsing")
struct ClusterConfigParsingTests {
    @Test("the base config is valid and gets defaults")
    func baseIsValid() throws {
        let config = try ClusterConfig.parse(yaml: base, file: "base.yaml")
        #expect(config.roundSeconds == 360)
        #expect(config.speedup == 1)
        #expect(config.restartSeconds == 30)
        #expect(config.network == NetworkSpec.default)
        #expect(config.gpuTypes == [GPUTypeSpec(name: "v100"), GPUTypeSpec(name: "p100"), GPUTypeSpec(name: "k80")])
        #expect(config.gpuCounts == ["v100": 4, "p100": 4, "k80": 4])
    }

    @Test("node groups expand to prefix+from ... prefix+(from+count-1)")
    func nodeGroups() throws {
        let config = try ClusterConfig.parse(yaml: base, file: "base.yaml")
        let r1 = try #require(config.rack("r1"))
        #expect(r1.nodes.map(\.id) == ["r1-n0", "r1-n1", "r1-n2"])
        #expect(r1.nodes.map(\.rack) == ["r1", "r1", "r1"])
        #expect(r1.nodes[1].gpus == ["k80": 2])
        #expect(r1.nodes[2].gpuIDs.map(\.id) == ["r1-n2-g0", "r1-n2-g1"])

        // `from` defaults to 0.
        let noFrom = try ClusterConfig.parse(yaml: variant([("from: 1, count: 2", "count: 3"), ("r1-n0", "solo")]), file: "x.yaml")
        #expect(noFrom.rack("r1")?.nodes.map(\.id) == ["solo", "r1-n0", "r1-n1", "r1-n2"])
    }

    @Test("explicit settings, network tiers and alternative address schemes")
    func explicitSettings() throws {
        let yaml = variant([
            ("name: t\n", """
                name: t
                round_seconds: 120.5
                speedup: 30
                restart_seconds: 0
                network:
                  spine: {bandwidth_gbps: 10, latency_us: 50}

                """),
            ("[v100, p100, k80]", "[{name: v100, memory_gib: 32}, p100, k80]"),
            ("tcp://127.0.0.1:7711", "ipc:///tmp/bourse-r1.ipc"),
            ("tcp://127.0.0.1:7721", "inproc://r1-agent"),
            ("tcp://127.0.0.1:7700", "tcp://*:7700"),
        ])
        let config = try ClusterConfig.parse(yaml: yaml, file: "x.yaml")
        #expect(config.roundSeconds == 120.5)
        #expect(config.speedup == 30)
        #expect(config.restartSeconds == 0)
        #expect(config.network.tiers[.spine] == LinkSpec(bandwidthGbps: 10, latencyMicroseconds: 50))
        #expect(config.network.tiers[.rack] == NetworkSpec.default.tiers[.rack])
        #expect(config.gpuTypes[0].memoryGiB == 32)
        #expect(config.gateway.address == "tcp://*:7700")
        #expect(config.rack("r1")?.shardAddress == "ipc:///tmp/bourse-r1.ipc")
        #expect(config.rack("r1")?.agentAddress == "inproc://r1-agent")
    }

    @Test("YAML anchors and merge keys work")
    func mergeKeys() throws {
        let yaml = variant([
            ("      - {id: r0-n0, gpus: {v100: 4}}", "      - &dgx {id: r0-n0, gpus: {v100: 4}}\n      - {<<: *dgx, id: r0-n1}"),
        ])
        let config = try ClusterConfig.parse(yaml: yaml, file: "x.yaml")
        #expect(config.rack("r0")?.nodes.map(\.id) == ["r0-n0", "r0-n1"])
        #expect(config.rack("r0")?.nodes[1].gpus == ["v100": 4])
    }

    @Test("load(path:) reports a missing file by name")
    func missingFile() {
        do {
            _ = try ClusterConfig.load(path: "/nonexistent/cluster.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description == "/nonexistent/cluster.yaml: no such file")
        }
    }

    @Test("all problems are collected, in document order")
    func collectsAll() {
        let found = problems(variant([
            ("name: t\n", "name: t\nspeedup: 0\n"),
            ("{v100: 4}", "{v200: 4}"),
            ("- id: r1", "- id: r0"),
            ("tcp://127.0.0.1:7721", "tcp://127.0.0.1:7711"),
        ]))
        #expect(found.map(\.path) == ["speedup", "racks[0].nodes[0].gpus.v200", "racks[1].id", "racks[1].agent"])
        let lines = found.compactMap(\.line)
        #expect(lines.count == found.count)
        #expect(lines == lines.sorted())
    }
}

/// One invalid config and what its error must say.
struct BadConfig: Sendable, CustomStringConvertible {
    var name: String
    var yaml: String
    /// Substrings the problems' text must contain (the field path and the problem).
    var expect: [String]
    var description: String { name }
}

@Suite("Cluster config validation errors")
struct ClusterConfigValidationTests {
    static let cases: [BadConfig] = [
        BadConfig(name: "missing name", yaml: variant([("name: t\n", "")]),
                  expect: ["name: missing required field 'name'"]),
        BadConfig(name: "missing racks field", yaml: baseWithoutRacks,
                  expect: ["racks: missing required field 'racks'"]),
        BadConfig(name: "missing gateway", yaml: variant([("gateway: {address: \"tcp://127.0.0.1:7700\"}\n", "")]),
                  expect: ["gateway: missing required field 'gateway'"]),
        BadConfig(name: "missing rack shard", yaml: variant([("    shard: \"tcp://127.0.0.1:7711\"\n", "")]),
                  expect: ["racks[1].shard: missing required field 'shard'"]),
        BadConfig(name: "missing gpus", yaml: variant([("{id: r0-n0, gpus: {v100: 4}}", "{id: r0-n0}")]),
                  expect: ["racks[0].nodes[0].gpus: missing required field 'gpus'"]),
        BadConfig(name: "missing node id", yaml: variant([("{id: r0-n0, gpus", "{gpus")]),
                  expect: ["racks[0].nodes[0].id: missing required field 'id'", "'prefix' and 'count'"]),
        BadConfig(name: "missing group count", yaml: variant([("from: 1, count: 2, ", "from: 1, ")]),
                  expect: ["racks[1].nodes[1].count: missing required field 'count'"]),
        BadConfig(name: "empty required value", yaml: variant([("name: t", "name:")]),
                  expect: ["name: required field 'name' has no value"]),
        BadConfig(name: "string for a number", yaml: variant([("name: t\n", "name: t\nround_seconds: fast\n")]),
                  expect: ["round_seconds: expected a number, got string 'fast'"]),
        BadConfig(name: "quoted number", yaml: variant([("name: t\n", "name: t\nspeedup: \"60\"\n")]),
                  expect: ["speedup: expected a number, got string '60' (remove the quotes)"]),
        BadConfig(name: "fraction for a count", yaml: variant([("{v100: 4}", "{v100: 2.5}")]),
                  expect: ["racks[0].nodes[0].gpus.v100: expected a whole number, got number 2.5"]),
        BadConfig(name: "list for a mapping", yaml: variant([("{v100: 4}", "[v100]")]),
                  expect: ["racks[0].nodes[0].gpus: expected a mapping", "got a list"]),
        BadConfig(name: "mapping for a list", yaml: variant([("gpu_types: [v100, p100, k80]", "gpu_types: {v100: 1}")]),
                  expect: ["gpu_types: expected a list, got a mapping"]),
        BadConfig(name: "list for a string", yaml: variant([("name: t", "name: [a, b]")]),
                  expect: ["name: expected a string, got a list"]),
        BadConfig(name: "unknown top-level key", yaml: variant([("name: t\n", "name: t\nround_secs: 60\n")]),
                  expect: ["round_secs: unknown key 'round_secs' (did you mean 'round_seconds'?)"]),
        BadConfig(name: "unknown rack key", yaml: variant([("    nodes:\n      - {id: r0-n0", "    nodez:\n      - {id: r0-n0")]),
                  expect: ["racks[0].nodez: unknown key 'nodez' (did you mean 'nodes'?)"]),
        BadConfig(name: "unknown key without a close match", yaml: variant([("{id: r0-n0, gpus", "{id: r0-n0, colour: red, gpus")]),
                  expect: ["racks[0].nodes[0].colour: unknown key 'colour' (allowed: id, prefix, from, count, gpus)"]),
        BadConfig(name: "unknown GPU type", yaml: variant([("{v100: 4}", "{v200: 4}")]),
                  expect: ["racks[0].nodes[0].gpus.v200: unknown GPU type 'v200' (declared: v100, p100, k80)"]),
        BadConfig(name: "duplicate GPU type", yaml: variant([("[v100, p100, k80]", "[v100, p100, v100]")]),
                  expect: ["gpu_types[2]: duplicate GPU type 'v100' (first declared at gpu_types[0])"]),
        BadConfig(name: "upper-case GPU type", yaml: variant([("[v100, p100, k80]", "[V100, p100, k80]")]),
                  expect: ["gpu_types[0]: GPU type name 'V100' must be lower-case"]),
        BadConfig(name: "no GPU types", yaml: variant([("[v100, p100, k80]", "[]")]),
                  expect: ["gpu_types: declare at least one GPU type"]),
        BadConfig(name: "duplicate node id", yaml: variant([("r1-n0", "r0-n0")]),
                  expect: ["racks[1].nodes[0].id: duplicate node id 'r0-n0' (first defined at racks[0].nodes[0])"]),
        BadConfig(name: "node group overlapping a node", yaml: variant([("from: 1", "from: 0")]),
                  expect: ["racks[1].nodes[1]: duplicate node id 'r1-n0' (first defined at racks[1].nodes[0])"]),
        BadConfig(name: "node with both id and prefix", yaml: variant([("{prefix: r1-n,", "{id: x, prefix: r1-n,")]),
                  expect: ["racks[1].nodes[1]: give either 'id' (one node) or 'prefix' and 'count' (a node group), not both"]),
        BadConfig(name: "duplicate rack id", yaml: variant([("- id: r1", "- id: r0")]),
                  expect: ["racks[1].id: duplicate rack id 'r0' (first defined at racks[0])"]),
        BadConfig(name: "duplicate address between racks", yaml: variant([("tcp://127.0.0.1:7721", "tcp://127.0.0.1:7710")]),
                  expect: ["racks[1].agent: duplicate address 'tcp://127.0.0.1:7710': already used by racks[0].shard"]),
        BadConfig(name: "duplicate address with the gateway", yaml: variant([("tcp://127.0.0.1:7720", "tcp://127.0.0.1:7700")]),
                  expect: ["racks[0].agent: duplicate address 'tcp://127.0.0.1:7700': already used by gateway.address"]),
        BadConfig(name: "zero GPUs", yaml: variant([("{v100: 4}", "{v100: 0}")]),
                  expect: ["racks[0].nodes[0].gpus.v100: GPU count must be at least 1, got 0"]),
        BadConfig(name: "negative GPUs", yaml: variant([("{v100: 4}", "{v100: -2}")]),
                  expect: ["racks[0].nodes[0].gpus.v100: GPU count must be at least 1, got -2"]),
        BadConfig(name: "no GPUs on a node", yaml: variant([("{v100: 4}", "{}")]),
                  expect: ["racks[0].nodes[0].gpus: a node needs at least one GPU"]),
        BadConfig(name: "zero group count", yaml: variant([("count: 2", "count: 0")]),
                  expect: ["racks[1].nodes[1].count: value must be at least 1, got 0"]),
        BadConfig(name: "zero round", yaml: variant([("name: t\n", "name: t\nround_seconds: 0\n")]),
                  expect: ["round_seconds: must be greater than 0, got 0"]),
        BadConfig(name: "negative speedup", yaml: variant([("name: t\n", "name: t\nspeedup: -2\n")]),
                  expect: ["speedup: must be greater than 0, got -2"]),
        BadConfig(name: "zero speedup", yaml: variant([("name: t\n", "name: t\nspeedup: 0\n")]),
                  expect: ["speedup: must be greater than 0, got 0"]),
        BadConfig(name: "negative restart", yaml: variant([("name: t\n", "name: t\nrestart_seconds: -5\n")]),
                  expect: ["restart_seconds: must not be negative, got -5"]),
        BadConfig(name: "no racks", yaml: baseWithoutRacks + "racks: []\n",
                  expect: ["racks: no racks: a cluster needs at least one rack"]),
        BadConfig(name: "rack with no nodes", yaml: variant([("    nodes:\n      - {id: r0-n0, gpus: {v100: 4}}", "    nodes: []")]),
                  expect: ["racks[0].nodes: rack 'r0' has no nodes"]),
        BadConfig(name: "address without scheme", yaml: variant([("\"tcp://127.0.0.1:7710\"", "\"127.0.0.1:7710\"")]),
                  expect: ["racks[0].shard: malformed address '127.0.0.1:7710': must start with tcp://, ipc:// or inproc://"]),
        BadConfig(name: "http address", yaml: variant([("tcp://127.0.0.1:7700", "http://127.0.0.1:7700")]),
                  expect: ["gateway.address: malformed address 'http://127.0.0.1:7700'"]),
        BadConfig(name: "tcp address without port", yaml: variant([("tcp://127.0.0.1:7710", "tcp://127.0.0.1")]),
                  expect: ["racks[0].shard: malformed address 'tcp://127.0.0.1': expected tcp://HOST:PORT"]),
        BadConfig(name: "tcp port out of range", yaml: variant([("tcp://127.0.0.1:7710", "tcp://127.0.0.1:77100")]),
                  expect: ["racks[0].shard: malformed address 'tcp://127.0.0.1:77100': port must be a number from 1 to 65535"]),
        BadConfig(name: "network tier typo", yaml: variant([("name: t\n", "name: t\nnetwork: {spines: {bandwidth_gbps: 1, latency_us: 1}}\n")]),
                  expect: ["network.spines: unknown key 'spines' (did you mean 'spine'?)"]),
        BadConfig(name: "zero bandwidth", yaml: variant([("name: t\n", "name: t\nnetwork: {rack: {bandwidth_gbps: 0, latency_us: 1}}\n")]),
                  expect: ["network.rack.bandwidth_gbps: must be greater than 0, got 0"]),
        BadConfig(name: "YAML syntax error", yaml: variant([("racks:\n", "racks: [\n")]),
                  expect: ["x.yaml:", "YAML syntax error"]),
        BadConfig(name: "YAML bad indentation", yaml: "name: t\n  gpu_types: [v100]\n",
                  expect: ["x.yaml:2:", "YAML syntax error", "mapping values are not allowed"]),
        BadConfig(name: "duplicate YAML key", yaml: variant([("name: t\n", "name: t\nname: u\n")]),
                  expect: ["x.yaml:1:1: duplicate key 'name'"]),
        BadConfig(name: "empty file", yaml: "", expect: ["cluster-configs/x.yaml: file is empty"]),
        BadConfig(name: "blank file", yaml: "  \n\n", expect: ["cluster-configs/x.yaml: file is empty"]),
        BadConfig(name: "comments only", yaml: "# nothing here\n", expect: ["cluster-configs/x.yaml: file has no content"]),
        BadConfig(name: "not a mapping", yaml: "- a\n- b\n", expect: ["x.yaml:1:1: expected a mapping", "got a list"]),
    ]

    @Test("names the file, the field and the problem", arguments: cases)
    func reportsProblem(_ bad: BadConfig) {
        let found = problems(bad.yaml)
        #expect(!found.isEmpty, "expected \(bad.name) to be rejected")
        let text = found.map(\.description).joined(separator: "\n")
        for part in bad.expect {
            #expect(text.contains(part), "\(bad.name): '\(part)' not in:\n\(text)")
        }
        for problem in found {
            #expect(problem.file == "cluster-configs/x.yaml")
            #expect(problem.description.hasPrefix("cluster-configs/x.yaml"))
        }
    }

    @Test("syntax errors carry Yams' line and column")
    func syntaxErrorPosition() throws {
        let found = problems("name: t\ngpu_types: [v100\nracks: []\n")
        let first = try #require(found.first)
        let line = try #require(first.line)
        let column = try #require(first.column)
        #expect(first.description.hasPrefix("cluster-configs/x.yaml:\(line):\(column): YAML syntax error"))
    }

    @Test("semantic errors point at the offending line")
    func semanticErrorPosition() throws {
        let found = problems(variant([("{v100: 4}", "{v200: 4}")]))
        let first = try #require(found.first)
        #expect(first.line == 9)
        #expect(first.description.hasPrefix("cluster-configs/x.yaml:9:"))
    }
}
