import Foundation
import Yams

// Loading and validating cluster configs from YAML.
//
// Schema (see cluster-configs/*.yaml for complete examples):
//
//   name: demo                      # required
//   round_seconds: 360              # > 0, default 360
//   speedup: 60                     # > 0, default 1
//   restart_seconds: 30             # >= 0, default 30
//   gpu_types:                      # required, non-empty; a bare name is also accepted: [v100, k80]
//     - {name: v100, memory_gib: 16}
//   network:                        # optional; each tier defaults to NetworkSpec.default
//     node:  {bandwidth_gbps: 300, latency_us: 2}
//     rack:  {bandwidth_gbps: 100, latency_us: 5}
//     spine: {bandwidth_gbps: 25,  latency_us: 20}
//   gateway: {address: "tcp://127.0.0.1:7700"}
//   racks:                          # required, non-empty; config order = failover order
//     - id: r0
//       shard: "tcp://127.0.0.1:7710"
//       agent: "tcp://127.0.0.1:7720"
//       nodes:                      # required, non-empty
//         - {id: r0-n0, gpus: {v100: 4}}                             # one node
//         - {prefix: r0-n, from: 1, count: 3, gpus: {v100: 4}}       # group: r0-n1, r0-n2, r0-n3
//   tenants:                        # optional; unique names, weight > 0 (default 1)
//     - {name: vision, weight: 2}
//
//   security:                       # optional (see SecurityConfig and the block at the end)
//     cluster_key_env: BOURSE_CLUSTER_KEY   # or cluster_key_file: path (relative to the config)
//     tenants: [{name: alice, token_sha256: <64 hex digits>}]
//
// YAML merge keys (`<<: *anchor`) are honoured in every mapping.

extension ClusterConfig {
    /// Largest node group (`count`) accepted, to catch typos such as `count: 3000000`.
    public static let maxNodeGroupCount = 100_000

    /// Reads and validates the cluster config at `path`.
    /// - Throws: `ConfigErrors` listing every problem found (file unreadable, YAML syntax, schema).
    public static func load(path: String) throws(ConfigErrors) -> ClusterConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ConfigErrors([ConfigError(file: path, path: "", message: "no such file")])
        }
        guard !isDirectory.boolValue else {
            throw ConfigErrors([ConfigError(file: path, path: "", message: "is a directory, not a config file")])
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ConfigErrors([ConfigError(file: path, path: "", message: "cannot read file: \(error.localizedDescription)")])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigErrors([ConfigError(file: path, path: "", message: "not UTF-8 text")])
        }
        return try parse(yaml: text, file: path)
    }

    /// Parses and validates a cluster config given as YAML text; `file` names it in error messages.
    /// - Throws: `ConfigErrors` listing every problem found (YAML syntax, schema).
    public static func parse(yaml: String, file: String) throws(ConfigErrors) -> ClusterConfig {
        var reader = ConfigReader(file: file)
        let config = reader.read(yaml: yaml)
        if let config, reader.problems.isEmpty { return config }
        guard !reader.problems.isEmpty else {
            throw ConfigErrors([ConfigError(file: file, path: "", message: "invalid config")])
        }
        // Document order (problems without a position first), stable for ties.
        let ordered = reader.problems.enumerated().sorted { a, b in
            let ka = (a.element.line ?? 0, a.element.column ?? 0, a.offset)
            let kb = (b.element.line ?? 0, b.element.column ?? 0, b.offset)
            return ka < kb
        }
        throw ConfigErrors(ordered.map(\.element))
    }
}

// MARK: - Reader

/// Walks the YAML node tree, building the config and recording every problem on the way.
private struct ConfigReader {
    let file: String
    var problems: [ConfigError] = []

    init(file: String) { self.file = file }

    // MARK: Top level

    mutating func read(yaml: String) -> ClusterConfig? {
        guard !yaml.allSatisfy(\.isWhitespace) else {
            fail("", nil, "file is empty (expected a cluster config; see cluster-configs/demo.yaml)")
            return nil
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            yamlError(error)
            return nil
        } catch {
            fail("", nil, "cannot parse YAML: \(error)")
            return nil
        }
        guard let root, !isNull(root) else {
            fail("", nil, "file has no content, only comments (expected a cluster config; see cluster-configs/demo.yaml)")
            return nil
        }
        return readCluster(root)
    }

    mutating func readCluster(_ root: Node) -> ClusterConfig? {
        guard let fields = mapping(root, "", keys: [
            "name", "round_seconds", "speedup", "restart_seconds", "gpu_types", "network", "gateway", "racks",
            "security",
            "tenants",
        ]) else { return nil }

        let name = required(fields, "name", in: root, "", hint: "a label for logs, e.g. 'demo'").flatMap { string($0, "name") }
        if let name, name.isEmpty { fail("name", fields["name"], "must not be empty") }

        let roundSeconds = fields["round_seconds"].map { positive($0, "round_seconds") } ?? 360
        let speedup = fields["speedup"].map { positive($0, "speedup") } ?? 1
        let restartSeconds = fields["restart_seconds"].map { nonNegative($0, "restart_seconds") } ?? 30

        let gpuTypes = required(fields, "gpu_types", in: root, "", hint: "a list such as [{name: v100}, {name: k80}]")
            .flatMap { readGPUTypes($0, "gpu_types") }
        let network = fields["network"].map { readNetwork($0, "network") } ?? NetworkSpec.default

        var addresses = AddressBook()
        let gateway = required(fields, "gateway", in: root, "", hint: "e.g. {address: \"tcp://127.0.0.1:7700\"}")
            .flatMap { readGateway($0, "gateway", &addresses) }

        let racks = required(fields, "racks", in: root, "", hint: "a list of racks, each with id, shard, agent and nodes")
            .flatMap { readRacks($0, "racks", gpuTypes: gpuTypes, &addresses) }

        let security = fields["security"].map { readSecurity($0, "security") } ?? SecurityConfig()
        let tenants = fields["tenants"].map { readTenants($0, "tenants") } ?? []

        guard let name, let gpuTypes, let gateway, let racks,
              let roundSeconds, let speedup, let restartSeconds, let network, let tenants
        else { return nil }
        var config = ClusterConfig(
            name: name, gpuTypes: gpuTypes, network: network, gateway: gateway, racks: racks,
            roundSeconds: roundSeconds, speedup: speedup, restartSeconds: restartSeconds)
        if let security { config.security = security }
        config.tenants = tenants
        return config
    }

    mutating func readTenants(_ node: Node, _ path: String) -> [TenantSpec]? {
        guard let items = sequence(node, path) else { return nil }
        var tenants: [TenantSpec] = []
        var seen: [String: String] = [:]
        var ok = true
        for (i, item) in items.enumerated() {
            let itemPath = "\(path)[\(i)]"
            guard let fields = mapping(item, itemPath, keys: ["name", "weight"]) else { ok = false; continue }
            let name = required(fields, "name", in: item, itemPath, hint: "e.g. vision").flatMap { string($0, join(itemPath, "name")) }
            let weight = fields["weight"].map { positive($0, join(itemPath, "weight")) } ?? 1
            guard let name, let weight else { ok = false; continue }
            if name.isEmpty {
                fail(join(itemPath, "name"), fields["name"], "must not be empty")
                ok = false
            } else if let first = seen[name] {
                fail(join(itemPath, "name"), fields["name"], "duplicate tenant '\(name)' (first declared at \(first))")
                ok = false
            } else {
                seen[name] = itemPath
                tenants.append(TenantSpec(name: name, weight: weight))
            }
        }
        return ok ? tenants : nil
    }

    // MARK: Sections

    mutating func readGPUTypes(_ node: Node, _ path: String) -> [GPUTypeSpec]? {
        guard let items = sequence(node, path) else { return nil }
        if items.isEmpty {
            fail(path, node, "declare at least one GPU type, e.g. [{name: v100, memory_gib: 16}]")
            return nil
        }
        var types: [GPUTypeSpec] = []
        var seen: [String: String] = [:]
        var ok = true
        for (i, item) in items.enumerated() {
            let itemPath = "\(path)[\(i)]"
            let spec: GPUTypeSpec?
            if case .scalar = item, !isNull(item) {
                spec = string(item, itemPath).map { GPUTypeSpec(name: $0) }
            } else if let fields = mapping(item, itemPath, keys: ["name", "memory_gib"]) {
                let name = required(fields, "name", in: item, itemPath, hint: "e.g. v100").flatMap { string($0, join(itemPath, "name")) }
                let memory = fields["memory_gib"].map { positive($0, join(itemPath, "memory_gib")) }
                if let name, memory != .some(nil) {
                    spec = GPUTypeSpec(name: name, memoryGiB: memory ?? nil)
                } else {
                    spec = nil
                }
            } else {
                spec = nil
            }
            guard let spec else { ok = false; continue }
            if !isIdentifier(spec.name) || spec.name != spec.name.lowercased() {
                fail(itemPath, item, "GPU type name '\(spec.name)' must be lower-case letters, digits, '-' or '_' (as in throughput tables, e.g. 'v100')")
                ok = false
            } else if let first = seen[spec.name] {
                fail(itemPath, item, "duplicate GPU type '\(spec.name)' (first declared at \(first))")
                ok = false
            } else {
                seen[spec.name] = itemPath
                types.append(spec)
            }
        }
        return ok ? types : nil
    }

    mutating func readNetwork(_ node: Node, _ path: String) -> NetworkSpec? {
        guard let fields = mapping(node, path, keys: NetworkTier.allCases.map(\.rawValue)) else { return nil }
        var tiers = NetworkSpec.default.tiers
        var ok = true
        for tier in NetworkTier.allCases {
            guard let linkNode = fields[tier.rawValue] else { continue }
            let linkPath = join(path, tier.rawValue)
            guard let link = mapping(linkNode, linkPath, keys: ["bandwidth_gbps", "latency_us"]) else { ok = false; continue }
            let bandwidth = required(link, "bandwidth_gbps", in: linkNode, linkPath, hint: "link bandwidth in Gb/s")
                .flatMap { positive($0, join(linkPath, "bandwidth_gbps")) }
            let latency = required(link, "latency_us", in: linkNode, linkPath, hint: "link latency in microseconds")
                .flatMap { nonNegative($0, join(linkPath, "latency_us")) }
            guard let bandwidth, let latency else { ok = false; continue }
            tiers[tier] = LinkSpec(bandwidthGbps: bandwidth, latencyMicroseconds: latency)
        }
        return ok ? NetworkSpec(tiers: tiers) : nil
    }

    mutating func readGateway(_ node: Node, _ path: String, _ addresses: inout AddressBook) -> GatewaySpec? {
        guard let fields = mapping(node, path, keys: ["address"]) else { return nil }
        guard let address = required(fields, "address", in: node, path, hint: "e.g. \"tcp://127.0.0.1:7700\"")
            .flatMap({ readAddress($0, join(path, "address"), &addresses) })
        else { return nil }
        return GatewaySpec(address: address)
    }

    mutating func readRacks(_ node: Node, _ path: String, gpuTypes: [GPUTypeSpec]?, _ addresses: inout AddressBook) -> [RackSpec]? {
        guard let items = sequence(node, path) else { return nil }
        if items.isEmpty {
            fail(path, node, "no racks: a cluster needs at least one rack")
            return nil
        }
        var racks: [RackSpec] = []
        var ok = true
        var rackIDs: [String: String] = [:]
        var nodeIDs: [String: String] = [:]
        for (i, item) in items.enumerated() {
            let rackPath = "\(path)[\(i)]"
            guard let fields = mapping(item, rackPath, keys: ["id", "shard", "agent", "nodes"]) else { ok = false; continue }
            let idPath = join(rackPath, "id")
            let givenID = required(fields, "id", in: item, rackPath, hint: "e.g. r0").flatMap { string($0, idPath) }
            var id = givenID
            if let rackID = id {
                if !isIdentifier(rackID) {
                    fail(idPath, fields["id"], "rack id '\(rackID)' must be letters, digits, '.', '-' or '_'")
                    id = nil
                } else if let first = rackIDs[rackID] {
                    fail(idPath, fields["id"], "duplicate rack id '\(rackID)' (first defined at \(first))")
                    id = nil
                } else {
                    rackIDs[rackID] = rackPath
                }
            }
            let shard = required(fields, "shard", in: item, rackPath, hint: "address of the rack's scheduler shard, e.g. \"tcp://127.0.0.1:7710\"")
                .flatMap { readAddress($0, join(rackPath, "shard"), &addresses) }
            let agent = required(fields, "agent", in: item, rackPath, hint: "address of the rack's agent, e.g. \"tcp://127.0.0.1:7720\"")
                .flatMap { readAddress($0, join(rackPath, "agent"), &addresses) }
            let nodes = required(fields, "nodes", in: item, rackPath, hint: "a list of nodes such as {id: r0-n0, gpus: {v100: 4}}")
                .flatMap { readNodes($0, join(rackPath, "nodes"), rack: givenID, gpuTypes: gpuTypes, &nodeIDs) }
            guard let id, let shard, let agent, let nodes else { ok = false; continue }
            racks.append(RackSpec(id: id, shardAddress: shard, agentAddress: agent, nodes: nodes))
        }
        return ok ? racks : nil
    }

    mutating func readNodes(
        _ node: Node, _ path: String, rack: String?, gpuTypes: [GPUTypeSpec]?, _ nodeIDs: inout [String: String]
    ) -> [NodeSpec]? {
        guard let items = sequence(node, path) else { return nil }
        if items.isEmpty {
            fail(path, node, "\(rack.map { "rack '\($0)'" } ?? "this rack") has no nodes: a rack needs at least one node")
            return nil
        }
        var nodes: [NodeSpec] = []
        var ok = true
        for (i, item) in items.enumerated() {
            let nodePath = "\(path)[\(i)]"
            guard let fields = mapping(item, nodePath, keys: ["id", "prefix", "from", "count", "gpus"]) else { ok = false; continue }
            let gpus = required(fields, "gpus", in: item, nodePath, hint: "GPUs by type, e.g. {v100: 4}")
                .flatMap { readGPUs($0, join(nodePath, "gpus"), gpuTypes: gpuTypes) }

            // One node (`id`) or a node group (`prefix`, `count`, optional `from`).
            let isGroup = fields["prefix"] != nil || fields["count"] != nil || fields["from"] != nil
            var ids: [String]?
            if isGroup {
                if fields["id"] != nil {
                    fail(nodePath, item, "give either 'id' (one node) or 'prefix' and 'count' (a node group), not both")
                    ok = false
                    continue
                }
                let prefix = required(fields, "prefix", in: item, nodePath, hint: "node group id prefix, e.g. r0-n")
                    .flatMap { string($0, join(nodePath, "prefix")) }
                let count = required(fields, "count", in: item, nodePath, hint: "number of nodes in the group")
                    .flatMap { integer($0, join(nodePath, "count"), min: 1, max: ClusterConfig.maxNodeGroupCount) }
                let from = fields["from"].map { integer($0, join(nodePath, "from"), min: 0, max: Int(Int32.max)) } ?? 0
                if let prefix, let count, let from {
                    ids = (from..<(from + count)).map { "\(prefix)\($0)" }
                    if let first = ids?.first, !isIdentifier(first) {
                        fail(join(nodePath, "prefix"), fields["prefix"], "node ids such as '\(first)' must be letters, digits, '.', '-' or '_'")
                        ids = nil
                    }
                }
            } else {
                let idPath = join(nodePath, "id")
                if let nodeID = required(fields, "id", in: item, nodePath, hint: "the node's id; or 'prefix' and 'count' for a node group")
                    .flatMap({ string($0, idPath) }) {
                    if isIdentifier(nodeID) {
                        ids = [nodeID]
                    } else {
                        fail(idPath, fields["id"], "node id '\(nodeID)' must be letters, digits, '.', '-' or '_'")
                    }
                }
            }
            guard let ids else { ok = false; continue }

            var duplicates: [(id: String, first: String)] = []
            for nodeID in ids {
                if let first = nodeIDs[nodeID] { duplicates.append((nodeID, first)) } else { nodeIDs[nodeID] = nodePath }
            }
            if let dup = duplicates.first {
                let more = duplicates.count > 1 ? " and \(duplicates.count - 1) more" : ""
                fail(isGroup ? nodePath : join(nodePath, "id"), isGroup ? item : fields["id"],
                     "duplicate node id '\(dup.id)' (first defined at \(dup.first))\(more)")
                ok = false
                continue
            }
            guard let gpus else { ok = false; continue }
            guard let rack else { ok = false; continue }
            nodes.append(contentsOf: ids.map { NodeSpec(id: $0, rack: rack, gpus: gpus) })
        }
        return ok ? nodes : nil
    }

    mutating func readGPUs(_ node: Node, _ path: String, gpuTypes: [GPUTypeSpec]?) -> [String: Int]? {
        guard let fields = mapping(node, path, keys: nil) else { return nil }
        if fields.pairs.isEmpty {
            fail(path, node, "a node needs at least one GPU, e.g. {v100: 4}")
            return nil
        }
        var gpus: [String: Int] = [:]
        var ok = true
        for (type, keyNode, value) in fields.pairs {
            let typePath = join(path, type)
            if let gpuTypes, !gpuTypes.contains(where: { $0.name == type }) {
                let declared = gpuTypes.map(\.name).joined(separator: ", ")
                fail(typePath, keyNode, "unknown GPU type '\(type)' (declared: \(declared))")
                ok = false
                continue
            }
            guard let count = integer(value, typePath, min: 1, max: 1_000_000, what: "GPU count") else { ok = false; continue }
            gpus[type] = count
        }
        return ok ? gpus : nil
    }

    /// Reads and checks an NNG address, and that no other endpoint of the cluster uses it.
    mutating func readAddress(_ node: Node, _ path: String, _ addresses: inout AddressBook) -> String? {
        guard let address = string(node, path) else { return nil }
        if let problem = ClusterConfig.addressProblem(address) {
            fail(path, node, problem)
            return nil
        }
        if let first = addresses.used[address] {
            fail(path, node, "duplicate address '\(address)': already used by \(first) (every endpoint needs its own URL)")
            return nil
        }
        addresses.used[address] = path
        return address
    }

    // MARK: Typed scalars

    /// A mapping's entries by key, after merge keys (`<<`) are applied; `keys` (when given) are the
    /// allowed keys, others are reported.
    mutating func mapping(_ node: Node, _ path: String, keys allowed: [String]?) -> Fields? {
        guard case .mapping(let map) = node else {
            fail(path, node, "expected a mapping (key: value pairs), got \(describe(node))")
            return nil
        }
        var fields = Fields()
        var merged: [(String, Node, Node)] = []
        for (keyNode, value) in map {
            guard case .scalar = keyNode, let key = keyNode.string else {
                fail(path, keyNode, "keys must be plain names, got \(describe(keyNode))")
                continue
            }
            if key == "<<" {
                let sources: [Node] = if case .sequence(let seq) = value { Array(seq) } else { [value] }
                for source in sources {
                    guard case .mapping(let sourceMap) = source else {
                        fail(path, source, "a merge key (<<) needs a mapping, got \(describe(source))")
                        continue
                    }
                    for (k, v) in sourceMap { if let kk = k.string { merged.append((kk, k, v)) } }
                }
                continue
            }
            if let allowed, !allowed.contains(key) {
                fail(join(path, key), keyNode, unknownKeyMessage(key, allowed: allowed))
                continue
            }
            fields.append(key, keyNode, value)
        }
        for (key, keyNode, value) in merged where fields[key] == nil {
            if let allowed, !allowed.contains(key) {
                fail(join(path, key), keyNode, unknownKeyMessage(key, allowed: allowed))
                continue
            }
            fields.append(key, keyNode, value)
        }
        return fields
    }

    mutating func sequence(_ node: Node, _ path: String) -> [Node]? {
        guard case .sequence(let seq) = node else {
            fail(path, node, "expected a list, got \(describe(node))")
            return nil
        }
        return Array(seq)
    }

    mutating func required(_ fields: Fields, _ key: String, in node: Node, _ path: String, hint: String) -> Node? {
        if let value = fields[key] {
            if isNull(value) {
                fail(join(path, key), value, "required field '\(key)' has no value (\(hint))")
                return nil
            }
            return value
        }
        fail(join(path, key), node, "missing required field '\(key)' (\(hint))")
        return nil
    }

    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            fail(path, node, "expected a string, got \(describe(node))")
            return nil
        }
        return scalar.string
    }

    /// A finite number (YAML int or float; quoted strings are rejected).
    mutating func number(_ node: Node, _ path: String) -> Double? {
        if case .scalar(let scalar) = node {
            let tag = node.tag.rawValue
            if tag == Tag.Name.int.rawValue, let value = Int.construct(from: scalar) { return Double(value) }
            if tag == Tag.Name.float.rawValue, let value = Double.construct(from: scalar) {
                if value.isFinite { return value }
                fail(path, node, "expected a finite number, got \(scalar.string)")
                return nil
            }
        }
        if case .scalar(let scalar) = node, Double(scalar.string) != nil {
            fail(path, node, "expected a number, got \(describe(node)) (remove the quotes)")
        } else {
            fail(path, node, "expected a number, got \(describe(node))")
        }
        return nil
    }

    mutating func positive(_ node: Node, _ path: String) -> Double? {
        guard let value = number(node, path) else { return nil }
        guard value > 0 else {
            fail(path, node, "must be greater than 0, got \(formatNumber(value))")
            return nil
        }
        return value
    }

    mutating func nonNegative(_ node: Node, _ path: String) -> Double? {
        guard let value = number(node, path) else { return nil }
        guard value >= 0 else {
            fail(path, node, "must not be negative, got \(formatNumber(value))")
            return nil
        }
        return value
    }

    mutating func integer(_ node: Node, _ path: String, min: Int, max: Int, what: String = "value") -> Int? {
        guard case .scalar(let scalar) = node, node.tag.rawValue == Tag.Name.int.rawValue,
              let value = Int.construct(from: scalar)
        else {
            let quoted = if case .scalar(let scalar) = node, Int(scalar.string) != nil { " (remove the quotes)" } else { "" }
            fail(path, node, "expected a whole number, got \(describe(node))\(quoted)")
            return nil
        }
        if value < min {
            fail(path, node, min == 1 ? "\(what) must be at least 1, got \(value)" : "\(what) must be at least \(min), got \(value)")
            return nil
        }
        if value > max {
            fail(path, node, "\(what) \(value) is too large (at most \(max))")
            return nil
        }
        return value
    }

    // MARK: Problems

    mutating func fail(_ path: String, _ node: Node?, _ message: String) {
        problems.append(ConfigError(file: file, path: path, message: message, line: node?.mark?.line, column: node?.mark?.column))
    }

    mutating func yamlError(_ error: YamlError) {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))" }
            problems.append(ConfigError(file: file, path: "", message: message, line: mark.line, column: mark.column))
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            problems.append(ConfigError(
                file: file, path: "", message: "duplicate key \(keys) in one mapping (each key may appear once)",
                line: context.mark.line, column: context.mark.column))
        case let .reader(problem, offset, _, _):
            problems.append(ConfigError(file: file, path: "", message: "cannot read YAML: \(problem)\(offset.map { " at character \($0)" } ?? "")"))
        default:
            problems.append(ConfigError(file: file, path: "", message: "YAML error: \(error)"))
        }
    }
}

/// The entries of one YAML mapping in document order.
private struct Fields {
    var pairs: [(key: String, keyNode: Node, value: Node)] = []

    mutating func append(_ key: String, _ keyNode: Node, _ value: Node) { pairs.append((key, keyNode, value)) }

    subscript(key: String) -> Node? { pairs.first { $0.key == key }?.value }
}

/// Which field first claimed each endpoint address.
private struct AddressBook {
    var used: [String: String] = [:]
}

// MARK: - Helpers

extension ClusterConfig {
    /// Why `address` is not a usable NNG URL, or nil when it is. Accepted: `tcp://HOST:PORT`
    /// (port 1-65535; HOST may be `*` or a bracketed IPv6 address), `ipc://PATH`, `inproc://NAME`.
    public static func addressProblem(_ address: String) -> String? {
        let schemes = "must start with tcp://, ipc:// or inproc://"
        if address.hasPrefix("tcp://") {
            let rest = address.dropFirst("tcp://".count)
            guard let colon = rest.lastIndex(of: ":") else {
                return "malformed address '\(address)': expected tcp://HOST:PORT"
            }
            let host = rest[..<colon]
            let port = rest[rest.index(after: colon)...]
            guard !host.isEmpty else { return "malformed address '\(address)': missing host in tcp://HOST:PORT" }
            guard let number = Int(port), (1...65535).contains(number) else {
                return "malformed address '\(address)': port must be a number from 1 to 65535"
            }
            return nil
        }
        for scheme in ["ipc://", "inproc://"] where address.hasPrefix(scheme) {
            return address.count > scheme.count ? nil : "malformed address '\(address)': missing name after \(scheme)"
        }
        return "malformed address '\(address)': \(schemes)"
    }
}

private func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

private func isNull(_ node: Node) -> Bool {
    node.tag.rawValue == Tag.Name.null.rawValue
}

private func isIdentifier(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, isASCIIAlnum(first) else { return false }
    return s.unicodeScalars.allSatisfy { isASCIIAlnum($0) || $0 == "-" || $0 == "_" || $0 == "." }
}

private func isASCIIAlnum(_ c: Unicode.Scalar) -> Bool {
    ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c)
}

/// How a YAML node reads to a human, for "expected X, got Y" messages.
private func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar):
        switch node.tag.rawValue {
        case Tag.Name.null.rawValue: return "nothing (empty value)"
        case Tag.Name.int.rawValue, Tag.Name.float.rawValue: return "number \(scalar.string)"
        case Tag.Name.bool.rawValue: return "boolean \(scalar.string)"
        default: return "string '\(scalar.string)'"
        }
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    }
}

private func unknownKeyMessage(_ key: String, allowed: [String]) -> String {
    let best = allowed.map { ($0, editDistance(key.lowercased(), $0)) }.min { $0.1 < $1.1 }
    if let (suggestion, distance) = best, distance <= max(1, min(3, suggestion.count / 3)) {
        return "unknown key '\(key)' (did you mean '\(suggestion)'?)"
    }
    return "unknown key '\(key)' (allowed: \(allowed.joined(separator: ", ")))"
}

/// Levenshtein distance, for "did you mean" suggestions.
private func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// 360.0 -> "360", 0.5 -> "0.5".
func formatNumber(_ value: Double) -> String {
    if value.rounded() == value, abs(value) < 1e15 { return String(Int(value)) }
    return String(value)
}

// MARK: - Security (the `security:` section)

extension ConfigReader {
    /// `security:` -> ``SecurityConfig``; nil (with problems recorded) when invalid.
    mutating func readSecurity(_ node: Node, _ path: String) -> SecurityConfig? {
        if isNull(node) { return SecurityConfig() }
        guard let fields = mapping(node, path, keys: ["cluster_key_env", "cluster_key_file", "tenants"]) else { return nil }
        var ok = true
        var security = SecurityConfig()
        if fields["cluster_key_env"] != nil && fields["cluster_key_file"] != nil {
            fail(join(path, "cluster_key_file"), fields["cluster_key_file"], "give either cluster_key_env or cluster_key_file, not both")
            ok = false
        } else if let envNode = fields["cluster_key_env"] {
            if let name = string(envNode, join(path, "cluster_key_env")) {
                if name.isEmpty || !name.unicodeScalars.allSatisfy({ isASCIIAlnum($0) || $0 == "_" }) {
                    fail(join(path, "cluster_key_env"), envNode, "expected an environment variable name such as BOURSE_CLUSTER_KEY, got '\(name)'")
                    ok = false
                } else {
                    security.keySource = .environment(name)
                }
            } else {
                ok = false
            }
        } else if let fileNode = fields["cluster_key_file"] {
            if let keyPath = string(fileNode, join(path, "cluster_key_file")) {
                if keyPath.isEmpty {
                    fail(join(path, "cluster_key_file"), fileNode, "must not be empty")
                    ok = false
                } else {
                    let resolved = keyPath.hasPrefix("/")
                        ? keyPath
                        : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(keyPath).standardizedFileURL.path
                    security.keySource = .file(resolved)
                }
            } else {
                ok = false
            }
        }
        if let tenantsNode = fields["tenants"] {
            let tenantsPath = join(path, "tenants")
            if let items = sequence(tenantsNode, tenantsPath) {
                if items.isEmpty {
                    fail(tenantsPath, tenantsNode, "empty list: name at least one tenant, or remove 'tenants' to run with one open tenant")
                    ok = false
                }
                var tenants: [SecurityConfig.Tenant] = []
                var names: Set<String> = []
                var hashes: Set<String> = []
                for (i, item) in items.enumerated() {
                    let itemPath = "\(tenantsPath)[\(i)]"
                    guard let tenant = readTenant(item, itemPath) else {
                        ok = false
                        continue
                    }
                    if !names.insert(tenant.name).inserted {
                        fail(join(itemPath, "name"), item, "duplicate tenant name '\(tenant.name)'")
                        ok = false
                    }
                    if !hashes.insert(tenant.tokenSHA256).inserted {
                        fail(join(itemPath, "token_sha256"), item, "the same token hash is already given to another tenant")
                        ok = false
                    }
                    tenants.append(tenant)
                }
                security.tenants = tenants
            } else {
                ok = false
            }
        }
        return ok ? security : nil
    }

    private mutating func readTenant(_ node: Node, _ path: String) -> SecurityConfig.Tenant? {
        guard let fields = mapping(node, path, keys: ["name", "token_sha256"]) else { return nil }
        let name = required(fields, "name", in: node, path, hint: "the tenant's name, e.g. alice").flatMap { string($0, join(path, "name")) }
        if let name, !isIdentifier(name) {
            fail(join(path, "name"), fields["name"], "tenant names are letters, digits, '-', '_' and '.', got '\(name)'")
            return nil
        }
        let hashNode = required(fields, "token_sha256", in: node, path, hint: "the hex SHA-256 of the token: printf %s \"$TOKEN\" | sha256sum")
        let hash = hashNode.flatMap { string($0, join(path, "token_sha256")) }
        if let hash, hash.count != 64 || !hash.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0) }) {
            // Never echo the value: it may be a token pasted by mistake.
            fail(join(path, "token_sha256"), hashNode, "expected 64 hex digits (the SHA-256 of the token, not the token itself), got \(hash.count) characters")
            return nil
        }
        guard let name, let hash else { return nil }
        return SecurityConfig.Tenant(name: name, tokenSHA256: hash)
    }
}
