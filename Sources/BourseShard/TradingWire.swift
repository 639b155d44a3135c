import BourseTrading
import BourseWire

/// Trading messages and asks between ``TradingShard``'s Swift types and the wire's protobuf
/// messages. Participants are rack indices (cluster config order); job ids travel as the
/// gateway's ids ("j-000042") and are numbered by ``TradingWire/number(of:)``.
enum TradingWire {
    /// The planner number of a gateway job id ("j-000042" -> 42); nil for ids of another shape.
    static func number(of jobID: String) -> Int? {
        guard jobID.hasPrefix("j-"), let n = Int(jobID.dropFirst(2)), n >= 0 else { return nil }
        return n
    }

    static func jobID(_ number: Int) -> String {
        let digits = String(number)
        return "j-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    static func leaseID(_ lease: LeaseID) -> String { lease.description }

    /// "L<owner>.<serial>" -> LeaseID.
    static func lease(_ text: String) -> LeaseID? {
        guard text.hasPrefix("L") else { return nil }
        let parts = text.dropFirst().split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let owner = Int(parts[0]), owner >= 0, let serial = UInt64(parts[1]) else { return nil }
        return LeaseID(owner: owner, serial: serial)
    }

    static func body(_ message: TradingMessage, buyerShard: String) -> Envelope.Body {
        switch message {
        case .offer(let o):
            return .tradeOffer(BourseWire.TradeOffer(
                offerID: o.offerID, buyerShard: buyerShard, jobID: jobID(o.job), gpus: UInt32(o.units), bid: o.bid,
                round: UInt64(max(0, o.round)), buyer: UInt32(o.buyer), owner: UInt32(o.owner), group: UInt32(o.group),
                renewingLease: o.renewing.map(leaseID) ?? ""))
        case .accept(let a):
            return .tradeAccept(BourseWire.TradeAccept(
                offerID: a.offerID, leaseID: leaseID(a.lease), expiresAt: a.expiresAt, price: a.price, owner: UInt32(a.owner),
                buyer: UInt32(a.buyer), jobID: jobID(a.job), group: UInt32(a.group), units: UInt32(a.units)))
        case .reject(let r):
            return .tradeReject(BourseWire.TradeReject(
                offerID: r.offerID, ask: r.ask, reason: r.reason.rawValue, owner: UInt32(r.owner), buyer: UInt32(r.buyer),
                jobID: jobID(r.job), group: UInt32(r.group)))
        case .release(let r):
            return .leaseRelease(BourseWire.LeaseRelease(
                leaseID: leaseID(r.lease), reason: "released", buyer: UInt32(r.buyer), jobID: jobID(r.job)))
        case .commit(let c):
            return .leaseCommit(BourseWire.LeaseCommit(
                leaseID: leaseID(c.lease), buyer: UInt32(c.buyer), jobID: jobID(c.job), round: UInt64(max(0, c.round)),
                dealGpus: UInt32(clamping: c.dealUnits), silent: c.silent, rehome: c.rehome))
        }
    }

    /// The trading message a frame's body carries, or why it is not one the market can take
    /// (participants outside `0..<participants`, a job or lease id of the wrong shape, ...).
    static func message(_ body: Envelope.Body, participants: Int) -> Result<TradingMessage, ShardError> {
        func participant(_ value: UInt32, _ field: String) throws(ShardError) -> Int {
            guard Int(value) < participants else { throw ShardError("\(field) \(value) is not a rack index (0..<\(participants))") }
            return Int(value)
        }
        func job(_ id: String, _ field: String) throws(ShardError) -> Int {
            guard let n = number(of: id) else { throw ShardError("\(field) '\(id)' is not a gateway job id") }
            return n
        }
        func leaseRef(_ text: String, _ field: String) throws(ShardError) -> LeaseID {
            guard let lease = lease(text), lease.owner < participants else { throw ShardError("\(field) '\(text)' is not a lease id") }
            return lease
        }
        do throws(ShardError) {
            switch body {
            case .tradeOffer(let o):
                return .success(.offer(BourseTrading.TradeOffer(
                    offerID: o.offerID, buyer: try participant(o.buyer, "buyer"), owner: try participant(o.owner, "owner"),
                    job: try job(o.jobID, "job_id"), group: Int(o.group), units: Int(o.gpus), bid: o.bid,
                    round: Int(clamping: o.round), renewing: o.renewingLease.isEmpty ? nil : try leaseRef(o.renewingLease, "renewing_lease"))))
            case .tradeAccept(let a):
                return .success(.accept(BourseTrading.TradeAccept(
                    offerID: a.offerID, owner: try participant(a.owner, "owner"), buyer: try participant(a.buyer, "buyer"),
                    job: try job(a.jobID, "job_id"), lease: try leaseRef(a.leaseID, "lease_id"), group: Int(a.group),
                    units: Int(a.units), expiresAt: a.expiresAt, price: a.price)))
            case .tradeReject(let r):
                guard let reason = RejectReason(rawValue: r.reason) else { throw ShardError("reason '\(r.reason)' is unknown") }
                return .success(.reject(BourseTrading.TradeReject(
                    offerID: r.offerID, owner: try participant(r.owner, "owner"), buyer: try participant(r.buyer, "buyer"),
                    job: try job(r.jobID, "job_id"), group: Int(r.group), ask: r.ask, reason: reason)))
            case .leaseRelease(let r):
                return .success(.release(BourseTrading.LeaseRelease(
                    lease: try leaseRef(r.leaseID, "lease_id"), buyer: try participant(r.buyer, "buyer"), job: try job(r.jobID, "job_id"))))
            case .leaseCommit(let c):
                return .success(.commit(BourseTrading.LeaseCommit(
                    lease: try leaseRef(c.leaseID, "lease_id"), buyer: try participant(c.buyer, "buyer"),
                    job: try job(c.jobID, "job_id"), round: Int(clamping: c.round), dealUnits: Int(c.dealGpus), silent: c.silent, rehome: c.rehome)))
            default:
                throw ShardError("a \(body.kindName) is not a trading message")
            }
        } catch {
            return .failure(error)
        }
    }

    static func groupAsks(_ asks: [Int: MarketAsk]) -> [GroupAsk] {
        asks.sorted { $0.key < $1.key }.map { group, ask in
            let units = ask.costs.keys.sorted()
            return GroupAsk(group: UInt32(group), price: ask.price, units: units.map { UInt32($0) }, costs: units.map { ask.costs[$0]! })
        }
    }

    /// Asks from a digest; entries with mismatched arrays or groups outside `0..<groups` are skipped.
    static func marketAsks(_ asks: [GroupAsk], groups: Int) -> [Int: MarketAsk] {
        var out: [Int: MarketAsk] = [:]
        for a in asks where Int(a.group) < groups && a.units.count == a.costs.count && a.price.isFinite {
            out[Int(a.group)] = MarketAsk(
                price: a.price, costs: Dictionary(zip(a.units.map { Int($0) }, a.costs), uniquingKeysWith: { first, _ in first }))
        }
        return out
    }
}
