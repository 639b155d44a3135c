import BourseWire

/// The tenants a gateway knows, by the SHA-256 of their tokens (the config stores hashes, never
/// tokens). With a directory, every client request must carry a token that maps to a tenant; the
/// request is then scoped to that tenant (see ``GatewayCore/handle(_:now:tenant:)``).
public struct TenantDirectory: Sendable, Hashable {
    /// Tenant name by lower-case hex SHA-256 of its token.
    public private(set) var tenantsByTokenHash: [String: String]
    /// Sender ids allowed to send requests without a token, answered unscoped (the shards'
    /// polls). Only meaningful with a cluster key: without one, sender ids are not authenticated.
    public var internalSenders: Set<String>

    public init(tokenHashes: [(tenant: String, sha256: String)], internalSenders: Set<String> = []) {
        var map: [String: String] = [:]
        for entry in tokenHashes { map[entry.sha256.lowercased()] = entry.tenant }
        tenantsByTokenHash = map
        self.internalSenders = internalSenders
    }

    /// The tenant whose token is `token`, nil if none.
    public func tenant(forToken token: String) -> String? {
        guard !token.isEmpty else { return nil }
        return tenantsByTokenHash[SecretHash.sha256Hex(token)]
    }

    public var tenantNames: [String] { Array(Set(tenantsByTokenHash.values)).sorted() }
}

/// Who a client request acts for.
public enum TenantScope: Sendable, Hashable {
    /// No tenants configured, or an internal sender: every job.
    case open
    /// Only this tenant's jobs; submissions are stamped with it.
    case tenant(String)
}
