/// A proto3 enum mirrored in Swift.
///
/// proto3 enums are open: a peer built from a newer `.proto` may send values this build does not
/// know. Decoding never fails because of that: such values arrive as `.unrecognized(value)` and
/// are re-encoded unchanged. Equality and hashing go through ``rawValue``, so
/// `.unrecognized(1)` equals the named case whose value is 1 (always construct known values
/// through the named cases or ``init(rawValue:)``, which normalizes).
public protocol WireEnum: Hashable, Sendable {
    /// Maps every `Int32`: known values to their named case, others to `.unrecognized`.
    init(rawValue: Int32)
    /// The value on the wire.
    var rawValue: Int32 { get }
}

extension WireEnum {
    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
}

/// proto `JobState`.
public enum JobState: WireEnum {
    case unspecified, pending, running, restarting, completed, failed, cancelled
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .pending
        case 2: self = .running
        case 3: self = .restarting
        case 4: self = .completed
        case 5: self = .failed
        case 6: self = .cancelled
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .pending: 1
        case .running: 2
        case .restarting: 3
        case .completed: 4
        case .failed: 5
        case .cancelled: 6
        case .unrecognized(let value): value
        }
    }
}

/// proto `NodeHealth`.
public enum NodeHealth: WireEnum {
    case unspecified, healthy, degraded, failed
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .healthy
        case 2: self = .degraded
        case 3: self = .failed
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .healthy: 1
        case .degraded: 2
        case .failed: 3
        case .unrecognized(let value): value
        }
    }
}

/// proto `WorkerCommandKind`.
public enum WorkerCommandKind: WireEnum {
    case unspecified, start, stop, resize
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .start
        case 2: self = .stop
        case 3: self = .resize
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .start: 1
        case .stop: 2
        case .resize: 3
        case .unrecognized(let value): value
        }
    }
}

/// proto `MemberStatus` (SWIM).
public enum MemberStatus: WireEnum {
    case unspecified, alive, suspect, dead
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .alive
        case 2: self = .suspect
        case 3: self = .dead
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .alive: 1
        case .suspect: 2
        case .dead: 3
        case .unrecognized(let value): value
        }
    }
}

/// proto `MemberRole`.
public enum MemberRole: WireEnum {
    case unspecified, shard, gateway, agent
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .shard
        case 2: self = .gateway
        case 3: self = .agent
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .shard: 1
        case .gateway: 2
        case .agent: 3
        case .unrecognized(let value): value
        }
    }
}

/// proto `ErrorCode` (named to avoid a generic `ErrorCode` in client code).
public enum WireErrorCode: WireEnum {
    case unspecified, malformed, invalid, notFound, unauthorized, unavailable, `internal`
    case unrecognized(Int32)

    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .unspecified
        case 1: self = .malformed
        case 2: self = .invalid
        case 3: self = .notFound
        case 4: self = .unauthorized
        case 5: self = .unavailable
        case 6: self = .internal
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: Int32 {
        switch self {
        case .unspecified: 0
        case .malformed: 1
        case .invalid: 2
        case .notFound: 3
        case .unauthorized: 4
        case .unavailable: 5
        case .internal: 6
        case .unrecognized(let value): value
        }
    }
}
