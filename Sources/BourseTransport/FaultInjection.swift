import CNNG
import Foundation
import Synchronization

/// A fault plan: message faults between processes, read from a JSON file every process of a
/// chaos run polls (`bourse chaos run` rewrites it on its timeline).
///
/// ```json
/// {"seed": 7,
///  "addresses": {"tcp://127.0.0.1:7710": "shard-r0", ...},
///  "rules": [{"from": ["*"], "to": ["agent-r0"], "drop": 0.05, "delay": 0.5, "delay_ms": 200, "duplicate": 0.1}],
///  "partition": [["shard-r0", "agent-r0"]]}
/// ```
/// A rule applies to messages from a process of `from` to one of `to` ("*" = any). A request
/// uses the rules of (this process -> the dialed process), its reply those of the reverse
/// direction, so a REQ/REP exchange is faulted in both directions. `partition` lists groups of
/// process ids; processes in no group form one more group; messages between groups are dropped.
public struct FaultPlan: Codable, Sendable, Hashable {
    public struct Rule: Codable, Sendable, Hashable {
        public var from: [String]
        public var to: [String]
        public var drop: Double?
        public var delay: Double?
        public var delay_ms: Double?
        public var duplicate: Double?

        public init(from: [String], to: [String], drop: Double? = nil, delay: Double? = nil, delay_ms: Double? = nil, duplicate: Double? = nil) {
            self.from = from
            self.to = to
            self.drop = drop
            self.delay = delay
            self.delay_ms = delay_ms
            self.duplicate = duplicate
        }

        func matches(_ a: String, _ b: String) -> Bool {
            (from.contains("*") || from.contains(a)) && (to.contains("*") || to.contains(b))
        }
    }

    public var seed: UInt64
    public var addresses: [String: String]
    public var rules: [Rule]
    public var partition: [[String]]

    public init(seed: UInt64 = 1, addresses: [String: String] = [:], rules: [Rule] = [], partition: [[String]] = []) {
        self.seed = seed
        self.addresses = addresses
        self.rules = rules
        self.partition = partition
    }

    public var isEmpty: Bool { rules.isEmpty && partition.isEmpty }

    /// True when a partition separates `a` and `b`.
    public func cut(_ a: String, _ b: String) -> Bool {
        guard !partition.isEmpty else { return false }
        let ga = partition.firstIndex { $0.contains(a) } ?? -1
        let gb = partition.firstIndex { $0.contains(b) } ?? -1
        return ga != gb
    }

    /// What happens to one message from `a` to `b`, given uniform draws in [0, 1).
    public func fate(from a: String, to b: String, draws: (Double, Double, Double)) -> MessageFate {
        if cut(a, b) { return MessageFate(drop: true, delay: .zero, duplicate: false) }
        var fate = MessageFate()
        for rule in rules where rule.matches(a, b) {
            if let p = rule.drop, draws.0 < p { fate.drop = true }
            if let p = rule.delay, let ms = rule.delay_ms, draws.1 < p { fate.delay += .milliseconds(Int64(ms)) }
            if let p = rule.duplicate, draws.2 < p { fate.duplicate = true }
        }
        return fate
    }
}

public struct MessageFate: Sendable, Hashable {
    public var drop = false
    public var delay: Duration = .zero
    public var duplicate = false
    public var isClean: Bool { !drop && delay == .zero && !duplicate }
}

/// The process-wide fault injector. Off (one atomic load per request) unless `enable` was
/// called; then a background thread re-reads the plan file when it changes (every 100 ms).
public enum FaultInjection {
    private static let active = Atomic<Bool>(false)
    private struct State: Sendable {
        var process = ""
        var plan: FaultPlan?
        var random: UInt64 = 1
        var injected: [String: Int] = [:]
    }
    private static let state = Mutex(State())

    /// Starts polling `planPath` as process `process` (its member / agent id).
    public static func enable(process: String, planPath: String) {
        state.withLock { $0.process = process }
        let thread = Thread {
            var lastStamp: Date? = nil
            var lastSize = -1
            var ticks = 0
            var lastCounts: [String: Int] = [:]
            while true {
                let attributes = try? FileManager.default.attributesOfItem(atPath: planPath)
                let stamp = attributes?[.modificationDate] as? Date
                let size = (attributes?[.size] as? NSNumber)?.intValue ?? -1
                if stamp != lastStamp || size != lastSize {
                    lastStamp = stamp
                    lastSize = size
                    let plan = FileManager.default.contents(atPath: planPath).flatMap { try? JSONDecoder().decode(FaultPlan.self, from: $0) }
                    install(plan)
                }
                ticks += 1
                if ticks % 10 == 0 {
                    // The counters next to the plan, for the runner's report.
                    let counts = injected
                    if counts != lastCounts, let data = try? JSONEncoder().encode(counts) {
                        try? data.write(to: URL(fileURLWithPath: "\(planPath).\(process).counts"), options: .atomic)
                        lastCounts = counts
                    }
                }
                Thread.sleep(forTimeInterval: 0.1)
            }
        }
        thread.name = "bourse-fault-plan"
        thread.start()
    }

    /// Installs `plan` directly (tests); nil or an empty plan turns injection off.
    public static func install(_ plan: FaultPlan?) {
        let effective = plan.flatMap { $0.isEmpty ? nil : $0 }
        state.withLock { s in
            if let effective, s.plan?.seed != effective.seed || s.plan == nil {
                var h: UInt64 = 0xcbf2_9ce4_8422_2325
                for b in s.process.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
                s.random = effective.seed ^ h
            }
            s.plan = effective
        }
        active.store(effective != nil, ordering: .releasing)
    }

    public static var isActive: Bool { active.load(ordering: .acquiring) }

    /// Messages faulted so far, by kind ("drop", "delay", "duplicate").
    public static var injected: [String: Int] { state.withLock { $0.injected } }

    /// The fates of a request to `url` and of its reply (nil when no fault applies).
    static func decide(url: String) -> (request: MessageFate, reply: MessageFate)? {
        state.withLock { s -> (MessageFate, MessageFate)? in
            guard let plan = s.plan else { return nil }
            let peer = plan.addresses[url] ?? url
            func draw() -> Double {
                // SplitMix64.
                s.random &+= 0x9E37_79B9_7F4A_7C15
                var z = s.random
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                return Double(z >> 11) / Double(1 << 53)
            }
            let request = plan.fate(from: s.process, to: peer, draws: (draw(), draw(), draw()))
            let reply = plan.fate(from: peer, to: s.process, draws: (draw(), draw(), 1))
            for f in [request, reply] {
                if f.drop { s.injected["drop", default: 0] += 1 }
                if f.delay > .zero { s.injected["delay", default: 0] += 1 }
                if f.duplicate { s.injected["duplicate", default: 0] += 1 }
            }
            if request.isClean && reply.isClean { return nil }
            return (request, reply)
        }
    }
}

extension RequestClient {
    /// `request` through the fault plan: a dropped request or reply costs the caller its timeout
    /// and a timeout error, a delay sleeps before sending / after receiving, a duplicate sends the
    /// same frame once more (its reply is discarded).
    func faulted(
        _ bytes: [UInt8], timeout: Duration, fates: (request: MessageFate, reply: MessageFate)
    ) async throws(NNGError) -> [UInt8] {
        let timedOut = NNGError(code: Int32(NNG_ETIMEDOUT.rawValue), operation: "request to \(url) (fault injected)")
        if fates.request.drop {
            try? await Task.sleep(for: timeout)
            throw timedOut
        }
        if fates.request.delay > .zero { try? await Task.sleep(for: fates.request.delay) }
        if fates.request.duplicate {
            Task { _ = try? await self.plainRequest(bytes, timeout: timeout) }
        }
        let reply = try await plainRequest(bytes, timeout: timeout)
        if fates.reply.drop {
            try? await Task.sleep(for: timeout)
            throw timedOut
        }
        if fates.reply.delay > .zero { try? await Task.sleep(for: fates.reply.delay) }
        return reply
    }
}
