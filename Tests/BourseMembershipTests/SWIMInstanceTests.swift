import XCTest

@testable import BourseMembership

/// Single-instance tests: one SWIMInstance driven by hand with virtual time.
final class SWIMInstanceTests: XCTestCase {
    typealias Instance = SWIMInstance<String>
    typealias Directive = SWIM.Directive<String>
    typealias Sent = (to: SWIM.MemberID, address: SWIM.Address, message: SWIM.Message<String>)

    static func member(_ id: String) -> SWIM.Member {
        SWIM.Member(id: SWIM.MemberID(id), address: SWIM.Address("tcp://\(id)"), role: .shard)
    }

    static let peers = ["B", "C", "D", "E"].map(member)

    func makeA(seed: UInt64 = 1, settings: SWIM.Settings = .init(), incarnation: UInt64 = 0) -> Instance {
        Instance(settings: settings, myself: Self.member("A"), incarnation: incarnation, members: Self.peers, seed: seed)
    }

    func sends(_ ds: [Directive]) -> [Sent] {
        ds.compactMap {
            if case .send(let to, let address, let message) = $0 { return (to, address, message) }
            return nil
        }
    }

    func changes(_ ds: [Directive]) -> [(id: SWIM.MemberID, from: SWIM.Status?, to: SWIM.Status, reason: SWIM.ChangeReason)] {
        ds.compactMap {
            if case .memberStatusChanged(let s, let from, let to, let reason) = $0 { return (s.id, from, to, reason) }
            return nil
        }
    }

    func update(_ id: String, _ status: SWIM.Status, _ inc: UInt64) -> SWIM.MemberUpdate {
        SWIM.MemberUpdate(
            memberID: SWIM.MemberID(id), address: SWIM.Address("tcp://\(id)"), status: status, incarnation: inc,
            role: .shard)
    }

    /// Ticks to the first probe; returns its time, target and probe id.
    func firstProbe(_ a: inout Instance) -> (time: Double, target: SWIM.MemberID, probeID: UInt64) {
        let t = a.nextDeadline!
        XCTAssert(t >= 0 && t < a.settings.probePeriod, "first probe within the first period")
        let out = sends(a.tick(now: t))
        XCTAssertEqual(out.count, 1)
        guard case .ping(let ping) = out[0].message else {
            XCTFail("expected a ping, got \(out[0].message)")
            return (t, "", 0)
        }
        XCTAssertEqual(out[0].address, SWIM.Address("tcp://\(out[0].to)"))
        return (t, out[0].to, ping.probeID)
    }

    // MARK: - Probing

    func testPingIsAckedWithOwnRecordFirst() {
        var a = makeA()
        let out = sends(a.receivedPing(from: "B", probeID: 42, updates: [update("B", .alive, 0)], digests: [], now: 0.1))
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].to, "B")
        XCTAssertEqual(out[0].address, "tcp://B")
        guard case .ack(let ack) = out[0].message else { return XCTFail("expected ack") }
        XCTAssertEqual(ack.probeID, 42)
        XCTAssertEqual(ack.targetID, "A")
        XCTAssertEqual(ack.updates.first, update("A", .alive, 0))
    }

    func testDirectAckEndsProbeWithoutSuspicion() {
        var a = makeA()
        let p = firstProbe(&a)
        let acked = a.receivedAck(from: p.target, probeID: p.probeID, targetID: p.target, updates: [], digests: [], now: p.time + 0.01)
        XCTAssertTrue(sends(acked).isEmpty)
        // Through the end of the period: no ping-req, no suspicion; the next probe starts.
        var all: [Directive] = []
        var t = p.time
        while let d = a.nextDeadline, d <= p.time + a.settings.probePeriod {
            t = d
            all += a.tick(now: t)
        }
        XCTAssertTrue(changes(all).isEmpty)
        XCTAssertFalse(sends(all).contains { if case .pingReq = $0.message { true } else { false } })
        XCTAssertEqual(a.status(of: p.target), .alive)
        XCTAssertEqual(a.counters.suspicionsRaised, 0)
    }

    func testPingReqThroughKOthersAfterProbeTimeout() {
        var a = makeA()
        let p = firstProbe(&a)
        XCTAssertEqual(a.nextDeadline!, p.time + a.settings.probeTimeout, accuracy: 1e-9)
        XCTAssertTrue(a.tick(now: p.time + 0.1).isEmpty, "nothing before the probe timeout")
        let out = sends(a.tick(now: p.time + a.settings.probeTimeout))
        XCTAssertEqual(out.count, 3, "k = 3 ping-reqs")
        XCTAssertEqual(Set(out.map(\.to)).count, 3)
        for s in out {
            XCTAssertNotEqual(s.to, p.target)
            XCTAssertNotEqual(s.to, "A")
            guard case .pingReq(let req) = s.message else { return XCTFail("expected ping-req") }
            XCTAssertEqual(req.probeID, p.probeID)
            XCTAssertEqual(req.targetID, p.target)
            XCTAssertEqual(req.targetAddress, SWIM.Address("tcp://\(p.target)"))
        }
        // The relayed ack (sent by a helper, naming the target) completes the probe.
        let helper = out[1].to
        _ = a.receivedAck(from: helper, probeID: p.probeID, targetID: p.target, updates: [], digests: [], now: p.time + 0.3)
        let end = a.tick(now: p.time + a.settings.probePeriod)
        XCTAssertTrue(changes(end).isEmpty)
        XCTAssertEqual(a.status(of: p.target), .alive)
        XCTAssertEqual(a.counters.indirectAcks, 1)
        XCTAssertEqual(a.counters.pingReqsSent, 3)
    }

    func testPingReqFanoutIsLimitedByAvailableMembers() {
        var s = SWIM.Settings()
        s.pingReqFanout = 10
        var a = makeA(settings: s)
        let p = firstProbe(&a)
        let out = sends(a.tick(now: p.time + s.probeTimeout))
        XCTAssertEqual(out.count, 3, "only 3 members besides the target")
    }

    func testRelayForwardsTargetAckToRequester() {
        var a = makeA()
        let out = sends(
            a.receivedPingReq(
                from: "B", probeID: 7, targetID: "C", targetAddress: "tcp://C", updates: [], digests: [], now: 1))
        XCTAssertEqual(out.count, 1)
        XCTAssertEqual(out[0].to, "C")
        guard case .ping(let ping) = out[0].message else { return XCTFail("expected ping") }
        XCTAssertNotEqual(ping.probeID, 7)
        // An ack for the relay id from someone other than the target is not forwarded.
        XCTAssertTrue(
            sends(a.receivedAck(from: "D", probeID: ping.probeID, targetID: "C", updates: [], digests: [], now: 1.01))
                .isEmpty)
        let fwd = sends(a.receivedAck(from: "C", probeID: ping.probeID, targetID: "C", updates: [], digests: [], now: 1.02))
        XCTAssertEqual(fwd.count, 1)
        XCTAssertEqual(fwd[0].to, "B")
        guard case .ack(let ack) = fwd[0].message else { return XCTFail("expected ack") }
        XCTAssertEqual(ack.probeID, 7)
        XCTAssertEqual(ack.targetID, "C")
        // Forwarded once only (a duplicated ack is dropped).
        XCTAssertTrue(
            sends(a.receivedAck(from: "C", probeID: ping.probeID, targetID: "C", updates: [], digests: [], now: 1.03))
                .isEmpty)
    }

    func testSuspectAfterNoAckThenDeadAfterSuspicionTimeout() {
        var a = makeA()
        let p = firstProbe(&a)
        _ = a.tick(now: p.time + a.settings.probeTimeout)
        let end = a.tick(now: p.time + a.settings.probePeriod)
        let c = changes(end)
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c[0].id, p.target)
        XCTAssertEqual(c[0].from, .alive)
        XCTAssertEqual(c[0].to, .suspect)
        XCTAssertEqual(c[0].reason, .probeFailed)
        XCTAssertEqual(a.status(of: p.target), .suspect)
        XCTAssertEqual(a.counters.suspicionsRaised, 1)
        // The suspect itself is told at once (buddy system), carrying its suspicion.
        let toSuspect = sends(end).filter { $0.to == p.target }
        XCTAssertFalse(toSuspect.isEmpty)
        XCTAssertTrue(toSuspect.contains { $0.message.updates.contains(self.update(p.target.rawValue, .suspect, 0)) })

        // Dead exactly one suspicion timeout later (5 members: no log scaling).
        let timeout = a.settings.suspicionTimeout(memberCount: 5)
        XCTAssertEqual(timeout, 1.0)
        let suspectedAt = p.time + a.settings.probePeriod
        var deadAt: Double?
        var t = suspectedAt
        while deadAt == nil, let d = a.nextDeadline, d < suspectedAt + 5 {
            t = d
            let out = a.tick(now: t)
            if let ch = changes(out).first(where: { $0.id == p.target && $0.to == .dead }) {
                XCTAssertEqual(ch.reason, .suspicionExpired)
                deadAt = t
            }
            // Keep acking every other probe so nobody else becomes suspect.
            for s in sends(out) where s.to != p.target {
                if case .ping(let ping) = s.message {
                    _ = a.receivedAck(from: s.to, probeID: ping.probeID, targetID: s.to, updates: [], digests: [], now: t)
                }
            }
        }
        XCTAssertEqual(deadAt ?? -1, suspectedAt + timeout, accuracy: 1e-9)
        XCTAssertEqual(a.status(of: p.target), .dead)
        XCTAssertEqual(a.counters.deathsDeclared, 1)
        XCTAssertEqual(a.liveMemberCount, 4)
    }

    /// A and B alone, so every probe of A targets B, which never answers.
    func makeAWithSilentB(seed: UInt64) -> Instance {
        Instance(settings: .init(), myself: Self.member("A"), members: [Self.member("B")], seed: seed)
    }

    func testALateTickAtAProbesStartDoesNotLoseItsVerdict() {
        // The live shell ticks every 10 ms, so the tick that starts a probe comes a little after
        // its slot. Here it comes 4 ms late and the next slot's tick only 1 ms late: the probe that
        // got no answer is concluded (B suspected) before the next probe starts.
        var a = makeAWithSilentB(seed: 5)
        let slot = a.nextDeadline!
        let started = sends(a.tick(now: slot + 0.004))
        XCTAssertEqual(started.map(\.to), ["B"])
        _ = a.tick(now: slot + a.settings.probeTimeout + 0.004)
        let next = a.tick(now: slot + a.settings.probePeriod + 0.001)
        XCTAssertEqual(changes(next).map(\.to), [.suspect], "the first probe's verdict at the next slot")
        XCTAssertEqual(a.status(of: "B"), .suspect)
        XCTAssertEqual(a.counters.suspicionsRaised, 1)
    }

    func testWithJitteredTicksEveryFailedProbeEndsInASuspicionWithinItsPeriod() {
        // Ticks every 10 ms plus up to 3 ms of jitter, as the live shell's timer loop gives them
        // (it calls tick once `nextDeadline` has passed): a silent member is suspected at the end
        // of the first probe of it, never a period or more later.
        let settings = SWIM.Settings()
        for seed in UInt64(1)...40 {
            var a = makeAWithSilentB(seed: seed)
            var jitter = SplitMix64(seed: seed)
            let firstSlot = a.nextDeadline!
            var t = 0.0
            var suspectedAt: Double?
            while suspectedAt == nil && t < 5 {
                t += 0.010 + jitter.next(in: 0, 0.003)
                guard let deadline = a.nextDeadline, t >= deadline else { continue }
                if changes(a.tick(now: t)).contains(where: { $0.id == "B" && $0.to == .suspect }) { suspectedAt = t }
            }
            let after = (suspectedAt ?? .infinity) - firstSlot
            XCTAssertLessThanOrEqual(after, settings.probePeriod + 0.013, "seed \(seed): B suspected \(after) s after the first probe's slot")
        }
    }

    func testTheGatewayIsProbedButNeverAskedToRelay() {
        // A, B, C, D shards and the gateway. For 20 s everyone answers at once, so every ping A
        // sends is a probe: the gateway gets some (it takes turns of the shared schedule, one per
        // pass, and A has about one in four). Then B falls silent: A's ping-reqs about B go to C
        // and D, never to the gateway, which relays nothing.
        let gateway = SWIM.Member(id: "gateway", address: "tcp://gateway", role: .gateway)
        var a = Instance(myself: Self.member("A"), members: ["B", "C", "D"].map(Self.member) + [gateway], seed: 9)
        var probed: [SWIM.MemberID] = []
        var relayers: Set<SWIM.MemberID> = []
        while let d = a.nextDeadline, d < 30 {
            for x in sends(a.tick(now: d)) {
                switch x.message {
                case .pingReq: relayers.insert(x.to)
                case .ping(let ping) where d < 20 || x.to != "B":
                    if d < 20 { probed.append(x.to) }
                    _ = a.receivedAck(from: x.to, probeID: ping.probeID, targetID: x.to, updates: [], digests: [], now: d)
                default: break
                }
            }
        }
        XCTAssertTrue(probed.contains("gateway"), "probed: \(probed)")
        // With a place in the ring like the shards', the gateway took one of every 4 probes of A.
        XCTAssertLessThan(probed.filter { $0 == "gateway" }.count * 6, probed.count, "probed: \(probed)")
        XCTAssertEqual(relayers, ["C", "D"])
    }

    func testSuspicionTimeoutScalesWithLogN() {
        let s = SWIM.Settings()
        XCTAssertEqual(s.suspicionTimeout(memberCount: 8), 1.0)
        XCTAssertEqual(s.suspicionTimeout(memberCount: 100), 2.0, accuracy: 1e-9)
        XCTAssertEqual(s.retransmitLimit(memberCount: 7), 9)  // ceil(3 * log2 8)
    }

    func testDeadMemberIsPingedPeriodicallyCarryingItsDeath() {
        var s = SWIM.Settings()
        s.deadMemberProbeInterval = 2
        s.confirmDeathsLocally = false  // take B's word for C's death
        var a = makeA(settings: s)
        _ = a.receivedPing(from: "B", probeID: 1, updates: [update("C", .dead, 0)], digests: [], now: 0)
        XCTAssertEqual(a.status(of: "C"), .dead)
        var toC: [Sent] = []
        var t = 0.0
        while t < 3, let d = a.nextDeadline {
            t = d
            let out = sends(a.tick(now: t))
            toC += out.filter { $0.to == "C" }
            for x in out { if case .ping(let p) = x.message { _ = a.receivedAck(from: x.to, probeID: p.probeID, targetID: x.to, updates: [], digests: [], now: t) } }
        }
        XCTAssertGreaterThanOrEqual(toC.count, 2, "a dead member is pinged every 2 periods")
        XCTAssertTrue(toC.allSatisfy { $0.message.updates.contains(self.update("C", .dead, 0)) })
        XCTAssertEqual(a.status(of: "C"), .dead, "pinging a dead member does not revive it")
    }

    // MARK: - Incarnations and refutation

    func testSuspicionAboutMyselfIsRefutedWithHigherIncarnation() {
        var a = makeA()
        let out = a.receivedPing(from: "B", probeID: 3, updates: [update("A", .suspect, 0)], digests: [], now: 1)
        XCTAssertEqual(a.incarnation, 1)
        XCTAssertTrue(out.contains(.refuted(incarnation: 1)))
        XCTAssertEqual(a.counters.refutations, 1)
        let ack = sends(out).first { $0.to == "B" }
        XCTAssertEqual(ack?.message.updates.first, update("A", .alive, 1))
        // Gossip-only pings spread the refutation right away.
        XCTAssertEqual(sends(out).filter { if case .ping = $0.message { true } else { false } }.count, 3)
        // A stale suspicion (older incarnation) is ignored.
        _ = a.receivedPing(from: "C", probeID: 4, updates: [update("A", .suspect, 0)], digests: [], now: 1.1)
        XCTAssertEqual(a.incarnation, 1)
        // Being declared dead is refuted too (e.g. after a partition): jump above it.
        let dead = a.receivedPing(from: "C", probeID: 5, updates: [update("A", .dead, 6)], digests: [], now: 1.2)
        XCTAssertEqual(a.incarnation, 7)
        XCTAssertTrue(dead.contains(.refuted(incarnation: 7)))
        // An alive record of a previous life with a higher incarnation is overtaken silently.
        let old = a.receivedPing(from: "C", probeID: 6, updates: [update("A", .alive, 9)], digests: [], now: 1.3)
        XCTAssertEqual(a.incarnation, 10)
        XCTAssertFalse(old.contains { if case .refuted = $0 { true } else { false } })
        XCTAssertEqual(a.counters.refutations, 2)
    }

    func testPrecedenceHigherIncarnationWinsStaleIgnoredDeadFinal() {
        var s = SWIM.Settings()
        s.confirmDeathsLocally = false  // plain SWIM: gossiped deaths are taken as they come
        var a = makeA(settings: s)
        func hear(_ u: SWIM.MemberUpdate, _ t: Double) -> [Directive] {
            a.receivedPing(from: "E", probeID: 1, updates: [u], digests: [], now: t)
        }
        XCTAssertEqual(changes(hear(update("B", .suspect, 0), 1)).map(\.to), [.suspect])
        XCTAssertTrue(changes(hear(update("B", .alive, 0), 1.1)).isEmpty, "same incarnation: suspect beats alive")
        XCTAssertEqual(a.status(of: "B"), .suspect)
        let refuted = changes(hear(update("B", .alive, 1), 1.2))
        XCTAssertEqual(refuted.first?.from, .suspect)
        XCTAssertEqual(refuted.first?.to, .alive)
        XCTAssertEqual(a.counters.suspicionsCleared, 1)
        XCTAssertTrue(changes(hear(update("B", .suspect, 0), 1.3)).isEmpty, "stale suspicion ignored")
        XCTAssertTrue(changes(hear(update("B", .dead, 0), 1.4)).isEmpty, "stale death ignored")
        XCTAssertEqual(a.member("B")?.incarnation, 1)
        XCTAssertEqual(changes(hear(update("B", .dead, 1), 1.5)).map(\.to), [.dead])
        XCTAssertTrue(changes(hear(update("B", .alive, 1), 1.6)).isEmpty, "dead is final for its incarnation")
        XCTAssertTrue(changes(hear(update("B", .suspect, 1), 1.7)).isEmpty)
        XCTAssertEqual(a.status(of: "B"), .dead)
        XCTAssertEqual(changes(hear(update("B", .alive, 2), 1.8)).map(\.to), [.alive], "rejoin with a higher incarnation")
        // A suspicion heard by gossip starts this member's own timer (and a buddy ping to the suspect).
        let heard = hear(update("C", .suspect, 0), 2)
        XCTAssertTrue(sends(heard).contains { $0.to == "C" && $0.message.updates.contains(self.update("C", .suspect, 0)) })
        var t = 2.0
        var dead = false
        while !dead, let d = a.nextDeadline, d <= 3.0 {
            t = d
            dead = changes(a.tick(now: t)).contains { $0.id == "C" && $0.to == .dead }
        }
        XCTAssertTrue(dead)
        XCTAssertEqual(t, 3.0, accuracy: 1e-9)
    }

    func testGossipedDeathIsOnlyASuspicionUntilConfirmedHere() {
        // Finding 4 of docs/chaos.md: the minority side of a healed partition gossips "dead" about
        // members that are alive. With local confirmation (the default) such a verdict is a
        // suspicion here: the member is pinged with it, refutes, and stays alive.
        var a = makeA()
        let heard = a.receivedPing(from: "C", probeID: 1, updates: [update("B", .dead, 0)], digests: [], now: 1)
        XCTAssertEqual(a.status(of: "B"), .suspect)
        XCTAssertEqual(changes(heard).map(\.to), [.suspect])
        XCTAssertEqual(a.counters.deathsHeardAsSuspicions, 1)
        let buddy = sends(heard).first { $0.to == "B" }
        XCTAssertTrue(buddy?.message.updates.contains(update("B", .suspect, 0)) ?? false, "B is told it is suspected")
        guard case .ping(let ping)? = buddy?.message else { return XCTFail("expected a ping to B") }
        // B refutes in its ack; the stale verdict, heard again, changes nothing.
        let refuted = a.receivedAck(from: "B", probeID: ping.probeID, targetID: "B", updates: [update("B", .alive, 1)], digests: [], now: 1.05)
        XCTAssertEqual(changes(refuted).map(\.to), [.alive])
        XCTAssertTrue(changes(a.receivedPing(from: "C", probeID: 2, updates: [update("B", .dead, 0)], digests: [], now: 1.1)).isEmpty)
        XCTAssertEqual(a.status(of: "B"), .alive)
        // A member that really died does not answer: this instance's own timer declares it dead,
        // one suspicion timeout after the rumour.
        _ = a.receivedPing(from: "C", probeID: 3, updates: [update("D", .dead, 0)], digests: [], now: 2)
        var t = 2.0
        var deadAt: Double?
        while deadAt == nil, let d = a.nextDeadline, d <= 4 {
            t = d
            let out = a.tick(now: t)
            if let ch = changes(out).first(where: { $0.id == "D" && $0.to == .dead }) {
                XCTAssertEqual(ch.reason, .suspicionExpired)
                deadAt = t
            }
            // Everyone else answers its probes.
            for x in sends(out) where x.to != "D" {
                if case .ping(let p) = x.message { _ = a.receivedAck(from: x.to, probeID: p.probeID, targetID: x.to, updates: [], digests: [], now: t) }
            }
        }
        XCTAssertEqual(deadAt ?? -1, 2 + a.settings.suspicionTimeout(memberCount: 5), accuracy: 1e-9)
        // A member announcing its own death (leave) is believed at once.
        let left = a.receivedPing(from: "E", probeID: 4, updates: [update("E", .dead, 0)], digests: [], now: 4.5)
        XCTAssertEqual(changes(left).map(\.to), [.dead])
        XCTAssertEqual(a.status(of: "E"), .dead)
    }

    func testMemberBelievedDeadComesBackThroughItsAckWithAHigherIncarnation() {
        // Finding 5 of docs/chaos.md, the shard's side: the gateway never probes, but it refutes in
        // the ack it returns to a ping carrying its death (a dead member is pinged now and then).
        var s = SWIM.Settings()
        s.deadMemberProbeInterval = 1
        let gateway = SWIM.Member(id: "gateway", address: "tcp://gateway", role: .gateway)
        var a = Instance(settings: s, myself: Self.member("A"), members: Self.peers + [gateway], seed: 3)
        let dead = SWIM.MemberUpdate(memberID: "gateway", address: "tcp://gateway", status: .dead, incarnation: 7, role: .gateway)
        _ = a.receivedPing(from: "gateway", probeID: 1, updates: [dead], digests: [], now: 0)  // as if it had left
        XCTAssertEqual(a.status(of: "gateway"), .dead)
        var t = 0.0
        var ping: (probeID: UInt64, carriesDeath: Bool)?
        while ping == nil, let d = a.nextDeadline, d < 5 {
            t = d
            for x in sends(a.tick(now: t)) where x.to == "gateway" {
                if case .ping(let p) = x.message { ping = (p.probeID, p.updates.contains(dead)) }
            }
        }
        let sent = try? XCTUnwrap(ping)
        XCTAssertTrue(sent?.carriesDeath ?? false, "the ping tells the gateway it is believed dead")
        let alive = SWIM.MemberUpdate(memberID: "gateway", address: "", status: .alive, incarnation: 8, role: .gateway)
        let back = a.receivedAck(from: "gateway", probeID: sent?.probeID ?? 0, targetID: "gateway", updates: [alive], digests: [], now: t + 0.01)
        XCTAssertEqual(changes(back).map(\.to), [.alive])
        XCTAssertEqual(a.member("gateway")?.incarnation, 8)
        XCTAssertEqual(a.member("gateway")?.address, "tcp://gateway", "an empty address keeps the known one")
    }

    func testUnknownSenderIsLearnedFromItsOwnRecord() {
        var a = makeA()
        let z = SWIM.MemberUpdate(memberID: "Z", address: "tcp://z:1", status: .alive, incarnation: 5, role: .gateway)
        let out = a.receivedPing(from: "Z", probeID: 9, updates: [z], digests: [], now: 0.2)
        let c = changes(out)
        XCTAssertEqual(c.count, 1)
        XCTAssertEqual(c[0].id, "Z")
        XCTAssertNil(c[0].from)
        XCTAssertEqual(a.member("Z")?.role, .gateway)
        XCTAssertEqual(a.member("Z")?.incarnation, 5)
        XCTAssertEqual(sends(out).first?.address, "tcp://z:1")
        // A ping from a member that is unknown and says nothing about itself cannot be answered.
        XCTAssertTrue(sends(a.receivedPing(from: "Y", probeID: 1, updates: [], digests: [], now: 0.3)).isEmpty)
    }

    func testAddMember() {
        var a = makeA()
        let out = a.addMember(SWIM.Member(id: "F", address: "tcp://F", role: .agent), now: 0)
        XCTAssertEqual(changes(out).map(\.reason), [.added])
        XCTAssertEqual(a.liveMemberCount, 6)
        XCTAssertTrue(a.addMember(Self.member("B"), now: 0).isEmpty, "already known")
    }

    // MARK: - Dissemination

    func testPiggybackLimitAndRetransmitCount() {
        var s = SWIM.Settings()
        s.maxPiggybackedUpdates = 3
        var a = Instance(settings: s, myself: Self.member("A"), members: [], seed: 3)
        // Learn 6 members by gossip: each is queued for dissemination.
        let learned = (0..<6).map { update("N\($0)", .alive, 1) }
        let limit = s.retransmitLimit(memberCount: 7)
        var counts: [SWIM.MemberID: Int] = [:]
        for i in 0..<100 {
            let out = sends(
                a.receivedPing(
                    from: "N0", probeID: UInt64(i + 1), updates: i == 0 ? learned : [], digests: [], now: 0.01 * Double(i)))
            let ups = out[0].message.updates
            XCTAssertLessThanOrEqual(ups.count, 3)
            XCTAssertEqual(ups.first?.memberID, "A", "own record first")
            for u in ups.dropFirst() { counts[u.memberID, default: 0] += 1 }
        }
        // Every learned member except the recipient itself was sent exactly `limit` times.
        for n in 1..<6 { XCTAssertEqual(counts[SWIM.MemberID("N\(n)")], limit, "N\(n)") }
        XCTAssertNil(counts["N0"], "the recipient is not told about itself while alive")
    }

    func testDigestsNewestVersionWinsAndArePiggybacked() {
        var a = makeA()
        func hear(_ d: SWIM.Digest<String>, _ t: Double) -> [Directive] {
            a.receivedPing(from: "B", probeID: 1, updates: [], digests: [d], now: t)
        }
        XCTAssertEqual(hear(.init(owner: "B", version: 2, payload: "b2"), 1).filter { if case .digestUpdated = $0 { true } else { false } }.count, 1)
        XCTAssertFalse(hear(.init(owner: "B", version: 1, payload: "b1"), 1.1).contains { if case .digestUpdated = $0 { true } else { false } })
        XCTAssertFalse(hear(.init(owner: "B", version: 2, payload: "other"), 1.2).contains { if case .digestUpdated = $0 { true } else { false } })
        XCTAssertEqual(a.digest(of: "B")?.payload, "b2")
        XCTAssertTrue(hear(.init(owner: "B", version: 3, payload: "b3"), 1.3).contains(.digestUpdated(.init(owner: "B", version: 3, payload: "b3"))))
        XCTAssertEqual(a.digest(of: "B")?.payload, "b3")

        // Own digest: versions increase; both digests ride on the next messages.
        _ = a.publishLocalDigest("a1", now: 1.4)
        _ = a.publishLocalDigest("a2", now: 1.5)
        XCTAssertEqual(a.digest(of: "A")?.version, 2)
        let out = sends(a.receivedPing(from: "C", probeID: 2, updates: [], digests: [], now: 1.6))
        let carried = out[0].message.digests
        XCTAssertTrue(carried.contains(.init(owner: "A", version: 2, payload: "a2")))
        XCTAssertTrue(carried.contains(.init(owner: "B", version: 3, payload: "b3")))

        // A digest of ours from a previous life with a higher version: the next version beats it.
        _ = hear(.init(owner: "A", version: 40, payload: "old life"), 1.7)
        XCTAssertEqual(a.digest(of: "A")?.version, 41)
        XCTAssertEqual(a.digest(of: "A")?.payload, "a2")
        _ = a.publishLocalDigest("a3", now: 1.8)
        XCTAssertEqual(a.digest(of: "A")?.version, 42)
        // Our own digest echoed back is not a reason to bump.
        _ = hear(.init(owner: "A", version: 42, payload: "a3"), 1.9)
        XCTAssertEqual(a.digest(of: "A")?.version, 42)

        // Once every digest has been sent its quota, messages carry none; hearing a stale version
        // of B's digest puts the newer one back in circulation.
        for i in 0..<40 { _ = a.receivedPing(from: "C", probeID: UInt64(10 + i), updates: [], digests: [], now: 2) }
        XCTAssertEqual(sends(a.receivedPing(from: "C", probeID: 99, updates: [], digests: [], now: 2)).first?.message.digests.count, 0)
        _ = hear(.init(owner: "B", version: 1, payload: "b1"), 2.1)
        let again = sends(a.receivedPing(from: "C", probeID: 100, updates: [], digests: [], now: 2.2))
        XCTAssertEqual(again.first?.message.digests, [.init(owner: "B", version: 3, payload: "b3")])
    }

    func testRestartedMemberDigestVersionsStartAboveItsIncarnation() {
        var a = makeA(incarnation: 1_000)
        _ = a.publishLocalDigest("x", now: 0)
        XCTAssertEqual(a.digest(of: "A")?.version, 1_001)
    }

    // MARK: - Leave, dispatch, determinism

    func testLeaveAnnouncesDeathThenIgnoresEverything() {
        var a = makeA()
        let out = sends(a.leave(now: 2))
        XCTAssertEqual(Set(out.map(\.to)), ["B", "C", "D", "E"])
        XCTAssertTrue(out.allSatisfy { $0.message.updates.first == self.update("A", .dead, 0) })
        XCTAssertNil(a.nextDeadline)
        XCTAssertTrue(a.tick(now: 3).isEmpty)
        XCTAssertTrue(a.receivedPing(from: "B", probeID: 1, updates: [update("A", .suspect, 0)], digests: [], now: 3).isEmpty)
        XCTAssertEqual(a.incarnation, 0, "a member that left does not refute")

        var b = Instance(myself: Self.member("B"), members: [Self.member("A")], seed: 2)
        let c = changes(b.receive(out.first { $0.to == "B" }!.message, from: "A", now: 2.01))
        XCTAssertEqual(c.first?.to, .dead)
    }

    func testHandleDispatchesLikeTheMethods() {
        var x = makeA(seed: 9)
        var y = makeA(seed: 9)
        let ping = SWIM.Ping<String>(probeID: 5, updates: [update("B", .suspect, 0)], digests: [.init(owner: "C", version: 1, payload: "c")])
        XCTAssertEqual(
            x.handle(.ping(from: "B", ping), now: 0.05),
            y.receivedPing(from: "B", probeID: 5, updates: ping.updates, digests: ping.digests, now: 0.05))
        XCTAssertEqual(x.handle(.tick, now: 1), y.tick(now: 1))
        XCTAssertEqual(x.handle(.publishDigest("p"), now: 1.1), y.publishLocalDigest("p", now: 1.1))
        XCTAssertEqual(x.handle(.leave, now: 2), y.leave(now: 2))
    }

    func testSameSeedSameRunDifferentSeedDifferentOrder() {
        var independent = SWIM.Settings()
        independent.sharedProbeSchedule = false
        func run(_ seed: UInt64) -> [Directive] {
            var a = makeA(seed: seed, settings: independent)
            var all: [Directive] = []
            var t = 0.0
            while t < 10, let d = a.nextDeadline {
                t = d
                all += a.tick(now: t)
            }
            return all
        }
        XCTAssertEqual(run(5), run(5))
        let targets: ([Directive]) -> [SWIM.MemberID] = { ds in self.sends(ds).map(\.to) }
        XCTAssertNotEqual(targets(run(5)), targets(run(6)))
    }

    func testRoundRobinProbesEveryMemberOncePerPass() {
        for shared in [true, false] {
            var s = SWIM.Settings()
            s.sharedProbeSchedule = shared
            var a = makeA(settings: s)
            var targets: [SWIM.MemberID] = []
            var t = 0.0
            while targets.count < 12, let d = a.nextDeadline {
                t = d
                let out = sends(a.tick(now: t))
                for s in out {
                    if case .ping(let p) = s.message {
                        targets.append(s.to)
                        _ = a.receivedAck(from: s.to, probeID: p.probeID, targetID: s.to, updates: [], digests: [], now: t)
                    }
                }
            }
            XCTAssertEqual(targets.count, 12)
            // Each pass (4 periods; for the shared schedule aligned to the clock, which starts at 0
            // here) probes each of the 4 other members once.
            for w in stride(from: 0, to: 12, by: 4) {
                XCTAssertEqual(Set(targets[w..<(w + 4)]).count, 4, "shared \(shared): pass \(w / 4)")
            }
        }
    }

    func testSharedScheduleProbesEveryMemberExactlyOncePerPeriod() {
        let all = (["A"] + ["B", "C", "D", "E", "F"]).map(Self.member)
        var instances = all.enumerated().map { i, m in
            Instance(myself: m, members: all, seed: UInt64(i + 1))
        }
        // Period k: every instance probes once (at its own phase); the targets are a permutation.
        for k in 0..<10 {
            var targets: [SWIM.MemberID: SWIM.MemberID] = [:]
            for i in instances.indices {
                let t = instances[i].nextDeadline!
                XCTAssertEqual(Int((t / 0.5).rounded(.down)), k)
                for s in sends(instances[i].tick(now: t)) {
                    guard case .ping(let p) = s.message else { continue }
                    targets[instances[i].myself.id] = s.to
                    _ = instances[i].receivedAck(from: s.to, probeID: p.probeID, targetID: s.to, updates: [], digests: [], now: t)
                }
                // Drain the rest of the period (nothing happens: the probe was acked).
                while let d = instances[i].nextDeadline, d < Double(k + 1) * 0.5 { XCTAssertTrue(instances[i].tick(now: d).isEmpty) }
            }
            XCTAssertEqual(targets.count, 6, "period \(k)")
            XCTAssertEqual(Set(targets.values).count, 6, "period \(k): each member probed exactly once")
            XCTAssertTrue(targets.allSatisfy { $0.key != $0.value })
        }
    }

    func testSplitMix64IsDeterministicAndUniformEnough() {
        var r = SplitMix64(seed: 0)
        XCTAssertEqual(r.next(), 0xE220_A839_7B1D_CDAF)  // reference value of SplitMix64 for seed 0
        var buckets = [Int](repeating: 0, count: 10)
        for _ in 0..<10_000 { buckets[r.next(below: 10)] += 1 }
        XCTAssertTrue(buckets.allSatisfy { $0 > 900 && $0 < 1100 })
    }
}
