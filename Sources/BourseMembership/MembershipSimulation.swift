/// N SWIM instances over an in-memory network with virtual time: seeded message loss, delay and
/// duplication, member kill / restart / join / leave, network partitions. Every status change a
/// member reports is recorded with its virtual time, so tests and chaos runs can ask "when did
/// member A first see member B dead?".
///
/// Deterministic: a run is a pure function of the configuration (seed included) and the calls
/// made on it. Events at the same virtual time run in the order they were scheduled.
///
/// The simulation drives each instance the way the live shell does: it delivers messages, and arms
/// one timer per member at the instance's `nextDeadline`.
public struct MembershipSimulation<Payload: Sendable>: Sendable {
    public struct Configuration: Sendable {
        /// Members created at time 0, with ids `idPrefix` + two-digit index ("m00", "m01", ...),
        /// addresses "sim://<id>", role shard; each knows all the others (as from a cluster config).
        public var memberCount: Int
        public var settings: SWIM.Settings
        public var seed: UInt64
        /// Probability that one message is lost.
        public var lossRate: Double
        /// Probability that one (not lost) message is delivered twice.
        public var duplicateRate: Double
        /// One-way delay, uniform in [minDelay, maxDelay] seconds, drawn per message (so reordering happens).
        public var minDelay: Double
        public var maxDelay: Double
        public var idPrefix: String
        /// Also a member "gateway" (role gateway) known to all from time 0 that answers pings and
        /// never probes (its timer never runs), as the live gateway does.
        public var withGateway: Bool

        public init(
            memberCount: Int, settings: SWIM.Settings = .init(), seed: UInt64 = 1, lossRate: Double = 0,
            duplicateRate: Double = 0, minDelay: Double = 0.001, maxDelay: Double = 0.010, idPrefix: String = "m",
            withGateway: Bool = false
        ) {
            self.memberCount = memberCount
            self.settings = settings
            self.seed = seed
            self.lossRate = lossRate
            self.duplicateRate = duplicateRate
            self.minDelay = minDelay
            self.maxDelay = maxDelay
            self.idPrefix = idPrefix
            self.withGateway = withGateway
        }
    }

    /// `observer` changed its view of `subject` at `time`.
    public struct Observation: Hashable, Sendable, CustomStringConvertible {
        public var time: Double
        public var observer: SWIM.MemberID
        public var subject: SWIM.MemberID
        public var from: SWIM.Status?
        public var to: SWIM.Status
        public var incarnation: SWIM.Incarnation
        public var reason: SWIM.ChangeReason
        public var description: String {
            let f = from.map { "\($0)" } ?? "-"
            return "t=\(time) \(observer) sees \(subject) \(f)->\(to)#\(incarnation) (\(reason))"
        }
    }

    /// `member` refuted a suspicion about itself at `time`, now at `incarnation`.
    public struct Refutation: Hashable, Sendable {
        public var time: Double
        public var member: SWIM.MemberID
        public var incarnation: SWIM.Incarnation
    }

    /// `observer` received version `version` of `owner`'s digest at `time`.
    public struct DigestObservation: Hashable, Sendable {
        public var time: Double
        public var observer: SWIM.MemberID
        public var owner: SWIM.MemberID
        public var version: UInt64
    }

    public struct NetworkStats: Hashable, Sendable {
        public var sent = 0
        public var delivered = 0
        public var lost = 0
        public var duplicated = 0
        public var droppedByPartition = 0
        public var droppedReceiverDown = 0
        public var droppedUnknownAddress = 0
        public var byKind: [String: Int] = [:]
    }

    public let configuration: Configuration
    public private(set) var now: Double = 0
    public private(set) var observations: [Observation] = []
    public private(set) var refutations: [Refutation] = []
    public private(set) var digestObservations: [DigestObservation] = []
    public private(set) var network = NetworkStats()

    private struct Node: Sendable {
        var member: SWIM.Member
        var instance: SWIMInstance<Payload>
        var up: Bool
        var generation: Int
        var scheduledTick: Double?
        var group: Int
        /// Counters of earlier incarnations of this process (before restarts).
        var retiredCounters: SWIM.Counters
        /// Answers only, its timer never runs (the gateway of `Configuration.withGateway`).
        var answersOnly = false
    }

    private enum Action: Sendable {
        case tick(node: Int, generation: Int)
        case deliver(to: Int, fromNode: Int, from: SWIM.MemberID, message: SWIM.Message<Payload>)
    }

    private struct Link: Hashable, Sendable {
        var a: Int
        var b: Int
        init(_ a: Int, _ b: Int) {
            self.a = a
            self.b = b
        }
    }

    private var cutLinks: Set<Link> = []
    private var nodes: [Node] = []
    private var index: [SWIM.MemberID: Int] = [:]
    private var byAddress: [SWIM.Address: Int] = [:]
    private var queue = EventQueue<Action>()
    private var rng: SplitMix64

    public init(_ configuration: Configuration) {
        self.configuration = configuration
        self.rng = SplitMix64(seed: configuration.seed)
        var members = (0..<configuration.memberCount).map { i in
            let id = SWIM.MemberID(configuration.idPrefix + (i < 10 ? "0\(i)" : "\(i)"))
            return SWIM.Member(id: id, address: SWIM.Address("sim://\(id)"), role: .shard)
        }
        if configuration.withGateway {
            members.append(SWIM.Member(id: "gateway", address: SWIM.Address("sim://gateway"), role: .gateway))
        }
        for m in members {
            let instance = SWIMInstance<Payload>(
                settings: configuration.settings, myself: m, incarnation: 0, members: members, seed: rng.next(), now: 0)
            addNode(m, instance, answersOnly: m.role == .gateway)
        }
    }

    // MARK: - Queries

    /// Ids of every member ever created, in creation order.
    public var ids: [SWIM.MemberID] { nodes.map(\.member.id) }

    public func isUp(_ id: SWIM.MemberID) -> Bool { index[id].map { nodes[$0].up } ?? false }

    /// The current (or, if down, last) state machine of `id`.
    public func instance(_ id: SWIM.MemberID) -> SWIMInstance<Payload>? { index[id].map { nodes[$0].instance } }

    /// What `observer` currently believes about `subject`.
    public func view(of observer: SWIM.MemberID, about subject: SWIM.MemberID) -> SWIM.Status? {
        instance(observer)?.status(of: subject)
    }

    /// True when every member that is up sees `subject` as `status`.
    public func everyoneUp(sees subject: SWIM.MemberID, as status: SWIM.Status) -> Bool {
        nodes.allSatisfy { !$0.up || $0.member.id == subject || $0.instance.status(of: subject) == status }
    }

    /// True when every member that is up sees every other member that is up as alive.
    public var converged: Bool {
        let upIDs = nodes.filter(\.up).map(\.member.id)
        return upIDs.allSatisfy { everyoneUp(sees: $0, as: .alive) }
    }

    /// First time at or after `after` that `observer` changed its view of `subject` to `status`.
    public func firstTime(
        _ observer: SWIM.MemberID, sees subject: SWIM.MemberID, as status: SWIM.Status, after: Double = 0
    ) -> Double? {
        observations.first { $0.time >= after && $0.observer == observer && $0.subject == subject && $0.to == status }?
            .time
    }

    /// Counters summed over every member and every process lifetime.
    public var counters: SWIM.Counters {
        nodes.reduce(SWIM.Counters()) { $0 + $1.retiredCounters + $1.instance.counters }
    }

    // MARK: - Driving

    /// Runs every event up to and including virtual time `t`; `now` becomes `t`.
    public mutating func run(until t: Double) {
        while let next = queue.peekTime, next <= t {
            let (time, action) = queue.pop()!
            now = time
            perform(action)
        }
        if t > now { now = t }
    }

    public mutating func run(for duration: Double) { run(until: now + duration) }

    /// Runs until `condition` holds (checked after every event) or until `deadline`; returns the
    /// time it first held, or nil.
    public mutating func run(until deadline: Double, stopWhen condition: (Self) -> Bool) -> Double? {
        if condition(self) { return now }
        while let next = queue.peekTime, next <= deadline {
            let (time, action) = queue.pop()!
            now = time
            perform(action)
            if condition(self) { return now }
        }
        if deadline > now { now = deadline }
        return nil
    }

    /// Crashes `id`: no leave message, its timers stop, messages to it are lost.
    public mutating func kill(_ id: SWIM.MemberID) {
        guard let i = index[id], nodes[i].up else { return }
        nodes[i].up = false
        nodes[i].generation += 1
        nodes[i].scheduledTick = nil
    }

    /// Starts a fresh process for `id` (same address) knowing every configured member. Its
    /// incarnation defaults to the start time in milliseconds, as the live shell does from the
    /// cluster epoch; pass 0 to exercise rejoin by refutation.
    public mutating func restart(_ id: SWIM.MemberID, incarnation: SWIM.Incarnation? = nil) {
        guard let i = index[id] else { return }
        if nodes[i].up { kill(id) }
        let inc = incarnation ?? SWIM.Incarnation((now * 1000).rounded(.down))
        let instance = SWIMInstance<Payload>(
            settings: configuration.settings, myself: nodes[i].member, incarnation: inc,
            members: nodes.map(\.member), seed: rng.next(), now: now)
        nodes[i].retiredCounters = nodes[i].retiredCounters + nodes[i].instance.counters
        nodes[i].instance = instance
        nodes[i].up = true
        nodes[i].generation += 1
        reschedule(i)
    }

    /// Adds a new member that knows only `seeds`; it joins by pinging them.
    public mutating func join(_ id: SWIM.MemberID, role: SWIM.Role = .shard, seeds: [SWIM.MemberID]) {
        guard index[id] == nil else { return }
        let m = SWIM.Member(id: id, address: SWIM.Address("sim://\(id)"), role: role)
        let known = seeds.compactMap { index[$0].map { nodes[$0].member } }
        let instance = SWIMInstance<Payload>(
            settings: configuration.settings, myself: m, incarnation: 0, members: known, seed: rng.next(), now: now)
        addNode(m, instance)
    }

    /// `id` leaves voluntarily (its leave messages are sent), then its process stops.
    public mutating func leave(_ id: SWIM.MemberID) {
        guard let i = index[id], nodes[i].up else { return }
        let out = nodes[i].instance.leave(now: now)
        execute(out, from: i)
        kill(id)
    }

    /// `id` publishes a new version of its digest.
    public mutating func publishDigest(_ id: SWIM.MemberID, _ payload: Payload) {
        guard let i = index[id], nodes[i].up else { return }
        let out = nodes[i].instance.publishLocalDigest(payload, now: now)
        execute(out, from: i)
        reschedule(i)
    }

    /// Splits the network: messages between members of different groups are dropped (also those
    /// already in flight). Members not listed form one more group together. Replaces any earlier
    /// partition (cut links stay).
    public mutating func partition(_ groups: [[SWIM.MemberID]]) {
        for i in nodes.indices { nodes[i].group = 0 }
        for (g, ids) in groups.enumerated() {
            for id in ids { if let i = index[id] { nodes[i].group = g + 1 } }
        }
    }

    /// Removes every partition and every cut link.
    public mutating func heal() {
        for i in nodes.indices { nodes[i].group = 0 }
        cutLinks = []
    }

    /// Cuts the link between `a` and `b` in both directions (everything else still flows, so
    /// ping-req through third members can bridge it).
    public mutating func cut(_ a: SWIM.MemberID, _ b: SWIM.MemberID) {
        guard let i = index[a], let j = index[b] else { return }
        cutLinks.insert(Link(min(i, j), max(i, j)))
    }

    // MARK: - Internals

    private mutating func addNode(_ m: SWIM.Member, _ instance: SWIMInstance<Payload>, answersOnly: Bool = false) {
        let i = nodes.count
        nodes.append(
            Node(
                member: m, instance: instance, up: true, generation: 0, scheduledTick: nil, group: 0,
                retiredCounters: SWIM.Counters(), answersOnly: answersOnly))
        index[m.id] = i
        byAddress[m.address] = i
        reschedule(i)
    }

    private mutating func perform(_ action: Action) {
        switch action {
        case .tick(let i, let generation):
            guard nodes[i].up, nodes[i].generation == generation, nodes[i].scheduledTick == now else { return }
            nodes[i].scheduledTick = nil
            let out = nodes[i].instance.tick(now: now)
            execute(out, from: i)
            reschedule(i)
        case .deliver(let i, let fromNode, let from, let message):
            guard nodes[i].up else {
                network.droppedReceiverDown += 1
                return
            }
            guard nodes[i].group == nodes[fromNode].group,
                cutLinks.isEmpty || !cutLinks.contains(Link(min(i, fromNode), max(i, fromNode)))
            else {
                network.droppedByPartition += 1
                return
            }
            network.delivered += 1
            let out = nodes[i].instance.receive(message, from: from, now: now)
            execute(out, from: i)
            reschedule(i)
        }
    }

    private mutating func reschedule(_ i: Int) {
        guard nodes[i].up, !nodes[i].answersOnly, let d = nodes[i].instance.nextDeadline else {
            nodes[i].scheduledTick = nil
            return
        }
        let at = max(d, now)
        guard nodes[i].scheduledTick != at else { return }
        nodes[i].scheduledTick = at
        queue.push(at, .tick(node: i, generation: nodes[i].generation))
    }

    private mutating func execute(_ directives: [SWIM.Directive<Payload>], from i: Int) {
        let me = nodes[i].member.id
        for d in directives {
            switch d {
            case .send(_, let address, let message):
                network.sent += 1
                network.byKind[message.kind, default: 0] += 1
                if rng.nextUnit() < configuration.lossRate {
                    network.lost += 1
                    continue
                }
                guard let to = byAddress[address] else {
                    network.droppedUnknownAddress += 1
                    continue
                }
                let copies = rng.nextUnit() < configuration.duplicateRate ? 2 : 1
                if copies == 2 { network.duplicated += 1 }
                for _ in 0..<copies {
                    let delay = rng.next(in: configuration.minDelay, max(configuration.minDelay, configuration.maxDelay))
                    queue.push(now + delay, .deliver(to: to, fromNode: i, from: me, message: message))
                }
            case .memberStatusChanged(let state, let from, let to, let reason):
                observations.append(
                    Observation(
                        time: now, observer: me, subject: state.id, from: from, to: to, incarnation: state.incarnation,
                        reason: reason))
            case .digestUpdated(let digest):
                digestObservations.append(
                    DigestObservation(time: now, observer: me, owner: digest.owner, version: digest.version))
            case .refuted(let incarnation):
                refutations.append(Refutation(time: now, member: me, incarnation: incarnation))
            }
        }
    }
}

/// Min-heap of timed events; ties broken by insertion order.
struct EventQueue<Element: Sendable>: Sendable {
    private var heap: [(time: Double, seq: UInt64, element: Element)] = []
    private var seq: UInt64 = 0

    var peekTime: Double? { heap.first?.time }
    var count: Int { heap.count }

    private static func less(_ a: (time: Double, seq: UInt64, element: Element), _ b: (time: Double, seq: UInt64, element: Element)) -> Bool {
        a.time != b.time ? a.time < b.time : a.seq < b.seq
    }

    mutating func push(_ time: Double, _ element: Element) {
        seq += 1
        heap.append((time, seq, element))
        var c = heap.count - 1
        while c > 0 {
            let p = (c - 1) / 2
            guard Self.less(heap[c], heap[p]) else { break }
            heap.swapAt(c, p)
            c = p
        }
    }

    mutating func pop() -> (Double, Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var p = 0
        while true {
            let l = 2 * p + 1
            let r = l + 1
            var m = p
            if l < heap.count && Self.less(heap[l], heap[m]) { m = l }
            if r < heap.count && Self.less(heap[r], heap[m]) { m = r }
            if m == p { break }
            heap.swapAt(p, m)
            p = m
        }
        return (top.time, top.element)
    }
}
