internal import BourseProtoC

/// Encodes and decodes Bourse frames: one protobuf `bourse.Envelope` per frame, via protobuf-c.
///
/// - Decoding never crashes on hostile input; every failure is a ``WireError``.
/// - Unknown fields are skipped (proto3). Unknown enum values decode as `.unrecognized(value)`.
///   A body kind unknown to this build decodes as ``WireError/missingBody``.
/// - Singular sub-messages are Swift optionals: `nil` = absent on the wire.
/// - Frames larger than `maxFrameSize` (default ``defaultMaxFrameSize``) are refused by both
///   `encode` and `decode` with ``WireError/tooLarge(size:limit:)``.
/// - Encoding is deterministic (fields in field-number order), and byte-identical to Google's
///   protobuf for the same values (checked against Python in the tests).
/// - protobuf-c's limits: a `-0.0` double is sent as `0` (omitted like any default); strings
///   cannot contain NUL (encoding throws ``WireError/encodingFailed(_:)``; a received string with
///   an embedded NUL is cut there). Received strings must be valid UTF-8 (else `.malformed`).
public enum WireCodec {
    /// 16 MiB.
    public static let defaultMaxFrameSize = 16 * 1024 * 1024

    /// The wire bytes of `envelope`.
    public static func encode(_ envelope: Envelope, maxFrameSize: Int = defaultMaxFrameSize) throws(WireError) -> [UInt8] {
        let arena = CArena()
        let message = try arena.message(envelope)
        let size = bourse__envelope__get_packed_size(message)
        guard size <= maxFrameSize else { throw .tooLarge(size: size, limit: maxFrameSize) }
        var written = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, count in
            written = bourse__envelope__pack(message, buffer.baseAddress)
            count = min(written, size)
        }
        guard written == size else {
            throw .encodingFailed("protobuf-c packed \(written) bytes, expected \(size)")
        }
        return bytes
    }

    /// The canonical bytes an Envelope's HMAC is computed over: the encoding of `envelope` with
    /// `hmac` emptied (so it covers sender, sequence, send time and body). A receiver verifies a
    /// decoded envelope by recomputing the HMAC over `encodeForSigning(decoded)`; this holds as
    /// long as sender and receiver know the same fields (unknown fields are not carried over).
    public static func encodeForSigning(_ envelope: Envelope, maxFrameSize: Int = defaultMaxFrameSize) throws(WireError) -> [UInt8] {
        var unsigned = envelope
        unsigned.hmac = []
        return try encode(unsigned, maxFrameSize: maxFrameSize)
    }

    /// The Envelope in `bytes`.
    public static func decode(_ bytes: [UInt8], maxFrameSize: Int = defaultMaxFrameSize) throws(WireError) -> Envelope {
        // withUnsafeBytes only rethrows untyped errors: carry the typed one out in a Result.
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(WireError) -> Envelope in try decode(buffer, maxFrameSize: maxFrameSize) }
        }
        return try result.get()
    }

    /// The Envelope in `buffer` (e.g. a received message body), without copying it first.
    public static func decode(_ buffer: UnsafeRawBufferPointer, maxFrameSize: Int = defaultMaxFrameSize) throws(WireError) -> Envelope {
        guard buffer.count > 0, let base = buffer.baseAddress else { throw .empty }
        guard buffer.count <= maxFrameSize else { throw .tooLarge(size: buffer.count, limit: maxFrameSize) }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        guard let message = bourse__envelope__unpack(nil, buffer.count, bytes) else {
            throw .malformed("protobuf-c could not unpack \(buffer.count) bytes as a bourse.Envelope")
        }
        defer { bourse__envelope__free_unpacked(message, nil) }
        return try Envelope(c: message.pointee)
    }
}
