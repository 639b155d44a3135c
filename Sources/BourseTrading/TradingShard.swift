import BoursePolicy

/// Knobs of the trading protocol.
public struct TradingParameters: Sendable, Hashable {
    /// Off: every shard schedules its own racks only (leases held are still honoured until they end).
    public var enabled = true
    /// A lease lasts this long (cluster seconds) unless renewed; a buyer renews every round it
    /// keeps the GPUs, so a dead buyer's leases end after at most this long.
    public var leaseSeconds: Double = 720
    /// A deal whose replies have not all arrived after this many phases fails (the offer or its
    /// answer was lost); its granted parts are released.
    public var offerTimeoutPhases = 3
    /// A job tries at most this many deals per round (deals on idle GPUs aside, see next).
    public var dealsPerJobPerRound = 12
    /// Deals on GPUs idle at the known asks (they cost nothing there) do not count toward
    /// `dealsPerJobPerRound`, and a job that has used its deals still tries them. Each is tried
    /// once a round (a refused deal is tried again only when it got cheaper), so the exchange
    /// still ends. (Without it, GPUs freed late in a round stayed idle while jobs that had used
    /// their deals on contested GPUs sat at home or idle: dev-300-multi with 8 shards, round
    /// 430, 4 V100s idle and two jobs without GPUs; docs/trading.md, "The protocol".)
    public var idleDealsBeyondLimit = true
    /// A deal is offered only when its surplus beats the job's local surplus by more than this
    /// (value units: a round's fraction of a job's work).
    public var minimumGain = 1e-6
    /// Deals may take GPUs of several shards at once (one job's workers on several owners'
    /// racks; live shards run each owner's part on its agent, see docs/trading.md).
    public var spreadDeals = true
    /// A buyer hands over a job that runs on one other shard's lease and no other GPUs
    /// (``LeaseCommit/rehome``): from the next round on it is that owner's home job, with no
    /// renewal to win. Live shards do it through the gateway (the owner reports the job as its
    /// own); the simulator moves homes itself and leaves this off.
    public var handOverLeasedJobs = false
    /// A renewal of a deal with parts on several owners bids over the job's next best deal (as a
    /// one-owner lease always does), not over home alone. The simulator does (dev-300-multi with
    /// 8 shards: 1.148 -> 1.083 of the central JCT); live shards do not: on the split cluster
    /// it cost 6-8 % avg JCT and a third more restarts (live re-splits restart every part, and
    /// the alternative priced at gossiped asks often fails; docs/trading.md, "Bids").
    public var spreadRenewalsOverNextBest = true
    /// A part of a deal with several parts that its owner takes back (a higher bid came in) is
    /// offered again at the same bid while the deal's other parts hold, at most this many times
    /// per deal and round. The higher bid often belongs to a deal that fails at another owner a
    /// phase later, and the GPUs come back. (Without it, the failing deal also broke the deal it
    /// bumped, and the GPUs both wanted could end the round idle. dev-300-multi with 8 shards,
    /// 4 seeds: avg JCT 1.084 -> 1.049 of the central run; docs/trading.md, "The protocol".)
    public var reoffersPerDeal = 2

    public init() {}
}

/// What a shard asks for GPUs of one of its groups: the auction price per GPU, and per number
/// of GPUs the value its own matching loses when that many are taken away (the marginal value of
/// its cheapest held or idle GPUs; 0 while idle GPUs cover them).
public struct MarketAsk: Sendable, Hashable {
    public var price: Double
    /// units -> value lost (computed for powers of two, the GPUs its matching leaves idle and
    /// one more, and the group's size).
    public var costs: [Int: Double]

    public init(price: Double, costs: [Int: Double] = [:]) {
        self.price = price
        self.costs = costs
    }

    /// The cost of `units` GPUs: their `loss`, and never below the auction price.
    public func cost(_ units: Int) -> Double {
        max(price * Double(units), loss(units))
    }

    /// The value lost when `units` GPUs are taken: that of the smallest computed count that
    /// covers them (beyond the largest, in proportion to it).
    public func loss(_ units: Int) -> Double {
        if let covering = costs.keys.filter({ $0 >= units }).min() { return costs[covering]! }
        return costs.keys.max().map { costs[$0]! * Double(units) / Double($0) } ?? 0
    }
}

/// Counters of one shard's trading since it started.
public struct TradingCounters: Sendable, Hashable {
    public var offersSent = 0
    public var offersReceived = 0
    public var duplicateOffers = 0
    public var accepts = 0
    public var rejects = 0
    public var releasesSent = 0
    public var commitsSent = 0
    public var leasesGranted = 0
    public var leasesRenewed = 0
    public var leasesEnded = 0
    public var leasesExpired = 0
    public var dealsConfirmed = 0
    public var dealsFailed = 0
    /// Messages to other shards (self-addressed ones do not cross the network).
    public var messagesSent = 0

    public init() {}

    public static func + (a: TradingCounters, b: TradingCounters) -> TradingCounters {
        var s = a
        s.offersSent += b.offersSent
        s.offersReceived += b.offersReceived
        s.duplicateOffers += b.duplicateOffers
        s.accepts += b.accepts
        s.rejects += b.rejects
        s.releasesSent += b.releasesSent
        s.commitsSent += b.commitsSent
        s.leasesGranted += b.leasesGranted
        s.leasesRenewed += b.leasesRenewed
        s.leasesEnded += b.leasesEnded
        s.leasesExpired += b.leasesExpired
        s.dealsConfirmed += b.dealsConfirmed
        s.dealsFailed += b.dealsFailed
        s.messagesSent += b.messagesSent
        return s
    }
}

/// What an owner decided for the round: its GPUs' assignments (its home jobs and the leased
/// parts of other shards' jobs), and its prices, published as asks.
public struct ShardRoundOutcome: Sendable, Hashable {
    public var assignments: [RoundAssignment]
    /// Ask per local group after the final matching (published for the next round).
    public var asks: [MarketAsk]
}

/// One shard's side of opportunistic resource trading, as a pure state machine: events in
/// (`beginRound`, `receive`, `phase`, `closeRound`, `placeRound`), messages out. It drives the
/// shard's own matching (`BourseRoundPlanner` over its racks, valuing jobs against the whole
/// cluster) and the market around it (docs/trading.md):
///
/// - As owner it is the only writer of its GPUs. Every phase it re-solves its matching with its
///   home jobs, the leases it holds tentatively this round and the bids just received (each bid
///   one more demand); a bid the matching picks is accepted with a lease, a held lease it no
///   longer picks is taken back, the others are rejected with the group's ask. Its asks
///   (`MarketAsk`: the value its matching loses per 1, 2, 4, ... GPUs taken) are gossiped.
/// - Each home job also has an outside option in that matching: its best deal elsewhere at the
///   known asks, worth its surplus. When the matching prefers it, the job bids for the deal,
///   part by part (one group, or GPUs of one type spread over several shards' groups), the
///   bid being the deal's value minus the job's contribution at home. All parts granted: the
///   deal holds and is committed at the round's close; a part rejected or unanswered in time:
///   the granted parts are released. A deal is retried only when it got cheaper (or its
///   messages were lost), at most `dealsPerJobPerRound` deals per job and round, so the
///   exchange ends.
/// - Leases end when released, taken back, not renewed or not committed at the round's close,
///   when the job finishes, or at `expiresAt` when the buyer stops renewing (a dead buyer).
public struct TradingShard: Sendable {
    public struct Lease: Sendable, Hashable {
        public var id: LeaseID
        public var buyer: Int
        public var job: Int
        public var group: Int
        public var units: Int
        public var expiresAt: Double
        /// The round it was last granted or renewed in, and whether the buyer committed to it then.
        public var round: Int
        public var committed: Bool
        /// A renewal is being decided (its GPUs are back in the matching meanwhile).
        var renewing = false
        /// The bid that holds it this round (it competes with later bids until the round closes).
        public var bid = 0.0
        /// The offer that holds it this round.
        public var offerID: UInt64 = 0
        /// From the buyer's commit: the GPUs of its whole deal, and whether another owner of the
        /// deal reports the job (``LeaseCommit``).
        public var dealUnits = 0
        public var silent = false
        /// The buyer handed the job over with its commit (``LeaseCommit/rehome``).
        public var rehome = false
    }

    /// One part of a deal: GPUs of one market group.
    public struct Part: Sendable, Hashable {
        public enum Status: Sendable, Hashable { case pending, granted, rejected }
        public var marketGroup: Int
        public var owner: Int
        public var group: Int
        public var units: Int
        public var offerID: UInt64
        public var lease: LeaseID?
        public var status: Status = .pending
        /// The bid offered for this part (a part taken back is offered again at it).
        public var bid = 0.0
    }

    /// A home job's purchase: all parts or none.
    public struct Deal: Sendable, Hashable {
        public var job: Int
        public var parts: [Part]
        public var value: Double
        public var openedPhase: Int
        public var confirmed = false
        /// Parts taken back and offered again this round (``TradingParameters/reoffersPerDeal``).
        var reoffers = 0
        /// The other owners' asks for the deal's groups when it was offered: a granted part's
        /// lease counts in its owner's ask at this deal's bid, so when the deal fails the buyer
        /// goes back to these until fresh gossip comes.
        var asksAtOffer: [Int: MarketAsk] = [:]
    }

    public let id: Int
    public let layout: MarketLayout
    public let parameters: TradingParameters
    public private(set) var planner: BourseRoundPlanner
    public private(set) var counters = TradingCounters()
    /// Leases this shard granted, by id.
    public private(set) var leases: [LeaseID: Lease] = [:]
    /// This shard's home jobs' deals (open or confirmed), by job.
    public private(set) var deals: [Int: Deal] = [:]
    /// Asks known per market group (own groups: computed from the local matching).
    public private(set) var asks: [Int: MarketAsk] = [:]
    public private(set) var round = 0
    public private(set) var phaseIndex = 0

    private var now = 0.0
    private var population = 1
    private var homeJobs: [Int: PolicyJob] = [:]
    private var inbox: [TradingMessage] = []
    private var localPrices: [Double]
    /// Home jobs handed over at the latest close (``TradingParameters/handOverLeasedJobs``): job ->
    /// the owner that schedules it from the next round on. Its deal is released at the next
    /// `beginRound`, when the job is no longer a home job here.
    public private(set) var handedOver: [Int: Int] = [:]
    /// Leases whose jobs this owner took over, with the round (a duplicate of their commit is not
    /// refused).
    private var takenOver: [LeaseID: Int] = [:]
    /// Refusals of hand-overs found while placing, sent with the next messages out.
    private var answersDue: [TradingMessage] = []
    /// Home job -> its option in the latest local matching (local group, units, value).
    private var tentative: [Int: (group: Int, units: Int, value: Double)] = [:]
    /// Home jobs the latest local matching sent to the market, with the deal to bid for.
    private var outside: [Int: (deal: (parts: [(group: Int, units: Int)], value: Double, surplus: Double), gain: Double)] = [:]
    /// Home jobs that stay out of the market for the rest of the round.
    private var stayHome: Set<Int> = []
    /// Home jobs let out of `stayHome` this round because the matching left them without GPUs.
    private var displacedFromHome: Set<Int> = []
    /// What this shard's GPUs cost a home job's deal: the asks without that job (what the other
    /// home jobs and guests lose), for the jobs the local matching places at home; the others'
    /// deals use `ownAsksBase` (the matching without them is the same). Refreshed every phase in
    /// which the local problem changed.
    private var ownAsksWithout: [Int: [Int: MarketAsk]] = [:]
    private var ownAsksBase: [Int: MarketAsk] = [:]
    /// The local problem (and its rows' jobs) `ownAsksWithout` and `ownAsksBase` were computed from.
    private var ownAsksProblem: (problem: MatchingProblem, rows: [Int])?
    /// A deal failed since the last matching: its job is back home and must be matched (and may
    /// bid again) in the next phase, even when no message is in flight.
    private var jobsFreed = false
    /// Gossip brought prices that moved since the last matching: match (and maybe bid) again.
    private var asksMoved = false
    /// Replies given, by (buyer, offer id), for duplicates; with the round they were given in.
    private var replies: [OfferKey: (round: Int, reply: TradingMessage)] = [:]
    /// Deals tried this round: (job, parts signature) -> what the parts cost at the known asks
    /// then; the same deal is tried again only once it got cheaper.
    private var tried: [DealKey: Double] = [:]
    private var triedCount: [Int: Int] = [:]
    private var nextOfferID: UInt64 = 0
    private var nextLeaseSerial: UInt64 = 0

    /// The market's groups by class (GPU type, server size), for spread deals.
    private let classes: [(ClassKey, [Int])]

    struct OfferKey: Hashable { var buyer: Int; var offer: UInt64 }
    /// A deal as tried: the job and how many GPUs of each market group.
    struct DealKey: Hashable {
        var job: Int
        var parts: [Int: Int]

        init(job: Int, parts: [(group: Int, units: Int)]) {
            self.job = job
            self.parts = Dictionary(uniqueKeysWithValues: parts.map { ($0.group, $0.units) })
        }
    }

    public init(id: Int, layout: MarketLayout, planner: BourseRoundPlanner, parameters: TradingParameters = TradingParameters()) {
        self.id = id
        self.layout = layout
        self.planner = planner
        self.parameters = parameters
        self.localPrices = Array(repeating: 0, count: planner.groups.count)
        self.classes = Self.classes(of: layout)
    }

    /// This shard's current prices as asks by market group (what its gossip digest carries).
    public var ownAsks: [Int: MarketAsk] {
        Dictionary(uniqueKeysWithValues: layout.ids[id].compactMap { g in asks[g].map { (g, $0) } })
    }

    /// Asks gossiped by other shards (newest wins; own groups are ignored). Prices that moved
    /// during a round's trading make the shard match again at the next phase, and its jobs that
    /// had chosen to stay home look at the market again. (The round used to end as soon as no
    /// message was in flight: a job that stayed home at the round's first, stale, asks, e.g. for
    /// GPUs a job that just finished held, did not see them free until the next round.)
    public mutating func learnAsks(_ gossip: [Int: MarketAsk]) {
        for (g, ask) in gossip where layout.groups.indices.contains(g) && layout.groups[g].owner != id && asks[g] != ask {
            if parameters.enabled, phaseIndex > 0, asks[g].map({ Self.moved($0, ask) }) ?? true {
                stayHome = []
                asksMoved = true
            }
            asks[g] = ask
        }
    }

    /// Whether an ask moved enough to be worth another look (not float noise).
    static func moved(_ a: MarketAsk, _ b: MarketAsk) -> Bool {
        for units in Set(a.costs.keys).union(b.costs.keys) where abs(a.cost(units) - b.cost(units)) > 1e-6 { return true }
        return abs(a.price - b.price) > 1e-6
    }

    /// Nothing to do until new messages arrive: the inbox is empty, no deal waits for answers, no
    /// job is back from a failed deal and no gossiped price moved since the last matching.
    public var isQuiet: Bool {
        inbox.isEmpty && !jobsFreed && !asksMoved
            && deals.values.allSatisfy { deal in deal.confirmed || !deal.parts.contains { $0.status == .pending } }
    }

    /// The jobs of this shard that run on leases this round (after `closeRound`), with their parts.
    public var confirmedDeals: [Int: Deal] { deals.filter { $0.value.confirmed } }

    // MARK: - Events

    /// A new scheduling round at `now`: `homeJobs` are this shard's active home jobs, `activeJobs`
    /// the cluster-wide count (for fair shares), `gossip` the asks other shards published.
    /// Returns renewals and releases.
    public mutating func beginRound(
        round: Int, now: Double, homeJobs jobs: [PolicyJob], activeJobs: Int, gossip: [Int: MarketAsk]
    ) -> [TradingMessage] {
        self.round = round
        self.now = now
        phaseIndex = 0
        population = max(activeJobs, 1)
        tried = [:]
        jobsFreed = false
        asksMoved = false
        triedCount = [:]
        tentative = [:]
        outside = [:]
        stayHome = []
        displacedFromHome = []
        learnAsks(gossip)
        let ids = Set(jobs.map(\.id))
        for old in planner.activeJobs where !ids.contains(old) { planner.removeJob(old) }
        let known = Set(planner.activeJobs)
        for job in jobs where !known.contains(job.id) { planner.addJob(job.id) }
        homeJobs = Dictionary(uniqueKeysWithValues: jobs.map { ($0.id, $0) })
        replies = replies.filter { $0.value.round >= round - 1 }

        // Owner: leases nobody renewed in time end.
        for lid in leases.keys where leases[lid]!.expiresAt <= now {
            leases[lid] = nil
            counters.leasesExpired += 1
            counters.leasesEnded += 1
        }
        takenOver = takenOver.filter { $0.value >= round - 2 }
        var out = takeAnswersDue()
        // Buyer: give back the leases of jobs that are gone; renew the others (or give them back
        // when trading is off).
        for (job, deal) in deals.sorted(by: { $0.key < $1.key }) {
            guard deal.confirmed, let home = homeJobs[job], parameters.enabled else {
                for part in deal.parts { if let lease = part.lease { out += release(lease, job: job) } }
                deals[job] = nil
                continue
            }
            guard let (profile, aging) = planner.valuation(of: home, activeJobs: population),
                let value = stayValue(of: home, deal: deal, profile: profile, aging: aging)
            else {
                for part in deal.parts { if let lease = part.lease { out += release(lease, job: job) } }
                deals[job] = nil
                continue
            }
            // The job's next best: home, or another deal at the known asks (restart included).
            // The renewal bids what staying gains over it, as a home job's outside option counts
            // in its owner's matching: bidding over home alone, a job that could move to GPUs
            // nearly as good kept its lease against jobs that had no such alternative. (Live
            // shards renew spread deals over home alone: `spreadRenewalsOverNextBest`.)
            let alternative = bestDeal(
                for: home, profile: profile, aging: aging, excluding: Set(deal.parts.map(\.marketGroup)))
            let overNextBest = parameters.spreadRenewalsOverNextBest || Set(deal.parts.map(\.owner)).count == 1
            let gain = value - max(homeContribution(of: home), overNextBest ? (alternative?.surplus ?? 0) : 0)
            let better = alternative.map { $0.surplus > value + parameters.minimumGain } ?? false
            guard gain > parameters.minimumGain, !better else {
                // Home, or another deal, is at least as good now: give the leases back.
                for part in deal.parts { if let lease = part.lease { out += release(lease, job: job) } }
                deals[job] = nil
                continue
            }
            var renewed = Deal(job: job, parts: [], value: value, openedPhase: 0)
            let bids = partBids(deal.parts.map { ($0.marketGroup, $0.units) }, bid: gain, job: job)
            for (part, partBid) in zip(deal.parts, bids) {
                nextOfferID += 1
                let offered = Part(
                    marketGroup: part.marketGroup, owner: part.owner, group: part.group, units: part.units,
                    offerID: nextOfferID, bid: partBid)
                renewed.parts.append(offered)
                out += send(.offer(offer(for: offered, job: job, renewing: part.lease)))
            }
            deals[job] = renewed
        }
        return out
    }

    /// A message from another shard (or from itself); handled at the next `phase`.
    public mutating func receive(_ message: TradingMessage) {
        inbox.append(message)
    }

    /// One trading phase: answer the bids received (re-solving the local matching with them),
    /// take in the answers to this shard's bids, and bid for better deals. Returns the messages
    /// to send.
    public mutating func phase() -> [TradingMessage] {
        phaseIndex += 1
        let messages = inbox
        inbox = []
        var out: [TradingMessage] = []
        var offers: [TradeOffer] = []
        var answers: [TradingMessage] = []
        for m in messages {
            switch m {
            case .offer(let o): offers.append(o)
            case .accept, .reject: answers.append(m)
            case .release(let r): endLease(r.lease, buyer: r.buyer)
            case .commit(let c): commit(c)
            }
        }
        out += answerOffers(offers)
        out += takeAnswers(answers)
        if parameters.enabled { out += bid() }
        return takeAnswersDue() + out
    }

    private mutating func takeAnswersDue() -> [TradingMessage] {
        defer { answersDue = [] }
        return answersDue.flatMap { send($0) }
    }

    /// The trading window closes: confirmed deals are committed to their owners, open ones are
    /// given back. Returns commits and releases.
    public mutating func closeRound() -> [TradingMessage] {
        var out: [TradingMessage] = []
        handedOver = [:]
        for (job, deal) in deals.sorted(by: { $0.key < $1.key }) {
            if deal.parts.allSatisfy({ $0.status == .granted }) {
                deals[job]!.confirmed = true
                counters.dealsConfirmed += 1
                let units = deal.parts.reduce(0) { $0 + $1.units }
                let owners = Set(deal.parts.map(\.owner))
                let reporter = owners.contains(id) ? id : owners.min()!
                let rehome = parameters.handOverLeasedJobs && owners.count == 1 && reporter != id
                if rehome { handedOver[job] = reporter }
                for part in deal.parts {
                    out += send(.commit(LeaseCommit(
                        lease: part.lease!, buyer: id, job: job, round: round, dealUnits: units, silent: part.owner != reporter,
                        rehome: rehome)))
                }
            } else {
                counters.dealsFailed += 1
                for part in deal.parts { if let lease = part.lease { out += release(lease, job: job) } }
                deals[job] = nil
            }
        }
        return out
    }

    /// The owner's final word for the round: commits and releases received are applied, leases
    /// not committed this round end, the home jobs are matched on what the committed leases
    /// leave, and everything is placed on concrete GPUs.
    public mutating func placeRound() throws -> ShardRoundOutcome {
        let messages = inbox
        inbox = []
        var late: [TradingMessage] = []
        for m in messages {
            switch m {
            case .commit(let c): commit(c)
            case .release(let r): endLease(r.lease, buyer: r.buyer)
            default: late.append(m)
            }
        }
        inbox = late  // answered (as stale) or released next round
        for (lid, lease) in leases where !(lease.committed && lease.round == round) {
            leases[lid] = nil
            counters.leasesEnded += 1
        }
        let (problem, jobs) = localProblem()
        let solution = solve(problem)
        var picks: [BourseRoundPlanner.Placement] = []
        for (j, job) in jobs.enumerated() {
            guard let c = solution.choice[j] else { continue }
            let o = problem.demands[j][c]
            picks.append(.init(jobID: job, group: o.group, workers: o.units))
        }
        for lease in leases.values.sorted(by: { $0.id < $1.id }) {
            picks.append(.init(jobID: lease.job, group: lease.group, workers: lease.units))
        }
        let assignments = try planner.place(picks)
        localPrices = Array(solution.prices.prefix(planner.groups.count))
        publishAsks()
        return ShardRoundOutcome(
            assignments: assignments, asks: layout.ids[id].map { asks[$0]! })
    }

    // MARK: - Owner

    /// The local matching problem: home jobs without a deal on the GPUs leases leave, plus one
    /// single-option demand per offer (renewed leases give their GPUs back to the matching while
    /// they are decided). Returns the problem and the home job of each demand row (offers follow).
    private func localProblem(
        jobs: [PolicyJob]? = nil, offers: [TradeOffer] = [], held: [LeaseID] = [], market: Bool = false
    ) -> (MatchingProblem, [Int]) {
        let free = jobs ?? planner.activeJobs.filter { deals[$0] == nil }.compactMap { homeJobs[$0] }
        var (problem, _, _) = planner.matchingProblem(jobs: free, activeJobs: population)
        // Each job's best deal elsewhere is one more option, worth its surplus at the known asks,
        // on a pseudo-group that never runs out: the matching sends a job to the market when that
        // beats every local use of its GPUs.
        if market && parameters.enabled {
            let outsideGroup = problem.capacity.count
            problem.capacity.append(max(free.count, 1))
            for (j, job) in free.enumerated() where !stayHome.contains(job.id) {
                guard let deal = marketDeal(for: job) else { continue }
                problem.demands[j].append(MatchingOption(group: outsideGroup, units: 1, value: deal.surplus))
            }
        }
        let heldSet = Set(held)
        for lease in leases.values where !lease.renewing && !heldSet.contains(lease.id) {
            problem.capacity[lease.group] = max(0, problem.capacity[lease.group] - lease.units)
        }
        for lid in held {
            let lease = leases[lid]!
            problem.demands.append([MatchingOption(group: lease.group, units: lease.units, value: lease.bid)])
        }
        for o in offers { problem.demands.append([MatchingOption(group: o.group, units: o.units, value: o.bid)]) }
        return (problem, free.map(\.id))
    }

    private func solve(_ problem: MatchingProblem) -> MatchingSolution {
        PriceAuction.solve(problem, epsilon: planner.parameters.epsilon, maxImprovements: planner.parameters.improvementLimit)
    }

    /// `PriceAuction` is a heuristic with multi-GPU demands: a uniform price that rises past a
    /// wide bid's value per GPU drops it even when it is worth more than the small bids that
    /// stay (an owner took back a job's 4-GPU lease worth 0.66 for two 1-GPU bids worth 0.31, and
    /// left 3 GPUs idle). Each multi-GPU lease or offer (`rows`) the solution leaves out, highest
    /// bid first, is tried forced in: its GPUs reserved, everything else solved again on the rest;
    /// the better of the two solutions is kept.
    private func admitLumpyBids(_ problem: MatchingProblem, _ solution: MatchingSolution, rows: Range<Int>) -> MatchingSolution {
        var best = solution
        let left = rows.filter { r in best.choice[r] == nil && problem.demands[r].count == 1 && problem.demands[r][0].units > 1 }
        for r in left.sorted(by: { problem.demands[$0][0].value > problem.demands[$1][0].value }) where best.choice[r] == nil {
            let bid = problem.demands[r][0]
            var trial = problem
            guard trial.capacity[bid.group] >= bid.units else { continue }
            trial.capacity[bid.group] -= bid.units
            trial.demands[r] = []
            var forced = solve(trial)
            let value = forced.value + bid.value
            guard value > best.value * (1 + 1e-9) + 1e-12 else { continue }
            forced.choice[r] = 0
            forced.value = value
            best = forced
        }
        return best
    }

    /// Leases granted or renewed this round and not yet committed: they hold their GPUs only
    /// tentatively, so a better bid arriving later in the round can still take them.
    private var heldLeases: [LeaseID] {
        leases.values.filter { $0.round == round && !$0.committed && !$0.renewing }.map(\.id).sorted()
    }

    private mutating func answerOffers(_ received: [TradeOffer]) -> [TradingMessage] {
        var out: [TradingMessage] = []
        var fresh: [TradeOffer] = []
        for o in received {
            counters.offersReceived += 1
            let key = OfferKey(buyer: o.buyer, offer: o.offerID)
            if let done = replies[key] {
                counters.duplicateOffers += 1
                out += send(done.reply)
                continue
            }
            if fresh.contains(where: { $0.buyer == o.buyer && $0.offerID == o.offerID }) {
                counters.duplicateOffers += 1
                continue
            }
            let valid = planner.groups.indices.contains(o.group) && o.units > 0 && o.bid > 0 && o.bid.isFinite
                && o.units <= planner.groups[o.group].capacity
            var reason: RejectReason? = valid ? nil : .invalid
            if reason == nil, o.round != round { reason = .stale }
            if reason == nil, let lid = o.renewing {
                if let lease = leases[lid], lease.buyer == o.buyer, lease.job == o.job, lease.group == o.group,
                    lease.units == o.units
                {
                    leases[lid]!.renewing = true
                } else {
                    reason = .unknownLease
                }
            }
            if let reason {
                out += reply(to: OfferKey(buyer: o.buyer, offer: o.offerID), .reject(rejection(of: o, reason: reason)))
            } else {
                fresh.append(o)
            }
        }
        jobsFreed = false
        asksMoved = false
        refreshOwnAsks()
        let held = heldLeases
        // Solve; a job the matching sends to the market that would not bid there (its deal is not
        // worth more than its local surplus) stays home: solve again without its outside option.
        var (problem, homes) = localProblem(offers: fresh, held: held, market: true)
        var solution = solve(problem)
        for _ in 0..<4 {
            localPrices = Array(solution.prices.prefix(planner.groups.count))
            var stranded: [Int] = []
            for (j, job) in homes.enumerated() {
                guard let c = solution.choice[j], problem.demands[j][c].group == planner.groups.count else { continue }
                if marketBid(for: job) == nil { stranded.append(job) }
            }
            if stranded.isEmpty { break }
            stayHome.formUnion(stranded)
            (problem, homes) = localProblem(offers: fresh, held: held, market: true)
            solution = solve(problem)
        }
        solution = admitLumpyBids(problem, solution, rows: homes.count..<problem.demands.count)
        localPrices = Array(solution.prices.prefix(planner.groups.count))
        // Held leases the matching no longer picks are taken back (the buyer hears "outbid").
        for (k, lid) in held.enumerated() where solution.choice[homes.count + k] == nil {
            let lease = leases[lid]!
            leases[lid] = nil
            counters.leasesEnded += 1
            let bumped = TradeReject(
                offerID: lease.offerID, owner: id, buyer: lease.buyer, job: lease.job, group: lease.group,
                ask: (asks[layout.ids[id][lease.group]]?.cost(lease.units) ?? 0) / Double(lease.units), reason: .outbid)
            out += reply(to: OfferKey(buyer: lease.buyer, offer: lease.offerID), .reject(bumped))
        }
        tentative = [:]
        outside = [:]
        for (j, job) in homes.enumerated() {
            guard let c = solution.choice[j] else { continue }
            let o = problem.demands[j][c]
            if o.group == planner.groups.count {
                outside[job] = marketBid(for: job)
            } else {
                tentative[job] = (o.group, o.units, o.value)
            }
        }
        // A job kept home (its deal was worth no more than its place here) that the matching now
        // leaves without GPUs (a renewed lease or a bid took them) looks at the market again,
        // once a round: with no place here, a deal elsewhere is all it gains. (It used to sit the
        // round out idle: its place was valued while a renewal's GPUs were back in the matching,
        // and the renewal then kept them.)
        let displaced = homes.enumerated().filter { j, job in
            solution.choice[j] == nil && stayHome.contains(job) && !displacedFromHome.contains(job)
        }.map(\.element)
        if !displaced.isEmpty {
            stayHome.subtract(displaced)
            displacedFromHome.formUnion(displaced)
            jobsFreed = true
        }
        var outbid: [TradeOffer] = []
        for (k, o) in fresh.enumerated() {
            let row = homes.count + held.count + k
            if solution.choice[row] != nil {
                let lease: LeaseID
                if let renewing = o.renewing {
                    lease = renewing
                    leases[renewing]!.renewing = false
                    leases[renewing]!.round = round
                    leases[renewing]!.committed = false
                    leases[renewing]!.expiresAt = now + parameters.leaseSeconds
                    leases[renewing]!.bid = o.bid
                    leases[renewing]!.offerID = o.offerID
                    counters.leasesRenewed += 1
                } else {
                    nextLeaseSerial += 1
                    lease = LeaseID(owner: id, serial: nextLeaseSerial)
                    leases[lease] = Lease(
                        id: lease, buyer: o.buyer, job: o.job, group: o.group, units: o.units,
                        expiresAt: now + parameters.leaseSeconds, round: round, committed: false, bid: o.bid,
                        offerID: o.offerID)
                    counters.leasesGranted += 1
                }
                counters.accepts += 1
                out += reply(
                    to: OfferKey(buyer: o.buyer, offer: o.offerID),
                    .accept(
                        TradeAccept(
                            offerID: o.offerID, owner: id, buyer: o.buyer, job: o.job, lease: lease, group: o.group,
                            units: o.units, expiresAt: leases[lease]!.expiresAt, price: localPrices[o.group])))
            } else {
                if let renewing = o.renewing {
                    leases[renewing] = nil
                    counters.leasesEnded += 1
                }
                outbid.append(o)
            }
        }
        // The asks are published once this phase's grants and renewals are leases, and the
        // rejections carry them. (Published before, they counted the GPUs just granted as idle:
        // buyers whose offer was refused heard a few GPUs were free, bid for them again in
        // another split, and were refused again, many times a round.)
        publishAsks()
        for o in outbid { out += reply(to: OfferKey(buyer: o.buyer, offer: o.offerID), .reject(rejection(of: o, reason: .outbid))) }
        return out
    }

    /// Computes this shard's asks from its current matching: per group, the auction price and
    /// the value lost when 1, 2, 4, ... of its GPUs are taken away.
    private mutating func publishAsks() {
        // Leases count as the demands they are (worth their bids): GPUs a guest holds are not free.
        let guests = leases.values.filter { $0.round == round && !$0.renewing }.map(\.id).sorted()
        for (g, ask) in askTable(localProblem(held: guests).0) { asks[g] = ask }
    }

    /// Asks for this shard's groups from a local matching problem (`solution`: its solution, when
    /// known): per group the auction price and the value lost when GPUs are taken away, for 1, 2,
    /// 4, ... GPUs, for the GPUs the matching leaves idle and one more (where the cost starts),
    /// and for the whole group. (With powers of two alone, a 6-GPU group with one job on it
    /// asked nothing for all 6: the cost of 6 was extrapolated from that of 4. Buyers bid for
    /// the 6, were refused, and wide jobs stayed on slower GPUs at home.)
    func askTable(_ base: MatchingProblem, solution: MatchingSolution? = nil) -> [Int: MarketAsk] {
        let solved = solution ?? solve(base)
        var used = Array(repeating: 0, count: base.capacity.count)
        for (j, c) in solved.choice.enumerated() {
            guard let c else { continue }
            let o = base.demands[j][c]
            used[o.group] += o.units
        }
        var table: [Int: MarketAsk] = [:]
        for (local, g) in layout.ids[id].enumerated() {
            let capacity = planner.groups[local].capacity
            var counts: Set<Int> = [capacity]
            var units = 1
            while units <= capacity {
                counts.insert(units)
                units *= 2
            }
            let idle = base.capacity[local] - used[local]
            for n in [idle, idle + 1] where n >= 1 && n <= capacity { counts.insert(n) }
            var costs: [Int: Double] = [:]
            for n in counts.sorted() {
                if n <= idle {
                    costs[n] = 0
                    continue
                }
                var reduced = base
                reduced.capacity[local] -= n  // may go below 0 when leases hold the group
                costs[n] = max(0, solved.value - solve(reduced).value)
            }
            table[g] = MarketAsk(price: localPrices[local], costs: costs)
        }
        return table
    }

    private func rejection(of o: TradeOffer, reason: RejectReason) -> TradeReject {
        let ask = planner.groups.indices.contains(o.group)
            ? (asks[layout.ids[id][o.group]]?.cost(o.units) ?? 0) / Double(max(o.units, 1)) : 0
        return TradeReject(offerID: o.offerID, owner: id, buyer: o.buyer, job: o.job, group: o.group, ask: ask, reason: reason)
    }

    private mutating func reply(to key: OfferKey, _ message: TradingMessage) -> [TradingMessage] {
        if case .reject = message { counters.rejects += 1 }
        replies[key] = (round, message)
        return send(message)
    }

    private mutating func endLease(_ lid: LeaseID, buyer: Int) {
        guard let lease = leases[lid], lease.buyer == buyer else { return }
        leases[lid] = nil
        counters.leasesEnded += 1
    }

    private mutating func commit(_ c: LeaseCommit) {
        guard let lease = leases[c.lease], lease.buyer == c.buyer, lease.job == c.job, c.round == round, lease.round == round
        else {
            // A hand-over of a lease that ended here (taken back, or the commit came after this
            // round's placement): the buyer must keep its job (``ShardCore`` takes it back).
            if c.rehome, takenOver[c.lease] == nil {
                answersDue.append(.reject(TradeReject(offerID: 0, owner: id, buyer: c.buyer, job: c.job, group: 0, ask: 0, reason: .unknownLease)))
            }
            return
        }
        leases[c.lease]!.committed = true
        leases[c.lease]!.dealUnits = c.dealUnits
        leases[c.lease]!.silent = c.silent
        leases[c.lease]!.rehome = c.rehome
    }

    /// The owner takes over the job of a lease its buyer handed over (``Lease/rehome``): the
    /// lease ends here, and the job comes in as a home job at the next round.
    public mutating func takeOver(_ lease: LeaseID) {
        guard leases.removeValue(forKey: lease) != nil else { return }
        takenOver[lease] = round
        counters.leasesEnded += 1
    }

    // MARK: - Buyer

    private mutating func takeAnswers(_ answers: [TradingMessage]) -> [TradingMessage] {
        var out: [TradingMessage] = []
        for m in answers {
            switch m {
            case .accept(let a):
                guard var deal = deals[a.job], !deal.confirmed,
                    let k = deal.parts.firstIndex(where: { $0.offerID == a.offerID && $0.owner == a.owner }),
                    deal.parts[k].status == .pending
                else {
                    // A deal that already failed (or a duplicate for a lease we hold is harmless).
                    let held = deals[a.job]?.parts.contains { $0.lease == a.lease } ?? false
                    if !held { out += release(a.lease, job: a.job) }
                    continue
                }
                deal.parts[k].status = .granted
                deal.parts[k].lease = a.lease
                deals[a.job] = deal
            case .reject(let r):
                if let g = layout.id(owner: r.owner, local: r.group), let units = deals[r.job]?.parts.first(where: { $0.offerID == r.offerID })?.units {
                    var ask = asks[g] ?? MarketAsk(price: 0)
                    ask.costs[units] = max(ask.costs[units] ?? 0, r.ask * Double(units))
                    asks[g] = ask
                }
                guard var deal = deals[r.job], !deal.confirmed,
                    let k = deal.parts.firstIndex(where: { $0.offerID == r.offerID && $0.owner == r.owner }),
                    deal.parts[k].status != .rejected
                else { continue }
                // A granted part can be taken back (outbid) until the round closes. While the
                // deal's other parts hold, it is offered again: the bid that took it may belong to
                // a deal that fails elsewhere and gives the GPUs back.
                let othersHold = deal.parts.indices.allSatisfy { $0 == k || deal.parts[$0].status != .rejected }
                if r.reason == .outbid, deal.parts[k].status == .granted, deal.parts.count > 1, othersHold,
                    deal.reoffers < parameters.reoffersPerDeal
                {
                    deal.reoffers += 1
                    nextOfferID += 1
                    deal.parts[k].offerID = nextOfferID
                    deal.parts[k].status = .pending
                    deal.parts[k].lease = nil
                    deal.openedPhase = phaseIndex
                    deals[r.job] = deal
                    out += send(.offer(offer(for: deal.parts[k], job: r.job)))
                    continue
                }
                deal.parts[k].status = .rejected
                deal.parts[k].lease = nil
                deals[r.job] = deal
            default: continue
            }
        }
        // Failed deals (a part rejected, or no answer in time) give back what they got.
        for (job, deal) in deals.sorted(by: { $0.key < $1.key }) where !deal.confirmed {
            let failed =
                deal.parts.contains { $0.status == .rejected }
                || (deal.parts.contains { $0.status == .pending } && phaseIndex - deal.openedPhase > parameters.offerTimeoutPhases)
            guard failed else { continue }
            counters.dealsFailed += 1
            if !deal.parts.contains(where: { $0.status == .rejected }) {
                // Timed out (a message was lost): the same deal may be tried again.
                tried[DealKey(job: job, parts: deal.parts.map { ($0.marketGroup, $0.units) })] = nil
            }
            for part in deal.parts {
                guard let lease = part.lease else { continue }
                out += release(lease, job: job)
                // The owner's ask we know may be our own bid for the GPUs just given back.
                if let before = deal.asksAtOffer[part.marketGroup] { asks[part.marketGroup] = before }
            }
            deals[job] = nil
            jobsFreed = true
        }
        return out
    }

    /// Bids for the home jobs the local matching sent to the market (their outside option won).
    /// A bid is what the deal is worth to the job beyond its best local surplus, so the owner,
    /// comparing it with its own jobs (whose outside options are in its matching too), trades
    /// GPUs only when the cluster as a whole gains.
    private mutating func bid() -> [TradingMessage] {
        var out: [TradingMessage] = []
        for job in planner.activeJobs where deals[job] == nil {
            guard let (best, gain) = outside[job] else { continue }
            let key = DealKey(job: job, parts: best.parts)
            tried[key] = best.value - best.surplus
            if !parameters.idleDealsBeyondLimit || best.value - best.surplus > Self.free { triedCount[job, default: 0] += 1 }
            var deal = Deal(job: job, parts: [], value: best.value, openedPhase: phaseIndex)
            for (g, _) in best.parts where layout.groups[g].owner != id { deal.asksAtOffer[g] = asks[g] }
            for ((g, units), partBid) in zip(best.parts, partBids(best.parts, bid: gain, job: job)) {
                let market = layout.groups[g]
                nextOfferID += 1
                let part = Part(
                    marketGroup: g, owner: market.owner, group: market.local, units: units, offerID: nextOfferID, bid: partBid)
                deal.parts.append(part)
                out += send(.offer(offer(for: part, job: job)))
            }
            deals[job] = deal
        }
        return out
    }

    /// The offer for one part of `job`'s deal (a renewal names the lease it renews).
    private func offer(for part: Part, job: Int, renewing: LeaseID? = nil) -> TradeOffer {
        TradeOffer(
            offerID: part.offerID, buyer: id, owner: part.owner, job: job, group: part.group, units: part.units,
            bid: part.bid, round: round, renewing: renewing)
    }

    /// A deal's bid split over its parts: each part first covers what its GPUs cost the deal
    /// (`partCost`: the owner's known ask, or for this shard's own GPUs what its other home jobs
    /// lose), and what the bid has beyond that is shared per GPU. (Split per GPU alone, a spread
    /// deal under-bid its contested part and over-bid the idle one, and deals the cluster gained
    /// from failed on one part.) A bid below the costs is split in proportion to them, after 1 %
    /// of it per GPU: a part that costs nothing still bids above 0, as owners require (a zero
    /// bid for an idle owner's part was refused as invalid).
    func partBids(_ parts: [(group: Int, units: Int)], bid: Double, job: Int) -> [Double] {
        let costs = parts.map { partCost($0.group, $0.units, job: job) }
        let asked = costs.reduce(0, +)
        let units = Double(max(parts.reduce(0) { $0 + $1.units }, 1))
        if bid >= asked || asked <= 0 { return zip(parts, costs).map { $1 + (bid - asked) * Double($0.units) / units } }
        let floor = parts.map { 0.01 * bid * Double($0.units) / units }
        let rest = bid - floor.reduce(0, +)
        return zip(floor, costs).map { $0 + rest * $1 / asked }
    }

    /// What `units` GPUs of market group `g` cost home job `job`'s deal: another shard's known
    /// ask; for this shard's own GPUs, what its other home jobs and guests lose (`refreshOwnAsks`;
    /// the job's own use of them is what it leaves by moving, already in its bid). Deal choice and
    /// bid split use the same costs: when the split priced own GPUs at the full ask (which counts
    /// the buyer itself), a 4-GPU deal with 2 GPUs at home split its bid below the other owners'
    /// asks and was refused, while 1-GPU jobs held the V100s it needed.
    func partCost(_ g: Int, _ units: Int, job: Int) -> Double {
        guard layout.groups[g].owner == id else { return asks[g]?.cost(units) ?? 0 }
        return (ownAsksWithout[job] ?? ownAsksBase)[g]?.loss(units) ?? 0
    }

    /// What home job `job` adds to this shard's own matching: the value of the local matching
    /// with it minus without it (home jobs without a deal, on the GPUs leases leave). This is the
    /// job's reservation value: a deal elsewhere must beat it for the cluster to gain. (Local
    /// prices understate it: the auction raises a price only when a group is over-demanded.)
    func homeContribution(of job: PolicyJob) -> Double {
        var others = planner.activeJobs.filter { deals[$0] == nil && $0 != job.id }.compactMap { homeJobs[$0] }
        let without = solve(localProblem(jobs: others).0).value
        others.append(job)
        return max(0, solve(localProblem(jobs: others).0).value - without)
    }

    /// The best deal for `job` at the known prices that uses another shard's GPUs: `w` GPUs of one
    /// remote group (packed when they fit a server), or `w` GPUs of one type and server size
    /// spread over several shards' groups, cheapest first. Deals on exactly the groups
    /// `excluding` are left out (a renewal looks for the job's next best beside its lease's
    /// groups), and with `idleOnly` deals on GPUs the known asks price.
    func bestDeal(
        for job: PolicyJob, profile: ElasticProfile, aging: Double, excluding: Set<Int>? = nil, idleOnly: Bool = false
    ) -> (
        parts: [(group: Int, units: Int)], value: Double, surplus: Double
    )? {
        var best: (parts: [(group: Int, units: Int)], value: Double, surplus: Double)?
        func cost(_ g: Int, _ units: Int) -> Double { partCost(g, units, job: job.id) }
        func consider(_ parts: [(group: Int, units: Int)], speed: Double) {
            guard speed > 0, Set(parts.map(\.group)) != excluding else { return }
            let value = planner.value(of: job, speed: speed, changes: true, aging: aging)
            let cost = parts.reduce(0.0) { $0 + cost($1.group, $1.units) }
            let surplus = value - cost
            guard surplus > (best?.surplus ?? 0), !idleOnly || cost <= Self.free else { return }
            // A deal already tried this round is tried again only once it got cheaper.
            let key = DealKey(job: job.id, parts: parts)
            if let before = tried[key], value - surplus >= before - parameters.minimumGain { return }
            best = (parts, value, surplus)
        }
        for (cls, members) in classes {
            let byPrice = members.sorted { a, b in
                let pa = asks[a]?.cost(1) ?? 0
                let pb = asks[b]?.cost(1) ?? 0
                return pa != pb ? pa < pb : a < b
            }
            for option in profile.options {
                let w = option.workers
                let t = cls.type
                if w <= cls.size {
                    for g in byPrice where layout.groups[g].owner != id && layout.groups[g].capacity >= w && excluding != [g] {
                        consider([(g, w)], speed: option.packed[t])
                        break  // the cheapest remote group that holds it
                    }
                }
                // Spread over groups of several shards (at least one remote).
                let parts = cheapestSplit(w, over: byPrice, cost: cost) ?? []
                let owners = Set(parts.map { layout.groups[$0.group].owner })
                if !parts.isEmpty, parts.count > 1 || w > cls.size, owners.contains(where: { $0 != id }),
                    parameters.spreadDeals || owners.count == 1
                {
                    consider(parts, speed: parts.count == 1 && w <= cls.size ? option.packed[t] : option.spread[t])
                }
            }
        }
        return best
    }

    struct ClassKey: Hashable { var type: Int; var size: Int }

    /// Refreshes `ownAsksWithout` / `ownAsksBase` for the current deals and leases.
    private mutating func refreshOwnAsks() {
        let free = planner.activeJobs.filter { deals[$0] == nil }.compactMap { homeJobs[$0] }
        let held = heldLeases
        let (base, rows) = localProblem(jobs: free, held: held)
        // The tables depend on that problem alone (their prices are not used). Most phases change
        // nothing here, and the tables are a large part of a sharded simulation's time.
        if let last = ownAsksProblem, last.problem == base, last.rows == rows { return }
        ownAsksProblem = (base, rows)
        let solution = solve(base)
        ownAsksBase = askTable(base, solution: solution)
        ownAsksWithout = [:]
        let placed = Set(zip(rows, solution.choice).compactMap { $1 == nil ? nil : $0 })
        for job in free where placed.contains(job.id) {
            ownAsksWithout[job.id] = askTable(localProblem(jobs: free.filter { $0.id != job.id }, held: held).0)
        }
    }

    /// The cheapest way to take `units` GPUs from `groups` (of one class) at the known asks: how
    /// many from each (a small dynamic program over the groups; ties go to fewer parts). Nil when
    /// the groups hold fewer GPUs.
    func cheapestSplit(_ units: Int, over groups: [Int], cost: (Int, Int) -> Double) -> [(group: Int, units: Int)]? {
        // best[u]: (cost, parts) of taking u GPUs from the groups seen so far.
        var best: [(cost: Double, parts: [(group: Int, units: Int)])?] = Array(repeating: nil, count: units + 1)
        best[0] = (0, [])
        for g in groups {
            var next = best
            let capacity = min(layout.groups[g].capacity, units)
            guard capacity > 0 else { continue }
            for have in 0..<units {
                guard let base = best[have] else { continue }
                for take in 1...min(capacity, units - have) {
                    // A part is a failure point: a tiny charge per part prefers fewer.
                    let c = base.cost + cost(g, take) + 1e-9
                    if next[have + take] == nil || c < next[have + take]!.cost {
                        next[have + take] = (c, base.parts + [(g, take)])
                    }
                }
            }
            best = next
        }
        return best[units]?.parts
    }

    /// The market's groups by class (GPU type, server size), classes in order.
    static func classes(of layout: MarketLayout) -> [(ClassKey, [Int])] {
        var classes: [ClassKey: [Int]] = [:]
        for (g, group) in layout.groups.enumerated() {
            classes[ClassKey(type: group.typeIndex, size: group.serverSize), default: []].append(g)
        }
        return classes.sorted { ($0.key.type, $0.key.size) < ($1.key.type, $1.key.size) }.map { ($0.key, $0.value) }
    }

    /// The deal home job `id` would bid for now and its bid (the deal's value beyond the job's
    /// best local surplus), or nil when it would not bid.
    func marketBid(for id: Int) -> (deal: (parts: [(group: Int, units: Int)], value: Double, surplus: Double), gain: Double)? {
        guard let home = homeJobs[id], let deal = marketDeal(for: home) else { return nil }
        let gain = deal.value - homeContribution(of: home)
        return gain > parameters.minimumGain ? (deal, gain) : nil
    }

    /// `job`'s best deal elsewhere that was not tried yet at this price (a rejected deal is tried
    /// again only once it got cheaper); once the job has tried enough deals this round, only a
    /// deal on GPUs idle at the known asks (`idleDealsBeyondLimit`).
    func marketDeal(for job: PolicyJob) -> (parts: [(group: Int, units: Int)], value: Double, surplus: Double)? {
        let spent = (triedCount[job.id] ?? 0) >= parameters.dealsPerJobPerRound
        guard !spent || parameters.idleDealsBeyondLimit,
            let (profile, aging) = planner.valuation(of: job, activeJobs: population)
        else { return nil }
        return bestDeal(for: job, profile: profile, aging: aging, idleOnly: spent)
    }

    /// A deal costing at most this at the known asks takes GPUs idle there.
    static let free = 1e-9

    /// What a job on leases gains from keeping them next round (no restart).
    func stayValue(of job: PolicyJob, deal: Deal, profile: ElasticProfile, aging: Double) -> Double? {
        let w = deal.parts.reduce(0) { $0 + $1.units }
        guard let first = deal.parts.first, let option = profile.options.first(where: { $0.workers == w }) else { return nil }
        let group = layout.groups[first.marketGroup]
        let packed = deal.parts.count == 1 && w <= group.serverSize
        let speed = packed ? option.packed[group.typeIndex] : option.spread[group.typeIndex]
        guard speed > 0 else { return nil }
        return planner.value(of: job, speed: speed, changes: false, aging: aging)
    }

    // MARK: - Sending

    private mutating func release(_ lease: LeaseID, job: Int) -> [TradingMessage] {
        send(.release(LeaseRelease(lease: lease, buyer: id, job: job)))
    }

    /// Counts a message and returns it for the network, or handles it at once when it is for
    /// this shard itself (its own share of a spread deal).
    private mutating func send(_ message: TradingMessage) -> [TradingMessage] {
        switch message {
        case .offer: counters.offersSent += 1
        case .release: counters.releasesSent += 1
        case .commit: counters.commitsSent += 1
        default: break
        }
        if message.recipient == id {
            switch message {
            case .release(let r): endLease(r.lease, buyer: r.buyer)
            case .commit(let c): commit(c)
            default: inbox.append(message)
            }
            return []
        }
        counters.messagesSent += 1
        return [message]
    }
}
