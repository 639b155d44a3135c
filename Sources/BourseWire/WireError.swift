/// Everything that can go wrong turning an ``Envelope`` into bytes or bytes into an ``Envelope``.
///
/// Decoding never crashes on hostile input: every failure is one of these cases.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The frame had zero bytes (a zero-length protobuf would be an Envelope without a body).
    case empty
    /// The frame (decoding) or the packed Envelope (encoding) exceeds the frame-size limit.
    case tooLarge(size: Int, limit: Int)
    /// protobuf-c could not unpack the frame, or it unpacked into something we cannot represent
    /// (e.g. a string that is not valid UTF-8). The text says what was wrong.
    case malformed(String)
    /// The frame decoded but no `body` oneof member was set. Newer senders' body kinds that this
    /// build does not know arrive as unknown fields and therefore also end up here.
    case missingBody
    /// A Swift value could not be expressed on the wire (e.g. a string with a NUL character,
    /// which protobuf-c's `char *` strings cannot carry), or memory allocation failed.
    case encodingFailed(String)

    public var description: String {
        switch self {
        case .empty:
            "empty frame: 0 bytes, expected an encoded bourse.Envelope"
        case .tooLarge(let size, let limit):
            "frame too large: \(size) bytes exceeds the limit of \(limit) bytes"
        case .malformed(let why):
            "malformed frame: \(why)"
        case .missingBody:
            "envelope has no body (no oneof member set, or a body kind unknown to this build)"
        case .encodingFailed(let why):
            "cannot encode envelope: \(why)"
        }
    }
}
