/// SWIM failure detection and membership dissemination as a pure state machine.
///
/// Nothing in here does I/O, reads a clock or sleeps: the caller feeds events (timer ticks,
/// received messages, local requests) with the current time in seconds and executes the returned
/// `SWIM.Directive`s (send this message, report this status change). Randomness comes from a
/// seeded SplitMix64 kept in the state, so a run is reproducible from its seed and inputs.
///
/// Protocol (Das, Gupta, Motivala 2002, with Lifeguard's buddy system):
/// - Every `probePeriod` the instance pings the next member of a shuffled round-robin list
///   (re-shuffled after each pass; a new member is inserted at a random position).
/// - No ack after `probeTimeout`: ask `pingReqFanout` random live members to ping the target
///   (ping-req); a relay forwards the target's ack.
/// - Still no ack at the end of the period: the target becomes suspect (at its known incarnation)
///   and the suspicion is gossiped. Every member that holds a suspicion runs its own timer;
///   when it expires (`suspicionTimeout`, scaled by log10 n) the member is declared dead.
/// - Deaths are confirmed locally (Lifeguard-style, `confirmDeathsLocally`): a death gossiped by
///   anyone but the member itself counts here as a suspicion at that incarnation, so a member
///   declared dead by the far side of a partition is pinged, can refute, and is declared dead
///   only by this instance's own suspicion timer.
/// - A member that hears it is suspected or dead at its own incarnation (or higher) raises its
///   incarnation above it and gossips alive: the refutation. For one member, a higher incarnation
///   always wins; for the same incarnation dead > suspect > alive, so dead is final for that
///   incarnation, and only the member itself can come back, with a higher incarnation.
/// - Dissemination: every message carries the sender's own record, then (buddy system) what the
///   sender believes about the recipient if that is suspect or dead, then the queued updates
///   gossiped least often so far; each queued update is sent ceil(lambda log2(n+1)) times.
///   Digests ride along the same way; per owner the highest version wins.
/// - Every `deadMemberProbeInterval` periods one member believed dead is pinged; if it is in fact
///   alive (healed partition) it learns it was declared dead, refutes, and rejoins everywhere.
///
/// Rejoin after a restart: pass an `incarnation` larger than any used by the previous process
/// (e.g. the start time in milliseconds since a common epoch). With incarnation 0 it still works,
/// only slower: the first member that tells it "you are dead at i" makes it jump to i + 1.
public struct SWIMInstance<Payload: Sendable>: Sendable {
    public typealias Directive = SWIM.Directive<Payload>
    public typealias Digest = SWIM.Digest<Payload>
    public typealias Message = SWIM.Message<Payload>

    public let settings: SWIM.Settings
    public let myself: SWIM.Member
    /// This member's current incarnation.
    public private(set) var incarnation: SWIM.Incarnation
    /// Set by `leave`; afterwards every input is ignored.
    public private(set) var hasLeft = false
    public private(set) var counters = SWIM.Counters()

    private struct Record: Sendable {
        var state: SWIM.MemberState
        /// Set while the member is suspect: when this instance declares it dead.
        var suspicionDeadline: Double?
    }

    private struct Probe: Sendable {
        var id: UInt64
        var target: SWIM.MemberID
        var startedAt: Double
        var pingReqSent: Bool
    }

    private struct Relay: Sendable {
        var requester: SWIM.MemberID
        var requesterProbeID: UInt64
        var target: SWIM.MemberID
        var expiresAt: Double
    }

    private var records: [SWIM.MemberID: Record] = [:]
    /// Member updates waiting to be piggybacked: member -> times sent so far. The update sent is
    /// always the current record, so a stale fact never leaves this instance.
    private var updateQueue: [SWIM.MemberID: Int] = [:]
    /// Newcomer -> members it may not know yet: piggybacked on this instance's next messages to it
    /// (in the room left by the buddy record), so a member that joined through one seed learns the
    /// whole membership within a few periods instead of a full round-robin pass of everyone else.
    private var syncQueue: [SWIM.MemberID: [SWIM.MemberID]] = [:]
    private var digestStore: [SWIM.MemberID: Digest] = [:]
    private var digestQueue: [SWIM.MemberID: Int] = [:]
    /// Next own digest version must exceed this (versions seen from a previous life included).
    private var digestVersionFloor: UInt64
    private var probeOrder: [SWIM.MemberID] = []
    /// Sorted ids of the members not believed dead, this one included; nil when stale.
    private var liveSorted: [SWIM.MemberID]?
    private var probeIndex = 0
    private var probe: Probe?
    private var nextProbeAt: Double
    private var relays: [UInt64: Relay] = [:]
    private var lastProbeID: UInt64
    private var periodsSinceDeadProbe = 0
    private var rng: SplitMix64
    private var now: Double

    /// - Parameters:
    ///   - myself: this member's id, address and role.
    ///   - incarnation: starting incarnation; a restarted member should pass a value above any it
    ///     used before (e.g. milliseconds since a common epoch at start).
    ///   - members: members known up front (configuration, seeds), assumed alive at incarnation 0
    ///     until they say otherwise. No directives are emitted for them.
    ///   - seed: seed of the instance's PRNG (probe order, ping-req helpers, first probe offset).
    ///   - now: current time; the first probe happens at a random offset within one period.
    public init(
        settings: SWIM.Settings = .init(), myself: SWIM.Member, incarnation: SWIM.Incarnation = 0,
        members: [SWIM.Member] = [], seed: UInt64, now: Double = 0
    ) {
        self.settings = settings.sanitized
        self.myself = myself
        self.incarnation = incarnation
        self.digestVersionFloor = incarnation
        self.rng = SplitMix64(seed: seed ^ 0x5357_494D_5357_494D)
        self.now = now
        self.lastProbeID = rng.next() >> 24
        self.nextProbeAt = now
        self.nextProbeAt = now + rng.next(in: 0, self.settings.probePeriod)
        for m in members where m.id != myself.id && records[m.id] == nil {
            records[m.id] = Record(
                state: SWIM.MemberState(id: m.id, address: m.address, role: m.role, status: .alive, incarnation: 0),
                suspicionDeadline: nil)
            probeOrder.append(m.id)
        }
        rng.shuffle(&probeOrder)
    }

    // MARK: - Queries

    /// This member's own record as others should see it.
    public var selfState: SWIM.MemberState {
        SWIM.MemberState(
            id: myself.id, address: myself.address, role: myself.role, status: hasLeft ? .dead : .alive,
            incarnation: incarnation)
    }

    /// What this instance believes about `id` (its own record for `myself.id`).
    public func member(_ id: SWIM.MemberID) -> SWIM.MemberState? {
        id == myself.id ? selfState : records[id]?.state
    }

    public func status(of id: SWIM.MemberID) -> SWIM.Status? { member(id)?.status }

    /// Every other member this instance knows of (dead ones included), sorted by id.
    public var members: [SWIM.MemberState] { records.values.map(\.state).sorted { $0.id < $1.id } }

    /// Number of members not believed dead, this one included.
    public var liveMemberCount: Int { 1 + records.values.count { $0.state.status != .dead } }

    /// The newest digest known for `owner` (this member's own included).
    public func digest(of owner: SWIM.MemberID) -> Digest? { digestStore[owner] }

    /// Every known digest, sorted by owner.
    public var digests: [Digest] { digestStore.values.sorted { $0.owner < $1.owner } }

    /// The earliest time at which `tick` has something to do; the shell arms its timer for it.
    /// Nil after `leave`.
    public var nextDeadline: Double? {
        guard !hasLeft else { return nil }
        var d = nextProbeAt
        if let p = probe {
            if !p.pingReqSent { d = min(d, p.startedAt + settings.probeTimeout) }
            d = min(d, p.startedAt + settings.probePeriod)
        }
        for r in records.values {
            if let s = r.suspicionDeadline { d = min(d, s) }
        }
        return d
    }

    // MARK: - Inputs

    /// Single entry point: dispatches `event` to the matching method.
    public mutating func handle(_ event: SWIM.Event<Payload>, now: Double) -> [Directive] {
        switch event {
        case .tick: tick(now: now)
        case .ping(let from, let m):
            receivedPing(from: from, probeID: m.probeID, updates: m.updates, digests: m.digests, now: now)
        case .pingReq(let from, let m):
            receivedPingReq(
                from: from, probeID: m.probeID, targetID: m.targetID, targetAddress: m.targetAddress,
                updates: m.updates, digests: m.digests, now: now)
        case .ack(let from, let m):
            receivedAck(
                from: from, probeID: m.probeID, targetID: m.targetID, updates: m.updates, digests: m.digests,
                now: now)
        case .addMember(let m): addMember(m, now: now)
        case .publishDigest(let p): publishLocalDigest(p, now: now)
        case .leave: leave(now: now)
        }
    }

    /// Dispatches a received message.
    public mutating func receive(_ message: Message, from: SWIM.MemberID, now: Double) -> [Directive] {
        switch message {
        case .ping(let m): handle(.ping(from: from, m), now: now)
        case .pingReq(let m): handle(.pingReq(from: from, m), now: now)
        case .ack(let m): handle(.ack(from: from, m), now: now)
        }
    }

    /// Timer input: ping-req on probe timeout, suspicion at the end of the period, death when a
    /// suspicion expires, next probe when the period starts.
    public mutating func tick(now t: Double) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        var out: [Directive] = []
        relays = relays.filter { $0.value.expiresAt > now }

        if var p = probe {
            if !p.pingReqSent && now >= p.startedAt + settings.probeTimeout {
                p.pingReqSent = true
                probe = p
                sendPingReqs(for: p, into: &out)
            }
            if now >= p.startedAt + settings.probePeriod {
                probe = nil
                raiseSuspicion(p.target, into: &out)
            }
        }

        let expired = records.filter { $0.value.suspicionDeadline.map { $0 <= now } ?? false }.keys.sorted()
        for id in expired { declareDead(id, into: &out) }

        if now >= nextProbeAt {
            // A probe is timed from its slot, not from this tick, which may come late: its period
            // then ends exactly where the next slot begins, so the check above has concluded it
            // before the next probe takes its place. Timed from a late tick, a probe was replaced
            // without a verdict whenever the next slot's tick came less late, and a dead member
            // went unsuspected for another period (the live shell ticks every 10 ms).
            var slot = nextProbeAt
            nextProbeAt += settings.probePeriod
            if nextProbeAt <= now {  // more than a period late: a new grid from now
                nextProbeAt = now + settings.probePeriod
                slot = now
            }
            startProbe(slot: slot, into: &out)
            probeDeadMember(into: &out)
        }
        return out
    }

    public mutating func receivedPing(
        from sender: SWIM.MemberID, probeID: UInt64, updates: [SWIM.MemberUpdate], digests: [Digest], now t: Double
    ) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        var out: [Directive] = []
        merge(updates, digests, from: sender, into: &out)
        send(to: sender, .ack(probeID: probeID, targetID: myself.id), into: &out)
        return out
    }

    public mutating func receivedPingReq(
        from sender: SWIM.MemberID, probeID: UInt64, targetID: SWIM.MemberID, targetAddress: SWIM.Address,
        updates: [SWIM.MemberUpdate], digests: [Digest], now t: Double
    ) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        var out: [Directive] = []
        merge(updates, digests, from: sender, into: &out)
        if targetID == myself.id {
            send(to: sender, .ack(probeID: probeID, targetID: myself.id), into: &out)
            return out
        }
        let relayID = newProbeID()
        relays[relayID] = Relay(
            requester: sender, requesterProbeID: probeID, target: targetID, expiresAt: now + settings.probePeriod)
        let address = targetAddress.rawValue.isEmpty ? (records[targetID]?.state.address ?? targetAddress) : targetAddress
        send(to: targetID, address: address, .ping(probeID: relayID), into: &out)
        return out
    }

    public mutating func receivedAck(
        from sender: SWIM.MemberID, probeID: UInt64, targetID: SWIM.MemberID, updates: [SWIM.MemberUpdate],
        digests: [Digest], now t: Double
    ) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        var out: [Directive] = []
        merge(updates, digests, from: sender, into: &out)
        if let p = probe, p.id == probeID, p.target == targetID {
            if sender != targetID { counters.indirectAcks += 1 }
            probe = nil
        } else if let r = relays[probeID], r.target == targetID, sender == targetID {
            relays[probeID] = nil
            send(to: r.requester, .ack(probeID: r.requesterProbeID, targetID: targetID), into: &out)
        }
        return out
    }

    /// Adds a member learned out of band (alive at incarnation 0 unless known already).
    public mutating func addMember(_ m: SWIM.Member, now t: Double) -> [Directive] {
        guard !hasLeft, m.id != myself.id, records[m.id] == nil else { return [] }
        advance(to: t)
        var out: [Directive] = []
        let state = SWIM.MemberState(id: m.id, address: m.address, role: m.role, status: .alive, incarnation: 0)
        insert(state)
        out.append(.memberStatusChanged(state, from: nil, to: .alive, reason: .added))
        return out
    }

    /// Publishes a new version of this member's digest; it is piggybacked like a member update.
    public mutating func publishLocalDigest(_ payload: Payload, now t: Double) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        let version = max(digestVersionFloor, digestStore[myself.id]?.version ?? 0) + 1
        digestStore[myself.id] = Digest(owner: myself.id, version: version, payload: payload)
        digestQueue[myself.id] = 0
        return []
    }

    /// Leaves the cluster: sends this member's death (at its current incarnation) to every member
    /// believed alive or suspect, then ignores every input.
    public mutating func leave(now t: Double) -> [Directive] {
        guard !hasLeft else { return [] }
        advance(to: t)
        hasLeft = true
        probe = nil
        relays = [:]
        var out: [Directive] = []
        for id in records.keys.sorted() where records[id]!.state.status != .dead {
            send(to: id, .ping(probeID: newProbeID()), into: &out)
        }
        return out
    }

    // MARK: - Probing

    private mutating func advance(to t: Double) { if t > now { now = t } }

    private mutating func newProbeID() -> UInt64 {
        lastProbeID &+= 1
        if lastProbeID == 0 { lastProbeID = 1 }
        return lastProbeID
    }

    /// Independent schedule: next member of this instance's own shuffled round-robin list that is
    /// not believed dead (re-shuffled after each pass), as in the SWIM paper.
    private mutating func nextProbeTarget() -> SWIM.MemberID? {
        for _ in 0..<(probeOrder.count + 1) {
            if probeIndex >= probeOrder.count {
                probeOrder = records.keys.sorted()
                rng.shuffle(&probeOrder)
                probeIndex = 0
                if probeOrder.isEmpty { return nil }
            }
            let id = probeOrder[probeIndex]
            probeIndex += 1
            if let r = records[id], r.state.status != .dead { return id }
        }
        return nil
    }

    /// Shared schedule: the members that probe (``SWIM/Role/probes``: not the gateway) shuffle
    /// their sorted list with the same seed for each pass of m - 1 periods of the common clock; in
    /// period k of a pass the prober at position i probes position i + 1 + k (mod m). While views
    /// agree this is a permutation, so every prober is probed exactly once per period and a crashed
    /// one is first probed within about one period (independent shuffles leave it unprobed for t
    /// seconds with probability about exp(-t / probePeriod)). Members that do not probe take at
    /// most m - 1 turns of each pass, one per prober and period at most, in rotation: a prober
    /// whose turn it is probes one of them instead of its target in the ring. (When the gateway
    /// had a place in the ring, the member after its place went unprobed that period: with three
    /// shards, one period in three.) A member outside the probers that runs an instance anyway
    /// (the simulator's gateway can) probes by its own round robin.
    private mutating func sharedProbeTarget(slot: Double) -> SWIM.MemberID? {
        if liveSorted == nil {
            var ids = records.values.filter { $0.state.status != .dead }.map(\.state.id)
            ids.append(myself.id)
            liveSorted = ids.sorted()
        }
        let live = liveSorted!
        guard myself.role.probes else { return nextProbeTarget() }
        let passive = live.filter { $0 != myself.id && records[$0]?.state.role.probes == false }
        var probers = live.filter { $0 == myself.id || records[$0]?.state.role.probes != false }
        let m = probers.count
        let step = UInt64(max(0, (slot / settings.probePeriod).rounded(.down)))
        guard m > 1 else { return passive.isEmpty ? nil : passive[Int(step % UInt64(passive.count))] }
        let pass = step / UInt64(m - 1)
        let k = Int(step % UInt64(m - 1))
        var shuffler = SplitMix64(seed: settings.probeScheduleSeed ^ (pass &* 0x9E37_79B9_7F4A_7C15))
        shuffler.shuffle(&probers)
        guard let i = probers.firstIndex(of: myself.id) else { return nil }
        // Turn s of the pass is period s / m, prober (s + pass) mod m; the first min(g, m - 1)
        // turns go to the g members that do not probe, rotating over passes.
        let turns = min(passive.count, m - 1)
        let turn = k * m + (i - Int(pass % UInt64(m)) + m) % m
        if turn < turns { return passive[Int((pass &* UInt64(m - 1) &+ UInt64(turn)) % UInt64(passive.count))] }
        return probers[(i + 1 + k) % m]
    }

    private mutating func startProbe(slot: Double, into out: inout [Directive]) {
        guard let target = settings.sharedProbeSchedule ? sharedProbeTarget(slot: slot) : nextProbeTarget() else { return }
        let p = Probe(id: newProbeID(), target: target, startedAt: slot, pingReqSent: false)
        probe = p
        counters.probesSent += 1
        send(to: target, .ping(probeID: p.id), into: &out)
    }

    private mutating func sendPingReqs(for p: Probe, into out: inout [Directive]) {
        guard let target = records[p.target]?.state else { return }
        let relays = records.values.filter { $0.state.id != p.target && $0.state.role.probes }
        var helpers = relays.filter { $0.state.status == .alive }.map(\.state.id)
        if helpers.count < settings.pingReqFanout {
            // Too few alive members: suspects may still relay.
            helpers += relays.filter { $0.state.status == .suspect }.map(\.state.id)
        }
        helpers.sort()
        for h in rng.sample(helpers, count: settings.pingReqFanout) {
            counters.pingReqsSent += 1
            send(to: h, .pingReq(probeID: p.id, targetID: target.id, targetAddress: target.address), into: &out)
        }
    }

    /// Every `deadMemberProbeInterval` periods, ping one member believed dead.
    private mutating func probeDeadMember(into out: inout [Directive]) {
        guard settings.deadMemberProbeInterval > 0 else { return }
        periodsSinceDeadProbe += 1
        guard periodsSinceDeadProbe >= settings.deadMemberProbeInterval else { return }
        let dead = records.values.filter { $0.state.status == .dead }.map(\.state.id).sorted()
        guard !dead.isEmpty else { return }
        periodsSinceDeadProbe = 0
        let id = dead[rng.next(below: dead.count)]
        send(to: id, .ping(probeID: newProbeID()), into: &out)
    }

    private mutating func raiseSuspicion(_ id: SWIM.MemberID, into out: inout [Directive]) {
        guard var r = records[id], r.state.status == .alive else { return }
        r.state.status = .suspect
        r.suspicionDeadline = now + settings.suspicionTimeout(memberCount: liveMemberCount)
        records[id] = r
        updateQueue[id] = 0
        counters.suspicionsRaised += 1
        out.append(.memberStatusChanged(r.state, from: .alive, to: .suspect, reason: .probeFailed))
        // Buddy system, eagerly: tell the suspect right away (if it is alive it refutes in its ack),
        // and start the rumour on a few others.
        send(to: id, .ping(probeID: newProbeID()), into: &out)
        disseminate(excluding: id, into: &out)
    }

    /// Sends gossip-only pings (untracked probe ids; the acks only carry gossip back) to
    /// `disseminationFanout` random live members, so a fact this instance originated spreads now
    /// rather than at the next probe.
    private mutating func disseminate(excluding: SWIM.MemberID? = nil, into out: inout [Directive]) {
        guard settings.disseminationFanout > 0 else { return }
        let candidates = records.values.filter { $0.state.status == .alive && $0.state.id != excluding }.map(\.state.id)
            .sorted()
        for id in rng.sample(candidates, count: settings.disseminationFanout) {
            send(to: id, .ping(probeID: newProbeID()), into: &out)
        }
    }

    private mutating func declareDead(_ id: SWIM.MemberID, into out: inout [Directive]) {
        guard var r = records[id], r.state.status == .suspect else { return }
        r.state.status = .dead
        r.suspicionDeadline = nil
        records[id] = r
        liveSorted = nil
        updateQueue[id] = 0
        counters.deathsDeclared += 1
        out.append(.memberStatusChanged(r.state, from: .suspect, to: .dead, reason: .suspicionExpired))
        disseminate(excluding: id, into: &out)
    }

    // MARK: - Dissemination

    private mutating func insert(_ state: SWIM.MemberState) {
        if state.status != .dead {
            let others = records.filter { $0.value.state.status != .dead }.keys.sorted()
            if !others.isEmpty { syncQueue[state.id] = others }
        }
        records[state.id] = Record(state: state, suspicionDeadline: nil)
        liveSorted = nil
        updateQueue[state.id] = 0
        let at = rng.next(below: probeOrder.count + 1)
        probeOrder.insert(state.id, at: at)
        if at < probeIndex { probeIndex += 1 }
        resendDigests()
    }

    /// A member joined or came back: give it a chance to hear every digest.
    private mutating func resendDigests() {
        for owner in digestStore.keys { digestQueue[owner] = 0 }
    }

    private mutating func merge(
        _ updates: [SWIM.MemberUpdate], _ digests: [Digest], from sender: SWIM.MemberID, into out: inout [Directive]
    ) {
        for u in updates {
            if u.memberID == myself.id { mergeAboutMyself(u, into: &out) } else { mergeAboutOther(u, from: sender, into: &out) }
        }
        for d in digests { mergeDigest(d, into: &out) }
    }

    private mutating func mergeAboutMyself(_ u: SWIM.MemberUpdate, into out: inout [Directive]) {
        guard u.incarnation > incarnation || (u.incarnation == incarnation && u.status != .alive) else { return }
        // Someone holds a fact about this member at least as strong as its own record: either a
        // suspicion / death to refute, or a record of a previous life with a higher incarnation.
        incarnation = u.incarnation == .max ? .max : u.incarnation + 1  // a forged maximum must not trap
        if digestVersionFloor < incarnation { digestVersionFloor = incarnation }
        if u.status != .alive {
            counters.refutations += 1
            out.append(.refuted(incarnation: incarnation))
            disseminate(into: &out)
        }
    }

    private mutating func mergeAboutOther(_ u: SWIM.MemberUpdate, from sender: SWIM.MemberID, into out: inout [Directive]) {
        var u = u
        if u.status == .dead, settings.confirmDeathsLocally, sender != u.memberID,
           let known = records[u.memberID], known.state.status != .dead
        {
            // Someone else's verdict: a suspicion here, confirmed (or refuted) on this side.
            u.status = .suspect
            if u.supersedes(status: known.state.status, incarnation: known.state.incarnation) {
                counters.deathsHeardAsSuspicions += 1
            }
        }
        guard var r = records[u.memberID] else {
            let state = u.stateValue
            insert(state)
            if state.status == .suspect {
                let deadline = now + settings.suspicionTimeout(memberCount: liveMemberCount)
                records[u.memberID]?.suspicionDeadline = deadline
            }
            out.append(.memberStatusChanged(state, from: nil, to: state.status, reason: .gossip))
            if state.status == .suspect { pingSuspect(u.memberID, into: &out) }
            return
        }
        guard u.supersedes(status: r.state.status, incarnation: r.state.incarnation) else { return }
        let old = r.state.status
        let incarnationChanged = u.incarnation != r.state.incarnation
        r.state.status = u.status
        r.state.incarnation = u.incarnation
        if !u.address.rawValue.isEmpty { r.state.address = u.address }
        if u.role != .unspecified { r.state.role = u.role }
        switch u.status {
        case .suspect:
            if old != .suspect || incarnationChanged || r.suspicionDeadline == nil {
                r.suspicionDeadline = now + settings.suspicionTimeout(memberCount: liveMemberCount)
            }
        case .alive, .dead:
            r.suspicionDeadline = nil
        }
        records[u.memberID] = r
        updateQueue[u.memberID] = 0
        if (old == .dead) != (u.status == .dead) { liveSorted = nil }
        if old != u.status {
            if old == .suspect && u.status == .alive { counters.suspicionsCleared += 1 }
            if old == .dead { resendDigests() }
            out.append(.memberStatusChanged(r.state, from: old, to: u.status, reason: .gossip))
        }
        if u.status == .suspect && (old != .suspect || incarnationChanged) { pingSuspect(u.memberID, into: &out) }
    }

    /// Hearsay buddy ping: on hearing of a new suspicion, tell the suspect directly. If it is alive
    /// it refutes, and its ack brings the refutation straight back to this member.
    private mutating func pingSuspect(_ id: SWIM.MemberID, into out: inout [Directive]) {
        guard settings.pingSuspectOnHearsay else { return }
        send(to: id, .ping(probeID: newProbeID()), into: &out)
    }

    private mutating func mergeDigest(_ d: Digest, into out: inout [Directive]) {
        if d.owner == myself.id {
            // A digest of ours from a previous life (or a forged one): the next one must beat it.
            if d.version >= digestVersionFloor { digestVersionFloor = d.version }
            if let mine = digestStore[myself.id], d.version > mine.version {
                digestStore[myself.id] = Digest(owner: myself.id, version: d.version + 1, payload: mine.payload)
                digestQueue[myself.id] = 0
            }
            return
        }
        if let known = digestStore[d.owner], known.version >= d.version {
            // Someone still spreads an older version (e.g. the owner restarted without its start
            // epoch and counts from 1 again): spread ours, so the owner learns it must go above it.
            if known.version > d.version { digestQueue[d.owner] = 0 }
            return
        }
        digestStore[d.owner] = d
        digestQueue[d.owner] = 0
        out.append(.digestUpdated(d))
    }

    /// Updates and digests to piggyback on a message to `recipient`, counting the transmissions.
    private mutating func piggyback(for recipient: SWIM.MemberID) -> ([SWIM.MemberUpdate], [Digest]) {
        var updates = [selfState.update]
        if let r = records[recipient], r.state.status != .alive {
            // Buddy system: tell a suspect (or a member believed dead) what we think, so it can refute.
            updates.append(r.state.update)
        }
        if var pending = syncQueue[recipient] {
            if records[recipient]?.state.status == .dead {
                syncQueue[recipient] = nil
            } else {
                let take = min(pending.count, settings.maxPiggybackedUpdates - updates.count)
                for id in pending.prefix(take) { if let r = records[id] { updates.append(r.state.update) } }
                pending.removeFirst(take)
                syncQueue[recipient] = pending.isEmpty ? nil : pending
            }
        }
        let n = liveMemberCount
        let limit = settings.retransmitLimit(memberCount: n)
        let sent = Set(updates.map(\.memberID))
        let room = settings.maxPiggybackedUpdates - updates.count
        if room > 0 && !updateQueue.isEmpty {
            let chosen = updateQueue.filter { $0.key != recipient && !sent.contains($0.key) }
                .sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }
                .prefix(room)
            for (id, count) in chosen {
                guard let r = records[id] else {
                    updateQueue[id] = nil
                    continue
                }
                updates.append(r.state.update)
                updateQueue[id] = count + 1 >= limit ? nil : count + 1
            }
        }
        var digests: [Digest] = []
        if settings.maxPiggybackedDigests > 0 && !digestQueue.isEmpty {
            let chosen = digestQueue.sorted { $0.value != $1.value ? $0.value < $1.value : $0.key < $1.key }
                .prefix(settings.maxPiggybackedDigests)
            for (owner, count) in chosen {
                guard let d = digestStore[owner] else {
                    digestQueue[owner] = nil
                    continue
                }
                digests.append(d)
                digestQueue[owner] = count + 1 >= limit ? nil : count + 1
            }
        }
        return (updates, digests)
    }

    private enum Outgoing {
        case ping(probeID: UInt64)
        case pingReq(probeID: UInt64, targetID: SWIM.MemberID, targetAddress: SWIM.Address)
        case ack(probeID: UInt64, targetID: SWIM.MemberID)
    }

    private mutating func send(
        to id: SWIM.MemberID, address: SWIM.Address? = nil, _ kind: Outgoing, into out: inout [Directive]
    ) {
        guard let address = address ?? records[id]?.state.address else { return }
        let (u, d) = piggyback(for: id)
        counters.messagesSent += 1
        let message: Message
        switch kind {
        case .ping(let probeID):
            message = .ping(SWIM.Ping(probeID: probeID, updates: u, digests: d))
        case .pingReq(let probeID, let targetID, let targetAddress):
            message = .pingReq(
                SWIM.PingReq(probeID: probeID, targetID: targetID, targetAddress: targetAddress, updates: u, digests: d))
        case .ack(let probeID, let targetID):
            message = .ack(SWIM.Ack(probeID: probeID, targetID: targetID, updates: u, digests: d))
        }
        out.append(.send(to: id, address: address, message: message))
    }
}

extension SWIM.MemberUpdate {
    fileprivate var stateValue: SWIM.MemberState {
        SWIM.MemberState(id: memberID, address: address, role: role, status: status, incarnation: incarnation)
    }
}
