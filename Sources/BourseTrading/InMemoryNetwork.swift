import BourseWorkload

/// The network between simulated shards: messages advance in phases (one phase is one trading
/// step of every shard); a message sent in phase p arrives in phase p + 1 + floor(delay / phase
/// length), so longer delays arrive later and messages overtake each other. Seeded loss and
/// duplication; messages arriving in the same phase are shuffled.
public struct InMemoryNetwork<Message: Sendable>: Sendable {
    public struct Settings: Sendable, Hashable {
        /// Mean one-way delay (ms); each message's delay is uniform in delay x [1 - jitter, 1 + jitter].
        public var delayMs: Double = 0
        public var jitter: Double = 0.5
        /// Fraction of messages lost.
        public var loss: Double = 0
        /// Fraction of messages delivered twice.
        public var duplicate: Double = 0
        /// Length of a trading phase (ms); nil = the mean delay (at least 1 ms), so most messages
        /// arrive in the next phase or the one after.
        public var phaseMs: Double? = nil

        public init() {}

        public var effectivePhaseMs: Double { phaseMs ?? max(1, delayMs) }
    }

    public struct Counters: Sendable, Hashable {
        public var sent = 0
        public var lost = 0
        public var duplicated = 0
        public var delivered = 0
    }

    public let settings: Settings
    public private(set) var counters = Counters()
    private var random: SeededRandom
    private var queue: [(due: Int, order: UInt64, message: Message)] = []

    public init(settings: Settings, seed: UInt64) {
        self.settings = settings
        self.random = SeededRandom(seed: seed ^ 0x6E65_7477_6F72_6B21)
    }

    public var inFlight: Int { queue.count }

    /// Sends `message` in phase `phase`; `immediate` messages (the round's closing commits, which
    /// the owners wait for) arrive in the same phase unless lost.
    public mutating func send(_ message: Message, phase: Int, immediate: Bool = false) {
        counters.sent += 1
        if settings.loss > 0, random.nextUnitDouble() < settings.loss {
            counters.lost += 1
            return
        }
        var copies = 1
        if settings.duplicate > 0, random.nextUnitDouble() < settings.duplicate {
            copies = 2
            counters.duplicated += 1
        }
        for _ in 0..<copies {
            var due = phase
            if !immediate {
                let delay = settings.delayMs * (1 - settings.jitter + 2 * settings.jitter * random.nextUnitDouble())
                due = phase + 1 + Int((delay / settings.effectivePhaseMs).rounded(.down))
            }
            queue.append((due, random.next(), message))
        }
    }

    /// The messages due by `phase`, in a random order.
    public mutating func deliver(phase: Int) -> [Message] {
        var due = queue.filter { $0.due <= phase }
        queue.removeAll { $0.due <= phase }
        due.sort { $0.order < $1.order }
        counters.delivered += due.count
        return due.map(\.message)
    }
}
