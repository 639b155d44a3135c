/// One process's side of the wire: stamps what it sends (sender id, a strictly increasing
/// sequence number, the sender's clock) and decodes what it receives, counting frames that do not
/// decode. Processes keep one of these instead of their own counters, so what every envelope must
/// carry (and, later, its HMAC and replay check) is done in one place.
public struct WireEndpoint: Sendable {
    public let senderID: String
    /// Sequence number of the last envelope stamped.
    public private(set) var sequence: UInt64 = 0
    /// Frames received that did not decode.
    public private(set) var malformedFrames = 0

    public init(senderID: String) { self.senderID = senderID }

    /// `body` in an envelope from this process, encoded. Empty if it cannot be encoded (only a
    /// string with a NUL character or a frame over the size limit can fail).
    public mutating func encode(_ body: Envelope.Body, sentAt: Double) -> [UInt8] {
        sequence += 1
        return (try? WireCodec.encode(Envelope(senderID: senderID, sequence: sequence, sentAt: sentAt, body: body))) ?? []
    }

    /// The envelope in `frame`, or the reason it is malformed (counted in `malformedFrames`).
    public mutating func decode(_ frame: [UInt8]) -> Result<Envelope, WireError> {
        do {
            return .success(try WireCodec.decode(frame))
        } catch {
            malformedFrames += 1
            return .failure(error)
        }
    }

    /// The reply to a frame that did not decode: an Error envelope with code MALFORMED.
    public mutating func malformedReply(_ error: WireError, sentAt: Double) -> [UInt8] {
        encode(.error(WireErrorMessage(code: .malformed, message: error.description)), sentAt: sentAt)
    }
}
