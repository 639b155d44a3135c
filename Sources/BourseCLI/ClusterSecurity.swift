import ArgumentParser
import BourseGateway
import BourseModel
import BourseWire
import Foundation
import Logging

/// The cluster key and tenant tokens as every `bourse` process resolves them (issue #7).
///
/// Key: the config's `security.cluster_key_env` / `security.cluster_key_file` when it names one
/// (then required), else the environment's `BOURSE_CLUSTER_KEY`, else none. `bourse up` starts its
/// processes with its own environment, so they resolve the same key. Errors and logs name where
/// the key comes from, never the key.
enum ClusterSecurity {
    /// The cluster key for `security` (the config's section; a default one without a config).
    static func key(_ security: SecurityConfig = SecurityConfig()) throws -> ClusterKey? {
        do {
            guard let secret = try security.clusterKeySecret() else { return nil }
            return try ClusterKey(secret: secret)
        } catch let error as ClusterKeyError {
            throw ValidationError("\(error) (from \(security.keySourceDescription))")
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// Logs once how this process authenticates messages: a warning when it runs without a key.
    static func announce(_ key: ClusterKey?, _ security: SecurityConfig, logger: Logger) {
        if key == nil {
            logger.warning("\(WireEndpoint.noKeyWarning) (set \(SecurityConfig.defaultKeyEnvironmentVariable) or the config's security.cluster_key_env / cluster_key_file)")
        } else {
            logger.notice("messages are signed and checked with the cluster key from \(security.keySourceDescription) (HMAC-SHA256, replay window on)")
        }
    }

    /// The gateway's tenant directory: nil when the config has no `security.tenants` (one open
    /// tenant). The cluster's shards may poll without a token.
    static func tenants(_ cluster: ClusterConfig) -> TenantDirectory? {
        guard let tenants = cluster.security.tenants else { return nil }
        return TenantDirectory(
            tokenHashes: tenants.map { ($0.name, $0.tokenSHA256) }, internalSenders: Set(cluster.racks.map(\.shardID)))
    }

    /// The environment variable client commands read a tenant token from.
    static let tenantTokenVariable = "BOURSE_TENANT_TOKEN"
}
