#if canImport(Glibc)
internal import Glibc
#elseif canImport(Musl)
internal import Musl
#elseif canImport(Darwin)
internal import Darwin
#endif
import Synchronization

/// One process's side of the wire: stamps what it sends (sender id, a strictly increasing
/// sequence number, the sender's clock, and with a cluster key an HMAC) and checks what it
/// receives (decodes; with a cluster key verifies the HMAC and rejects replays), counting every
/// frame it refuses. Gateway, shards, agents and CLI clients all send and receive through one of
/// these, so what every envelope must carry is decided in one place.
///
/// What is signed: HMAC-SHA256 with the cluster key over ``WireCodec/encodeForSigning(_:maxFrameSize:)``,
/// i.e. the protobuf encoding of the envelope with `hmac` empty: sender id, sequence, sent_at and
/// the body. Re-stamping a frame (other sender, sequence or time) or changing its body breaks the
/// HMAC. The receiver recomputes it over the envelope it decoded, so both ends must know every
/// field the sender set (a field unknown to the receiver is dropped when decoding and the HMAC
/// fails): add proto fields to every process before using them.
///
/// Sequence: `max(previous + 1, wall clock in microseconds)`, so it is strictly increasing within
/// a process and a restarted process starts above everything its previous life sent (as long as
/// the wall clock does not step back). Replay rejection: ``ReplayGuard`` (per-sender window of
/// 30 s for out-of-order arrival, frames older than 5 min refused).
///
/// Without a key nothing is signed or checked (and a process should say so in its log once).
public struct WireEndpoint: Sendable {
    public let senderID: String
    /// The cluster key; nil = messages are neither signed nor authenticated.
    public let key: ClusterKey?
    /// Sequence number of the last envelope stamped.
    public private(set) var sequence: UInt64 = 0
    /// Frames received that did not decode.
    public private(set) var malformedFrames = 0
    /// Frames refused because their HMAC was missing or wrong (forged, or another key).
    public private(set) var unauthenticatedFrames = 0
    /// Frames refused as replays (sequence already seen, too far behind, or too old).
    public private(set) var replayedFrames = 0
    private var replay = ReplayGuard()
    private let microseconds: @Sendable () -> UInt64

    /// - Parameters:
    ///   - key: the cluster key (nil: no HMAC, no replay check).
    ///   - microseconds: the wall clock in microseconds since the Unix epoch (tests inject one).
    public init(
        senderID: String, key: ClusterKey? = nil,
        microseconds: @escaping @Sendable () -> UInt64 = WireEndpoint.wallClockMicroseconds
    ) {
        self.senderID = senderID
        self.key = key
        self.microseconds = microseconds
    }

    /// Replaces the replay guard's parameters (tests).
    public mutating func setReplayGuard(_ guardSettings: ReplayGuard) { replay = guardSettings }

    /// The wall clock in microseconds since the Unix epoch.
    public static let wallClockMicroseconds: @Sendable () -> UInt64 = {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(max(0, spec.tv_sec)) * 1_000_000 + UInt64(max(0, spec.tv_nsec)) / 1000
    }

    /// True when envelopes are signed and checked.
    public var authenticates: Bool { key != nil }

    /// Frames refused for any reason.
    public var rejectedFrames: Int { malformedFrames + unauthenticatedFrames + replayedFrames }

    /// The counters for a log line, e.g. "malformed 0, bad hmac 2, replayed 1".
    public var counters: String {
        "malformed \(malformedFrames), bad hmac \(unauthenticatedFrames), replayed \(replayedFrames)"
    }

    /// The line each process logs once at start when it runs without a key.
    public static let noKeyWarning = "running without a cluster key: messages are not authenticated"

    // MARK: Sending

    /// `body` in an envelope from this process (stamped and, with a key, signed), encoded.
    public mutating func seal(_ body: Envelope.Body, sentAt: Double) throws(WireError) -> [UInt8] {
        sequence = max(sequence + 1, microseconds())
        var envelope = Envelope(senderID: senderID, sequence: sequence, sentAt: sentAt, body: body)
        if let key { envelope.hmac = key.authenticationCode(for: try WireCodec.encodeForSigning(envelope)) }
        return try WireCodec.encode(envelope)
    }

    /// As ``seal(_:sentAt:)``, but empty if it cannot be encoded (only a string with a NUL
    /// character or a frame over the size limit can fail).
    public mutating func encode(_ body: Envelope.Body, sentAt: Double) -> [UInt8] {
        (try? seal(body, sentAt: sentAt)) ?? []
    }

    // MARK: Receiving

    /// The envelope in `frame` if it decodes and, with a key, carries a valid HMAC and a fresh
    /// sequence; else why it was refused (counted).
    public mutating func decode(_ frame: [UInt8]) -> Result<Envelope, WireRejection> {
        let envelope: Envelope
        do {
            envelope = try WireCodec.decode(frame)
        } catch {
            malformedFrames += 1
            return .failure(.malformed(error))
        }
        guard let key else { return .success(envelope) }
        guard !envelope.hmac.isEmpty else {
            unauthenticatedFrames += 1
            return .failure(.unauthenticated(sender: envelope.senderID, reason: "no HMAC (the sender has no cluster key)"))
        }
        guard let signed = try? WireCodec.encodeForSigning(envelope), key.isValid(envelope.hmac, for: signed) else {
            unauthenticatedFrames += 1
            return .failure(.unauthenticated(sender: envelope.senderID, reason: "HMAC does not match (forged, altered, or another key)"))
        }
        if let reason = replay.admit(sender: envelope.senderID, sequence: envelope.sequence, now: microseconds()) {
            replayedFrames += 1
            return .failure(.replayed(sender: envelope.senderID, reason: reason))
        }
        return .success(envelope)
    }

    /// A request frame a server received: its envelope, or (counted) the refusal to answer it
    /// with and a log line saying why. The one prologue of every frame handler.
    public mutating func receiveRequest(_ frame: [UInt8], sentAt: Double) -> Result<Envelope, RefusedFrame> {
        switch decode(frame) {
        case .success(let envelope):
            return .success(envelope)
        case .failure(.malformed(let error)):
            return .failure(
                RefusedFrame(
                    reply: malformedReply(error, sentAt: sentAt),
                    logLine: "dropped malformed frame #\(malformedFrames) (\(frame.count) bytes): \(error)"))
        case .failure(let rejection):
            return .failure(
                RefusedFrame(
                    reply: rejectionReply(rejection, sentAt: sentAt),
                    logLine: "refused a frame (\(frame.count) bytes): \(rejection) (frames refused: \(counters))"))
        }
    }

    /// The reply to a refused frame: an Error envelope, MALFORMED or UNAUTHORIZED.
    public mutating func rejectionReply(_ rejection: WireRejection, sentAt: Double) -> [UInt8] {
        encode(.error(WireErrorMessage(code: rejection.code, message: rejection.description)), sentAt: sentAt)
    }

    /// The reply to a frame that did not decode: an Error envelope with code MALFORMED.
    public mutating func malformedReply(_ error: WireError, sentAt: Double) -> [UInt8] {
        rejectionReply(.malformed(error), sentAt: sentAt)
    }
}

/// Why a ``WireEndpoint`` refused a received frame.
public enum WireRejection: Error, Hashable, Sendable, CustomStringConvertible {
    /// Did not decode.
    case malformed(WireError)
    /// Decoded, but the HMAC is missing or wrong.
    case unauthenticated(sender: String, reason: String)
    /// Authentic, but its sequence was seen before or is too old.
    case replayed(sender: String, reason: String)

    /// The error code of the reply.
    public var code: WireErrorCode {
        switch self {
        case .malformed: .malformed
        case .unauthenticated, .replayed: .unauthorized
        }
    }

    public var description: String {
        switch self {
        case .malformed(let error): error.description
        case .unauthenticated(let sender, let reason): "unauthenticated frame from '\(sender)': \(reason)"
        case .replayed(let sender, let reason): "replayed frame from '\(sender)': \(reason)"
        }
    }
}

/// A received frame a server refused: the error reply to send back and what to log.
public struct RefusedFrame: Error, Sendable {
    public var reply: [UInt8]
    public var logLine: String
}

/// A ``WireEndpoint`` shared by several tasks (CLI clients, tasks outside an actor).
public final class SharedWireEndpoint: Sendable {
    private let state: Mutex<WireEndpoint>

    public init(_ endpoint: WireEndpoint) { state = Mutex(endpoint) }

    public func seal(_ body: Envelope.Body, sentAt: Double) throws(WireError) -> [UInt8] {
        try state.withLock { endpoint throws(WireError) in try endpoint.seal(body, sentAt: sentAt) }
    }

    public func encode(_ body: Envelope.Body, sentAt: Double) -> [UInt8] {
        state.withLock { $0.encode(body, sentAt: sentAt) }
    }

    public func decode(_ frame: [UInt8]) -> Result<Envelope, WireRejection> {
        state.withLock { $0.decode(frame) }
    }

    public var endpoint: WireEndpoint { state.withLock { $0 } }
}
