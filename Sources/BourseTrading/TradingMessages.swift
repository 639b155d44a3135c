import BoursePolicy

/// A lease: GPUs of one group of the owner's racks reserved for one job of another shard (or of
/// the owner itself, for the owner's share of a job spread over racks). The owner names it.
public struct LeaseID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var owner: Int
    public var serial: UInt64

    public init(owner: Int, serial: UInt64) {
        self.owner = owner
        self.serial = serial
    }

    public static func < (a: LeaseID, b: LeaseID) -> Bool { (a.owner, a.serial) < (b.owner, b.serial) }
    public var description: String { "L\(owner).\(serial)" }
}

/// A bid for `units` GPUs of the owner's group `group` for the coming round (a new lease), or to
/// keep a lease the buyer holds (`renewing`).
public struct TradeOffer: Sendable, Hashable {
    /// Unique per buyer (the buyer's counter); with `buyer`, the key the owner deduplicates on.
    public var offerID: UInt64
    public var buyer: Int
    public var owner: Int
    public var job: Int
    /// The owner's group index (`MarketLayout.groups[...].local`).
    public var group: Int
    public var units: Int
    /// What the buyer's job gains from these GPUs this round (its share of the deal's value).
    public var bid: Double
    public var round: Int
    public var renewing: LeaseID?

    public init(offerID: UInt64, buyer: Int, owner: Int, job: Int, group: Int, units: Int, bid: Double, round: Int, renewing: LeaseID?) {
        self.offerID = offerID
        self.buyer = buyer
        self.owner = owner
        self.job = job
        self.group = group
        self.units = units
        self.bid = bid
        self.round = round
        self.renewing = renewing
    }
}

public struct TradeAccept: Sendable, Hashable {
    public var offerID: UInt64
    public var owner: Int
    public var buyer: Int
    public var job: Int
    public var lease: LeaseID
    public var group: Int
    public var units: Int
    /// Cluster time at which the lease ends unless renewed.
    public var expiresAt: Double
    /// The owner's price of the group when it accepted (what the GPUs were worth to it).
    public var price: Double

    public init(offerID: UInt64, owner: Int, buyer: Int, job: Int, lease: LeaseID, group: Int, units: Int, expiresAt: Double, price: Double) {
        self.offerID = offerID
        self.owner = owner
        self.buyer = buyer
        self.job = job
        self.lease = lease
        self.group = group
        self.units = units
        self.expiresAt = expiresAt
        self.price = price
    }
}

public enum RejectReason: String, Sendable, Hashable {
    /// The bid did not beat the owner's price of the group.
    case outbid
    /// The offer was made for an earlier round.
    case stale
    /// A renewal of a lease the owner no longer holds.
    case unknownLease
    /// Offer malformed (unknown group, no GPUs, not a positive bid).
    case invalid
}

public struct TradeReject: Sendable, Hashable {
    public var offerID: UInt64
    public var owner: Int
    public var buyer: Int
    public var job: Int
    public var group: Int
    /// The owner's current ask for the group: the next bid must beat it.
    public var ask: Double
    public var reason: RejectReason

    public init(offerID: UInt64, owner: Int, buyer: Int, job: Int, group: Int, ask: Double, reason: RejectReason) {
        self.offerID = offerID
        self.owner = owner
        self.buyer = buyer
        self.job = job
        self.group = group
        self.ask = ask
        self.reason = reason
    }
}

/// The buyer gives a lease back (deal failed, job finished, accept arrived too late).
public struct LeaseRelease: Sendable, Hashable {
    public var lease: LeaseID
    public var buyer: Int
    public var job: Int

    public init(lease: LeaseID, buyer: Int, job: Int) {
        self.lease = lease
        self.buyer = buyer
        self.job = job
    }
}

/// The buyer will use a lease this round (every part of its deal was granted).
public struct LeaseCommit: Sendable, Hashable {
    public var lease: LeaseID
    public var buyer: Int
    public var job: Int
    public var round: Int
    /// The GPUs of the whole deal (more than the lease's when the job is spread over racks; 0 =
    /// the lease's).
    public var dealUnits: Int
    /// Another owner of the deal reports the job (a live shard runs a silent part's workers and
    /// reports nothing about it): the buyer's own part reports, else the lowest-numbered owner's.
    public var silent: Bool
    /// The buyer hands the job over (``TradingParameters/handOverLeasedJobs``): the job runs on
    /// this one lease and no other GPUs, so the owner takes it as its own home job.
    public var rehome: Bool

    public init(lease: LeaseID, buyer: Int, job: Int, round: Int, dealUnits: Int = 0, silent: Bool = false, rehome: Bool = false) {
        self.lease = lease
        self.buyer = buyer
        self.job = job
        self.round = round
        self.dealUnits = dealUnits
        self.silent = silent
        self.rehome = rehome
    }
}

/// Everything shards say to each other about trades.
public enum TradingMessage: Sendable, Hashable {
    case offer(TradeOffer)
    case accept(TradeAccept)
    case reject(TradeReject)
    case release(LeaseRelease)
    case commit(LeaseCommit)

    public var sender: Int {
        switch self {
        case .offer(let m): m.buyer
        case .accept(let m): m.owner
        case .reject(let m): m.owner
        case .release(let m): m.buyer
        case .commit(let m): m.buyer
        }
    }

    public var recipient: Int {
        switch self {
        case .offer(let m): m.owner
        case .accept(let m): m.buyer
        case .reject(let m): m.buyer
        case .release(let m): m.lease.owner
        case .commit(let m): m.lease.owner
        }
    }
}

/// One GPU group of the whole market: a group (one type, one server size) of one shard's racks.
public struct MarketGroup: Sendable, Hashable {
    public var owner: Int
    /// Index of the group in the owner's planner (`BourseRoundPlanner.groups`).
    public var local: Int
    public var typeIndex: Int
    public var serverSize: Int
    public var capacity: Int
}

/// Every shard's groups, known to every shard (they come from the shared cluster config).
public struct MarketLayout: Sendable, Hashable {
    public var groups: [MarketGroup]
    /// ids[owner][local] = index into `groups`.
    public var ids: [[Int]]

    public init(shardGroups: [[BourseRoundPlanner.Group]]) {
        var groups: [MarketGroup] = []
        var ids: [[Int]] = []
        for (owner, list) in shardGroups.enumerated() {
            var mine: [Int] = []
            for (local, g) in list.enumerated() {
                mine.append(groups.count)
                groups.append(
                    MarketGroup(owner: owner, local: local, typeIndex: g.typeIndex, serverSize: g.serverSize, capacity: g.capacity))
            }
            ids.append(mine)
        }
        self.groups = groups
        self.ids = ids
    }

    public func id(owner: Int, local: Int) -> Int? {
        guard ids.indices.contains(owner), ids[owner].indices.contains(local) else { return nil }
        return ids[owner][local]
    }
}
