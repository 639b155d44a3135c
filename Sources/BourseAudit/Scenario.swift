import Foundation
import Yams

/// A chaos scenario (`cluster-configs/chaos/*.yaml`): a cluster, a trace and a timeline of faults.
public struct Scenario: Sendable, Hashable {
    public enum When: Sendable, Hashable {
        /// Cluster seconds since the cluster started.
        case cluster(Double)
        /// Wall seconds after the previous timeline entry ("+N").
        case afterPrevious(Double)
    }

    public enum Fault: String, Sendable, Hashable, CaseIterable {
        case killShard = "kill-shard", restartShard = "restart-shard"
        case killGateway = "kill-gateway", restartGateway = "restart-gateway"
        case killAgent = "kill-agent", restartAgent = "restart-agent"
        case failNode = "fail-node", recoverNode = "recover-node"
        case partition, heal
        case drop, delay, duplicate
        /// Removes every message-level fault (drop / delay / duplicate).
        case clear
    }

    public struct Step: Sendable, Hashable {
        public var at: When
        public var fault: Fault
        /// kill/restart-shard: shard id; kill/restart-agent: agent id.
        public var target: String?
        /// fail/recover-node.
        public var node: String?
        /// partition: rack ids cut off from the rest (the gateway stays with the rest unless listed as "gateway").
        public var racks: [String]
        /// Message faults: process ids ("*" = any), fraction of messages, delay in ms.
        public var from: [String]
        public var to: [String]
        public var fraction: Double
        public var delayMs: Double
        public var line: Int
    }

    public var name: String
    public var config: String
    public var trace: String
    public var speedup: Double?
    public var policy: String
    public var seed: UInt64
    /// Wall seconds to wait for every job to end after the timeline.
    public var settleSeconds: Double
    public var timeline: [Step]
    /// Launcher options: SWIM probe period of the shards (wall seconds), checkpoint period (cluster seconds).
    public var probePeriod: Double?
    public var checkpointSeconds: Double?

    public static func load(path: String) throws -> Scenario {
        guard let data = FileManager.default.contents(atPath: path) else { throw ScenarioError("\(path): cannot read the file") }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// Parses scenario YAML; errors name the file, the line and the field.
    public static func parse(_ text: String, file: String) throws -> Scenario {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw ScenarioError("\(file): empty scenario") }
            root = node
        } catch let error as ScenarioError {
            throw error
        } catch {
            throw ScenarioError("\(file): not YAML: \(error)")
        }
        func fail(_ node: Node?, _ field: String, _ message: String) -> ScenarioError {
            let line = node?.mark.map { ":\($0.line)" } ?? ""
            return ScenarioError("\(file)\(line): \(field): \(message)")
        }
        guard let top = root.mapping else { throw fail(root, "(top)", "a scenario is a mapping") }
        let known: Set<String> = [
            "name", "config", "trace", "speedup", "policy", "seed", "settle_seconds", "timeline", "probe_period",
            "checkpoint_seconds", "description",
        ]
        for (key, _) in top {
            if let k = key.string, !known.contains(k) {
                throw fail(key, k, "unknown field (known: \(known.sorted().joined(separator: ", ")))")
            }
        }
        let dir = URL(fileURLWithPath: file).deletingLastPathComponent()
        func string(_ key: String, required: Bool) throws -> String? {
            guard let node = top[key] else {
                if required { throw fail(root, key, "missing") }
                return nil
            }
            guard let s = node.string, !s.isEmpty else { throw fail(node, key, "must be a non-empty string") }
            return s
        }
        func number(_ map: Node.Mapping, _ key: String, _ field: String) throws -> Double? {
            guard let node = map[key] else { return nil }
            guard let v = node.float, v.isFinite else { throw fail(node, field, "must be a number") }
            return v
        }
        func resolve(_ p: String) -> String { p.hasPrefix("/") ? p : dir.appendingPathComponent(p).standardizedFileURL.path }
        let name = try string("name", required: false) ?? URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent
        let config = resolve(try string("config", required: true)!)
        let trace = resolve(try string("trace", required: true)!)
        let speedup = try number(top, "speedup", "speedup")
        if let speedup, !(speedup > 0) { throw fail(top["speedup"], "speedup", "must be positive") }
        let policy = try string("policy", required: false) ?? "fifo"
        let seed = try number(top, "seed", "seed").map { UInt64(max(0, $0)) } ?? 1
        let settle = try number(top, "settle_seconds", "settle_seconds") ?? 120
        let probe = try number(top, "probe_period", "probe_period")
        let checkpoint = try number(top, "checkpoint_seconds", "checkpoint_seconds")
        var steps: [Step] = []
        if let timeline = top["timeline"] {
            guard let seq = timeline.sequence else { throw fail(timeline, "timeline", "must be a list") }
            for (i, item) in seq.enumerated() {
                let field = "timeline[\(i)]"
                guard let m = item.mapping else { throw fail(item, field, "must be a mapping {at:, fault:, ...}") }
                let fields: Set<String> = ["at", "fault", "shard", "agent", "node", "racks", "from", "to", "fraction", "ms"]
                for (key, _) in m {
                    if let k = key.string, !fields.contains(k) {
                        throw fail(key, "\(field).\(k)", "unknown field (known: \(fields.sorted().joined(separator: ", ")))")
                    }
                }
                guard let atNode = m["at"], let atText = atNode.string else { throw fail(item, "\(field).at", "missing") }
                let at: When
                if atText.hasPrefix("+") {
                    guard let v = Double(atText.dropFirst()), v >= 0 else {
                        throw fail(atNode, "\(field).at", "'+N' takes wall seconds after the previous entry; got '\(atText)'")
                    }
                    at = .afterPrevious(v)
                } else {
                    guard let v = Double(atText), v >= 0 else {
                        throw fail(atNode, "\(field).at", "cluster seconds (a number) or '+N' wall seconds; got '\(atText)'")
                    }
                    at = .cluster(v)
                }
                guard let faultNode = m["fault"], let faultText = faultNode.string else {
                    throw fail(item, "\(field).fault", "missing")
                }
                guard let fault = Fault(rawValue: faultText) else {
                    throw fail(
                        faultNode, "\(field).fault",
                        "unknown fault '\(faultText)' (known: \(Fault.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                func list(_ key: String) throws -> [String] {
                    guard let node = m[key] else { return [] }
                    if let s = node.scalar?.string { return [s] }
                    guard let seq = node.sequence else { throw fail(node, "\(field).\(key)", "must be a list of ids") }
                    return seq.compactMap(\.string)
                }
                var step = Step(
                    at: at, fault: fault, target: nil, node: m["node"]?.string, racks: try list("racks"), from: try list("from"),
                    to: try list("to"), fraction: try number(m, "fraction", "\(field).fraction") ?? 0,
                    delayMs: try number(m, "ms", "\(field).ms") ?? 0, line: (item.mark?.line ?? 0))
                switch fault {
                case .killShard, .restartShard:
                    guard let s = m["shard"]?.string else { throw fail(item, "\(field).shard", "\(faultText) needs shard: SHARD-ID") }
                    step.target = s
                case .killAgent, .restartAgent:
                    guard let s = m["agent"]?.string else { throw fail(item, "\(field).agent", "\(faultText) needs agent: AGENT-ID") }
                    step.target = s
                case .failNode, .recoverNode:
                    if step.node == nil { throw fail(item, "\(field).node", "\(faultText) needs node: NODE-ID") }
                case .partition:
                    if step.racks.isEmpty { throw fail(item, "\(field).racks", "partition needs racks: [RACK, ...]") }
                case .drop, .duplicate, .delay:
                    if !(step.fraction > 0 && step.fraction <= 1) {
                        throw fail(m["fraction"] ?? item, "\(field).fraction", "\(faultText) needs a fraction in (0, 1]")
                    }
                    if fault == .delay && !(step.delayMs > 0) { throw fail(m["ms"] ?? item, "\(field).ms", "delay needs ms > 0") }
                    if step.from.isEmpty { step.from = ["*"] }
                    if step.to.isEmpty { step.to = ["*"] }
                case .killGateway, .restartGateway, .heal, .clear: break
                }
                steps.append(step)
            }
        }
        return Scenario(
            name: name, config: config, trace: trace, speedup: speedup, policy: policy, seed: seed, settleSeconds: settle,
            timeline: steps, probePeriod: probe, checkpointSeconds: checkpoint)
    }
}

public struct ScenarioError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
