import Crypto

/// The cluster's shared secret: every envelope carries an HMAC-SHA256 made with it (see
/// ``WireEndpoint``). The key bytes never leave this type: it prints as `ClusterKey(redacted)`,
/// so a key that ends up in a log line or an error message shows nothing.
public struct ClusterKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Keys shorter than this are refused (an HMAC is only as strong as its key).
    public static let minimumBytes = 16

    /// The raw bytes (Crypto's `SymmetricKey` is not `Sendable` in swift-crypto 3; one is made per use).
    private let bytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: bytes) }

    /// A key from raw bytes (at least ``minimumBytes``).
    public init(bytes: [UInt8]) throws(ClusterKeyError) {
        guard bytes.count >= Self.minimumBytes else { throw .tooShort(bytes: bytes.count) }
        self.bytes = bytes
    }

    /// A key from the UTF-8 bytes of `secret` (an environment variable's or a key file's text).
    public init(secret: String) throws(ClusterKeyError) { try self.init(bytes: Array(secret.utf8)) }

    public var description: String { "ClusterKey(redacted)" }
    public var debugDescription: String { description }

    /// HMAC-SHA256 of `bytes` (32 bytes).
    public func authenticationCode(for bytes: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: bytes, using: key))
    }

    /// True when `code` is the HMAC-SHA256 of `bytes` (compared in constant time).
    public func isValid(_ code: [UInt8], for bytes: [UInt8]) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: bytes, using: key)
    }
}

public enum ClusterKeyError: Error, Hashable, Sendable, CustomStringConvertible {
    case tooShort(bytes: Int)

    public var description: String {
        switch self {
        case .tooShort(let n):
            "the cluster key is too short: \(n) bytes, at least \(ClusterKey.minimumBytes) needed (e.g. `openssl rand -hex 32`)"
        }
    }
}

/// SHA-256 helpers for secrets that are stored as hashes (tenant tokens).
public enum SecretHash {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `secret`.
    public static func sha256Hex(_ secret: String) -> String {
        SHA256.hash(data: Array(secret.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
