import BourseMembership
import BourseWire

/// Mapping between the membership module's SWIM types and the wire's Ping/PingReq/Ack (1:1, see
/// the notes at the top of SWIMTypes.swift). Updates with an unspecified or unknown status are
/// dropped and counted by the caller.
public enum SWIMWire {
    public static func update(_ u: MemberUpdate) -> SWIM.MemberUpdate? {
        guard let status = SWIM.Status(rawValue: UInt8(clamping: u.status.rawValue)), u.status.rawValue >= 1,
              u.status.rawValue <= 3 else { return nil }
        let role = SWIM.Role(rawValue: UInt8(clamping: u.role.rawValue)) ?? .unspecified
        return SWIM.MemberUpdate(
            memberID: SWIM.MemberID(u.memberID), address: SWIM.Address(u.address), status: status, incarnation: u.incarnation,
            role: u.role.rawValue >= 0 && u.role.rawValue <= 3 ? role : .unspecified)
    }

    public static func update(_ u: SWIM.MemberUpdate) -> MemberUpdate {
        MemberUpdate(
            memberID: u.memberID.rawValue, address: u.address.rawValue, status: MemberStatus(rawValue: Int32(u.status.rawValue)),
            incarnation: u.incarnation, role: MemberRole(rawValue: Int32(u.role.rawValue)))
    }

    public static func digest(_ d: ShardDigest) -> SWIM.Digest<ShardDigest> {
        SWIM.Digest(owner: SWIM.MemberID(d.shardID), version: d.version, payload: d)
    }

    public static func digest(_ d: SWIM.Digest<ShardDigest>) -> ShardDigest {
        var payload = d.payload
        payload.shardID = d.owner.rawValue
        payload.version = d.version
        return payload
    }

    /// A received SWIM message, or nil when the body is not one.
    public static func message(_ body: Envelope.Body) -> (SWIM.Message<ShardDigest>, dropped: Int)? {
        func updates(_ list: [MemberUpdate]) -> ([SWIM.MemberUpdate], Int) {
            let mapped = list.compactMap(update)
            return (mapped, list.count - mapped.count)
        }
        switch body {
        case .ping(let p):
            let (u, dropped) = updates(p.updates)
            return (.ping(SWIM.Ping(probeID: p.probeID, updates: u, digests: p.digests.map(digest))), dropped)
        case .pingReq(let p):
            let (u, dropped) = updates(p.updates)
            return (.pingReq(SWIM.PingReq(
                probeID: p.probeID, targetID: SWIM.MemberID(p.targetID), targetAddress: SWIM.Address(p.targetAddress),
                updates: u, digests: p.digests.map(digest))), dropped)
        case .ack(let a):
            let (u, dropped) = updates(a.updates)
            return (.ack(SWIM.Ack(probeID: a.probeID, targetID: SWIM.MemberID(a.targetID), updates: u, digests: a.digests.map(digest))), dropped)
        default:
            return nil
        }
    }

    public static func body(_ m: SWIM.Message<ShardDigest>) -> Envelope.Body {
        switch m {
        case .ping(let p):
            .ping(Ping(probeID: p.probeID, updates: p.updates.map(update), digests: p.digests.map(digest)))
        case .pingReq(let p):
            .pingReq(PingReq(
                probeID: p.probeID, targetID: p.targetID.rawValue, targetAddress: p.targetAddress.rawValue,
                updates: p.updates.map(update), digests: p.digests.map(digest)))
        case .ack(let a):
            .ack(Ack(probeID: a.probeID, targetID: a.targetID.rawValue, updates: a.updates.map(update), digests: a.digests.map(digest)))
        }
    }
}
