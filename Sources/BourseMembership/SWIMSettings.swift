import Foundation

extension SWIM {
    /// Protocol parameters. Times are seconds of whatever clock the caller feeds to the instance
    /// (virtual time in tests and simulation, cluster time in the live shell).
    public struct Settings: Hashable, Sendable {
        /// Length of one protocol period: every period the instance probes one member.
        public var probePeriod: Double = 0.5
        /// How the member to probe is chosen each period (a round robin over a shuffled list either way):
        /// - true (default): one schedule shared by all members, derived from the common clock
        ///   (period number) and `probeScheduleSeed`; every member is probed by exactly one other
        ///   member per period while views agree, which bounds the time until a crashed member is
        ///   first probed to about one period.
        /// - false: each member shuffles its own list independently (the SWIM paper's scheme).
        public var sharedProbeSchedule: Bool = true
        /// Seed of the shared probe schedule; must be the same on every member of a cluster.
        public var probeScheduleSeed: UInt64 = 0x0042_6F75_7273_65
        /// Wait this long for the direct ack before asking `pingReqFanout` members to probe indirectly.
        /// Must be below `probePeriod`; the rest of the period is left for the indirect probe.
        public var probeTimeout: Double = 0.2
        /// k: number of members asked to probe the target indirectly (ping-req).
        public var pingReqFanout: Int = 3
        /// Base suspicion timeout: a suspect not refuted within it is declared dead. When
        /// `scaleSuspicionTimeout` is set it is multiplied by max(1, log10(n)), n = live members
        /// (Lifeguard-style), so larger clusters give a refutation more time to spread.
        public var suspicionTimeout: Double = 1.0
        public var scaleSuspicionTimeout: Bool = true
        /// When this instance raises a suspicion, declares a death or refutes, it also pings this many
        /// random live members at once (gossip-only pings) instead of waiting for its next probe;
        /// a new suspicion is moreover sent to the suspect itself, which refutes in its ack if alive.
        public var disseminationFanout: Int = 3
        /// A member that hears (by gossip) of a new suspicion pings the suspect once, carrying the
        /// suspicion: an alive suspect then learns of it through many paths at once and refutes, and
        /// each such ack brings the refutation straight back. Costs one ping + ack per member per
        /// suspicion; suspicions are rare.
        public var pingSuspectOnHearsay: Bool = true
        /// Lifeguard-style local confirmation of deaths: a death heard by gossip from anyone but
        /// the member itself (which announces its own when it leaves) is taken as a suspicion at
        /// that incarnation, so this instance pings the member and declares it dead only when its
        /// own suspicion timer expires. Without it a minority side of a healed partition, which
        /// declared everyone else dead, spreads those verdicts and a dead verdict beats alive at
        /// the same incarnation before the victims can refute. Costs one suspicion timeout on
        /// the spread of a real death.
        public var confirmDeathsLocally: Bool = true
        /// Most member updates piggybacked on one message (including the sender's own record, which
        /// every message carries so receivers learn the sender's address and incarnation).
        public var maxPiggybackedUpdates: Int = 12
        /// Most digests piggybacked on one message.
        public var maxPiggybackedDigests: Int = 4
        /// lambda: each update / digest is retransmitted ceil(lambda * log2(n + 1)) times.
        public var retransmitMultiplier: Double = 3
        /// Every this many protocol periods, also ping one member believed dead (0 = never). A
        /// member that is in fact alive (healed partition, false death) hears it was declared dead,
        /// refutes with a higher incarnation and is taken back.
        public var deadMemberProbeInterval: Int = 10

        public init() {}

        /// Suspicion timeout for a cluster of `memberCount` live members (including oneself).
        public func suspicionTimeout(memberCount: Int) -> Double {
            guard scaleSuspicionTimeout, memberCount > 10 else { return suspicionTimeout }
            return suspicionTimeout * log10(Double(memberCount))
        }

        /// How many times one update or digest is piggybacked before it is dropped from the queue.
        public func retransmitLimit(memberCount: Int) -> Int {
            max(1, Int((retransmitMultiplier * log2(Double(max(1, memberCount) + 1))).rounded(.up)))
        }

        /// Settings with nonsensical values repaired (negative counts, timeout >= period).
        public var sanitized: Settings {
            var s = self
            s.probePeriod = s.probePeriod > 0 ? s.probePeriod : 0.5
            if !(s.probeTimeout > 0 && s.probeTimeout < s.probePeriod) { s.probeTimeout = s.probePeriod * 0.4 }
            s.pingReqFanout = max(0, s.pingReqFanout)
            s.disseminationFanout = max(0, s.disseminationFanout)
            s.suspicionTimeout = s.suspicionTimeout > 0 ? s.suspicionTimeout : s.probePeriod * 3
            s.maxPiggybackedUpdates = max(1, s.maxPiggybackedUpdates)
            s.maxPiggybackedDigests = max(0, s.maxPiggybackedDigests)
            s.retransmitMultiplier = s.retransmitMultiplier > 0 ? s.retransmitMultiplier : 3
            s.deadMemberProbeInterval = max(0, s.deadMemberProbeInterval)
            return s
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, seeded; the only randomness the SWIM state
/// machine and the simulation use, so a run is a pure function of its seeds and inputs.
public struct SplitMix64: RandomNumberGenerator, Hashable, Sendable {
    public private(set) var state: UInt64
    public init(seed: UInt64) { self.state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform integer in 0..<bound (bound > 0), by rejection (no modulo bias).
    public mutating func next(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let x = next()
            if x < limit { return Int(x % b) }
        }
    }

    /// Uniform double in [0, 1).
    public mutating func nextUnit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform double in [lo, hi).
    public mutating func next(in lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * nextUnit() }

    /// Fisher-Yates shuffle in place.
    public mutating func shuffle<T>(_ a: inout [T]) {
        guard a.count > 1 else { return }
        for i in stride(from: a.count - 1, to: 0, by: -1) {
            a.swapAt(i, next(below: i + 1))
        }
    }

    /// `count` distinct elements chosen uniformly (partial Fisher-Yates), in random order.
    public mutating func sample<T>(_ a: [T], count: Int) -> [T] {
        var a = a
        let k = min(count, a.count)
        for i in 0..<k { a.swapAt(i, i + next(below: a.count - i)) }
        return Array(a.prefix(k))
    }
}
