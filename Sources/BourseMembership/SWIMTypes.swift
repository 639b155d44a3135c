// SWIM membership: value types shared by the pure state machine (`SWIMInstance`), the in-memory
// `MembershipSimulation`, and (later) the NNG shell, which maps them 1:1 onto proto/bourse.proto:
//
//   SWIM.MemberUpdate  <-> MemberUpdate{member_id, address, status, incarnation, role}
//   SWIM.Digest        <-> ShardDigest  (owner = shard_id, version = version, payload = the digest
//                                        itself or whatever the shell chooses; see `SWIM.Digest`)
//   SWIM.Ping          <-> Ping{probe_id, updates, digests}
//   SWIM.PingReq       <-> PingReq{probe_id, target_id, target_address, updates, digests}
//   SWIM.Ack           <-> Ack{probe_id, target_id, updates, digests}
//
// The module deliberately has no dependency on the wire module.
//
// Notes for the shell:
// - The envelope's sender_id is the `from:` of every received message. Every message the instance
//   sends starts with the sender's own MemberUpdate, so a receiver learns an unknown sender's
//   address and role from it; a message from an unknown sender without one is merged but not
//   answered (there is no address to answer to).
// - Drop (and count) updates whose status is MEMBER_STATUS_UNSPECIFIED or unrecognized; map an
//   unrecognized role to `.unspecified` (an update with `.unspecified` role keeps the known role).
// - Time: any monotonic seconds shared by the cluster (e.g. seconds since the cluster epoch, NOT
//   multiplied by the replay speed-up). The shared probe schedule reads the period number from it,
//   so clocks should agree to well under a period; arm one timer at `nextDeadline`.
// - Rejoin: start a restarted process with `incarnation` = milliseconds since the cluster epoch.
// - Digests: `SWIMInstance<ShardDigest>` with owner = shard_id, version = the instance's version
//   (write it into ShardDigest.version on the wire, read it back on receipt).

/// Namespace for the SWIM value types.
public enum SWIM {}

extension SWIM {
    /// A member's identity (proto `member_id`, e.g. "shard-r0", "gateway"). Stable across restarts.
    public struct MemberID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
        public static func < (a: MemberID, b: MemberID) -> Bool { a.rawValue < b.rawValue }
    }

    /// Where a member can be reached (proto `address`, e.g. "tcp://10.0.0.3:7401"). Opaque to SWIM.
    public struct Address: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        public var rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
    }

    /// Incarnation number: only the member itself increases it (to refute a suspicion or to rejoin).
    public typealias Incarnation = UInt64

    /// Member status. Raw values equal proto `MemberStatus`; for one incarnation the order
    /// alive < suspect < dead is the precedence order (a higher incarnation always wins).
    /// The shell drops updates whose status is MEMBER_STATUS_UNSPECIFIED or unknown.
    public enum Status: UInt8, Sendable, Hashable, Comparable, CustomStringConvertible {
        case alive = 1
        case suspect = 2
        case dead = 3
        public static func < (a: Status, b: Status) -> Bool { a.rawValue < b.rawValue }
        public var description: String {
            switch self {
            case .alive: "alive"
            case .suspect: "suspect"
            case .dead: "dead"
            }
        }
    }

    /// Member role. Raw values equal proto `MemberRole`.
    public enum Role: UInt8, Sendable, Hashable, CustomStringConvertible {
        case unspecified = 0
        case shard = 1
        case gateway = 2
        case agent = 3
        public var description: String {
            switch self {
            case .unspecified: "unspecified"
            case .shard: "shard"
            case .gateway: "gateway"
            case .agent: "agent"
            }
        }

        /// Whether a member of this role probes and relays. The gateway answers pings (and refutes
        /// in its acks) but runs no SWIM instance of its own, so it neither probes nor relays
        /// ping-reqs: the shared probe schedule gives it no turn, and no ping-req goes to it.
        public var probes: Bool { self != .gateway }
    }

    /// A member's identity and contact point.
    public struct Member: Hashable, Sendable, CustomStringConvertible {
        public var id: MemberID
        public var address: Address
        public var role: Role
        public init(id: MemberID, address: Address, role: Role) {
            self.id = id
            self.address = address
            self.role = role
        }
        public var description: String { "\(id)@\(address)" }
    }

    /// One piggybacked membership fact (proto `MemberUpdate`).
    public struct MemberUpdate: Hashable, Sendable, CustomStringConvertible {
        public var memberID: MemberID
        public var address: Address
        public var status: Status
        public var incarnation: Incarnation
        public var role: Role
        public init(memberID: MemberID, address: Address, status: Status, incarnation: Incarnation, role: Role) {
            self.memberID = memberID
            self.address = address
            self.status = status
            self.incarnation = incarnation
            self.role = role
        }
        public var description: String { "\(memberID):\(status)#\(incarnation)" }

        /// True when this fact overrides `other` about the same member: a higher incarnation wins;
        /// for the same incarnation dead beats suspect beats alive.
        public func supersedes(status other: Status, incarnation otherIncarnation: Incarnation) -> Bool {
            incarnation > otherIncarnation || (incarnation == otherIncarnation && status > other)
        }
    }

    /// A member's view of a member: identity, status and incarnation.
    public struct MemberState: Hashable, Sendable, CustomStringConvertible {
        public var id: MemberID
        public var address: Address
        public var role: Role
        public var status: Status
        public var incarnation: Incarnation
        public init(id: MemberID, address: Address, role: Role, status: Status, incarnation: Incarnation) {
            self.id = id
            self.address = address
            self.role = role
            self.status = status
            self.incarnation = incarnation
        }
        public var member: Member { Member(id: id, address: address, role: role) }
        public var update: MemberUpdate {
            MemberUpdate(memberID: id, address: address, status: status, incarnation: incarnation, role: role)
        }
        public var description: String { "\(id):\(status)#\(incarnation)" }
    }

    /// A per-member digest (in Bourse: a shard's `ShardDigest`), disseminated by piggybacking on
    /// pings and acks. Each member owns at most one digest, its own; the highest `version` wins.
    ///
    /// The instance is generic over `Payload` so the shell can carry the wire type itself
    /// (`SWIMInstance<ShardDigest>`, owner = shard_id, version = version) without re-encoding;
    /// tests use `[UInt8]` or `String`.
    public struct Digest<Payload: Sendable>: Sendable {
        public var owner: MemberID
        public var version: UInt64
        public var payload: Payload
        public init(owner: MemberID, version: UInt64, payload: Payload) {
            self.owner = owner
            self.version = version
            self.payload = payload
        }
    }

    /// Direct probe (proto `Ping`). `probeID` 0 is never used by a probe; any ping is acked.
    public struct Ping<Payload: Sendable>: Sendable {
        public var probeID: UInt64
        public var updates: [MemberUpdate]
        public var digests: [Digest<Payload>]
        public init(probeID: UInt64, updates: [MemberUpdate] = [], digests: [Digest<Payload>] = []) {
            self.probeID = probeID
            self.updates = updates
            self.digests = digests
        }
    }

    /// Indirect probe request (proto `PingReq`): "please ping `targetID` for me".
    public struct PingReq<Payload: Sendable>: Sendable {
        public var probeID: UInt64
        public var targetID: MemberID
        public var targetAddress: Address
        public var updates: [MemberUpdate]
        public var digests: [Digest<Payload>]
        public init(
            probeID: UInt64, targetID: MemberID, targetAddress: Address, updates: [MemberUpdate] = [],
            digests: [Digest<Payload>] = []
        ) {
            self.probeID = probeID
            self.targetID = targetID
            self.targetAddress = targetAddress
            self.updates = updates
            self.digests = digests
        }
    }

    /// Probe answer (proto `Ack`). `targetID` is the member that answered the probe; it differs from
    /// the sender when a ping-req relay forwards the answer.
    public struct Ack<Payload: Sendable>: Sendable {
        public var probeID: UInt64
        public var targetID: MemberID
        public var updates: [MemberUpdate]
        public var digests: [Digest<Payload>]
        public init(probeID: UInt64, targetID: MemberID, updates: [MemberUpdate] = [], digests: [Digest<Payload>] = []) {
            self.probeID = probeID
            self.targetID = targetID
            self.updates = updates
            self.digests = digests
        }
    }

    /// Any SWIM message.
    public enum Message<Payload: Sendable>: Sendable {
        case ping(Ping<Payload>)
        case pingReq(PingReq<Payload>)
        case ack(Ack<Payload>)

        public var updates: [MemberUpdate] {
            switch self {
            case .ping(let m): m.updates
            case .pingReq(let m): m.updates
            case .ack(let m): m.updates
            }
        }

        public var digests: [Digest<Payload>] {
            switch self {
            case .ping(let m): m.digests
            case .pingReq(let m): m.digests
            case .ack(let m): m.digests
            }
        }

        public var kind: String {
            switch self {
            case .ping: "ping"
            case .pingReq: "ping-req"
            case .ack: "ack"
            }
        }
    }

    /// Why a member's status changed in some member's view.
    public enum ChangeReason: Sendable, Hashable {
        /// Added by the caller (initial members, `addMember`).
        case added
        /// This instance's own probe (direct and indirect) got no ack within the period: suspicion raised here.
        case probeFailed
        /// This instance's suspicion timer ran out: death declared here.
        case suspicionExpired
        /// Learned from a piggybacked update (someone else's observation or a refutation).
        case gossip
    }

    /// Outputs of the state machine; the shell executes them in order.
    public enum Directive<Payload: Sendable>: Sendable {
        /// Send `message` to member `to` at `address`.
        case send(to: MemberID, address: Address, message: Message<Payload>)
        /// This instance's view of `member` changed (`from` is nil the first time it hears of it).
        case memberStatusChanged(MemberState, from: Status?, to: Status, reason: ChangeReason)
        /// A newer digest of another member arrived.
        case digestUpdated(Digest<Payload>)
        /// This instance heard it was suspected (or declared dead) and refuted by raising its
        /// incarnation to `incarnation`.
        case refuted(incarnation: Incarnation)
    }

    /// Inputs of the state machine, for `SWIMInstance.handle(_:now:)`.
    public enum Event<Payload: Sendable>: Sendable {
        /// Timer: drive probes, timeouts and suspicion expiry. Call at (or after) `nextDeadline`.
        case tick
        case ping(from: MemberID, Ping<Payload>)
        case pingReq(from: MemberID, PingReq<Payload>)
        case ack(from: MemberID, Ack<Payload>)
        /// A member learned out of band (configuration, seed list).
        case addMember(Member)
        /// Publish a new version of this member's own digest.
        case publishDigest(Payload)
        /// Leave voluntarily: tell everyone this member is dead and go quiet.
        case leave
    }

    /// Observable counters of one instance.
    public struct Counters: Hashable, Sendable {
        /// Suspicions raised by this instance's own failed probes.
        public var suspicionsRaised = 0
        /// Times this instance refuted a suspicion (or death) about itself by raising its incarnation.
        public var refutations = 0
        /// Suspect -> alive transitions seen in this instance's view (a suspicion it held was refuted).
        public var suspicionsCleared = 0
        /// Deaths declared by this instance's own suspicion timer.
        public var deathsDeclared = 0
        /// Deaths heard by gossip (not from the member itself) taken as suspicions, to be
        /// confirmed by this instance's own timer (``SWIM/Settings/confirmDeathsLocally``).
        public var deathsHeardAsSuspicions = 0
        /// Probes that completed through a ping-req relay after the direct ping went unanswered.
        public var indirectAcks = 0
        public var probesSent = 0
        public var pingReqsSent = 0
        public var messagesSent = 0
        public init() {}

        public static func + (a: Counters, b: Counters) -> Counters {
            var c = a
            c.suspicionsRaised += b.suspicionsRaised
            c.refutations += b.refutations
            c.suspicionsCleared += b.suspicionsCleared
            c.deathsDeclared += b.deathsDeclared
            c.deathsHeardAsSuspicions += b.deathsHeardAsSuspicions
            c.indirectAcks += b.indirectAcks
            c.probesSent += b.probesSent
            c.pingReqsSent += b.pingReqsSent
            c.messagesSent += b.messagesSent
            return c
        }
    }
}

extension SWIM.Digest: Equatable where Payload: Equatable {}
extension SWIM.Digest: Hashable where Payload: Hashable {}
extension SWIM.Ping: Equatable where Payload: Equatable {}
extension SWIM.PingReq: Equatable where Payload: Equatable {}
extension SWIM.Ack: Equatable where Payload: Equatable {}
extension SWIM.Message: Equatable where Payload: Equatable {}
extension SWIM.Directive: Equatable where Payload: Equatable {}
extension SWIM.Event: Equatable where Payload: Equatable {}
