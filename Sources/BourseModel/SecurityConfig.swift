import Foundation

/// The cluster config's optional `security:` section: where the cluster key comes from, and the
/// tenants with the SHA-256 of their tokens (never the tokens themselves). Loading and validation
/// are in `ClusterConfigLoader.swift` (its "security" block).
///
/// ```yaml
/// security:
///   cluster_key_env: BOURSE_CLUSTER_KEY     # an environment variable holding the key, or
///   cluster_key_file: cluster.key           # a file holding it (relative to the config file)
///   tenants:
///     - {name: alice, token_sha256: 2bd806c9...}   # printf %s "$TOKEN" | sha256sum
/// ```
public struct SecurityConfig: Sendable, Hashable {
    /// The environment variable every process reads the key from when the config names none.
    public static let defaultKeyEnvironmentVariable = "BOURSE_CLUSTER_KEY"

    /// Where the cluster key is read from.
    public enum KeySource: Sendable, Hashable {
        /// `BOURSE_CLUSTER_KEY` if set and non-empty, else no key (messages not authenticated).
        case defaultEnvironment
        /// This environment variable; required (a process refuses to start without it).
        case environment(String)
        /// This file (absolute path); required. Surrounding whitespace and newlines are trimmed.
        case file(String)
    }

    public struct Tenant: Sendable, Hashable {
        public var name: String
        /// Lower-case hex SHA-256 of the tenant's token.
        public var tokenSHA256: String

        public init(name: String, tokenSHA256: String) {
            self.name = name
            self.tokenSHA256 = tokenSHA256.lowercased()
        }
    }

    public var keySource: KeySource
    /// nil: no tenants section, one open tenant (every client sees every job).
    public var tenants: [Tenant]?

    public init(keySource: KeySource = .defaultEnvironment, tenants: [Tenant]? = nil) {
        self.keySource = keySource
        self.tenants = tenants
    }

    /// The cluster key's text from its source, nil when there is none (default source, variable
    /// unset). Errors never contain the secret.
    public func clusterKeySecret(environment: [String: String] = ProcessInfo.processInfo.environment) throws(SecurityConfigError) -> String? {
        switch keySource {
        case .defaultEnvironment:
            let value = environment[Self.defaultKeyEnvironmentVariable] ?? ""
            return value.isEmpty ? nil : value
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw SecurityConfigError("security.cluster_key_env: the environment variable \(name) is not set or empty")
            }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SecurityConfigError("security.cluster_key_file: cannot read \(path)")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { throw SecurityConfigError("security.cluster_key_file: \(path) is empty") }
            return text
        }
    }

    /// Where the key comes from, for logs (never the key).
    public var keySourceDescription: String {
        switch keySource {
        case .defaultEnvironment: "environment variable \(Self.defaultKeyEnvironmentVariable)"
        case .environment(let name): "environment variable \(name)"
        case .file(let path): "file \(path)"
        }
    }
}

public struct SecurityConfigError: Error, CustomStringConvertible, Sendable, Hashable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
