import Foundation
import Testing
@testable import BourseModel

/// The `security:` section of cluster configs (issue 7).
@Suite("security section")
struct SecurityConfigTests {
    static let base = """
        name: t
        gpu_types: [v100]
        gateway: {address: "tcp://127.0.0.1:7700"}
        racks:
          - {id: r0, shard: "tcp://127.0.0.1:7710", agent: "tcp://127.0.0.1:7720", nodes: [{id: r0-n0, gpus: {v100: 4}}]}

        """
    static let hashA = String(repeating: "ab", count: 32)
    static let hashB = String(repeating: "0F", count: 32)

    private func problems(_ yaml: String) -> [String] {
        do {
            _ = try ClusterConfig.parse(yaml: yaml, file: "/etc/bourse/c.yaml")
            return []
        } catch {
            return error.errors.map(\.description)
        }
    }

    @Test("no section: key from BOURSE_CLUSTER_KEY if set, one open tenant")
    func absent() throws {
        let config = try ClusterConfig.parse(yaml: Self.base, file: "c.yaml")
        #expect(config.security == SecurityConfig())
        #expect(config.security.tenants == nil)
        #expect(try config.security.clusterKeySecret(environment: [:]) == nil)
        #expect(try config.security.clusterKeySecret(environment: ["BOURSE_CLUSTER_KEY": "k-from-env"]) == "k-from-env")
    }

    @Test("cluster_key_env names a required variable; tenants are read with their hashes")
    func envAndTenants() throws {
        let yaml = Self.base + """
            security:
              cluster_key_env: MY_KEY
              tenants:
                - {name: alice, token_sha256: \(Self.hashA)}
                - {name: bob, token_sha256: \(Self.hashB)}
            """
        let security = try ClusterConfig.parse(yaml: yaml, file: "c.yaml").security
        #expect(security.keySource == .environment("MY_KEY"))
        #expect(security.tenants == [
            SecurityConfig.Tenant(name: "alice", tokenSHA256: Self.hashA),
            SecurityConfig.Tenant(name: "bob", tokenSHA256: Self.hashB.lowercased()),
        ])
        #expect(try security.clusterKeySecret(environment: ["MY_KEY": "s3cret-value", "BOURSE_CLUSTER_KEY": "other"]) == "s3cret-value")
        #expect(throws: SecurityConfigError.self) { try security.clusterKeySecret(environment: ["BOURSE_CLUSTER_KEY": "other"]) }
        do {
            _ = try security.clusterKeySecret(environment: [:])
        } catch {
            #expect(error.description.contains("MY_KEY"))
        }
    }

    @Test("cluster_key_file is relative to the config file and trimmed; errors never show the key")
    func keyFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-sec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "file-secret-0123456789\n".write(to: dir.appendingPathComponent("cluster.key"), atomically: true, encoding: .utf8)
        let configPath = dir.appendingPathComponent("c.yaml").path
        try (Self.base + "security: {cluster_key_file: cluster.key}\n").write(toFile: configPath, atomically: true, encoding: .utf8)
        let security = try ClusterConfig.load(path: configPath).security
        #expect(security.keySource == .file(dir.appendingPathComponent("cluster.key").standardizedFileURL.path))
        #expect(try security.clusterKeySecret(environment: [:]) == "file-secret-0123456789")
        #expect(!security.keySourceDescription.contains("file-secret"))

        let missing = SecurityConfig(keySource: .file(dir.appendingPathComponent("nope.key").path))
        #expect(throws: SecurityConfigError.self) { try missing.clusterKeySecret(environment: [:]) }
    }

    @Test("invalid sections are reported as file:line:col: path: problem")
    func invalid() {
        let both = problems(Self.base + "security: {cluster_key_env: K, cluster_key_file: k.key}\n")
        #expect(both.count == 1)
        #expect(both.first?.contains("security.cluster_key_file: give either cluster_key_env or cluster_key_file") == true, "\(both)")

        let unknownKey = problems(Self.base + "security: {cluster_key: abc}\n")
        #expect(unknownKey.first?.contains("security.cluster_key: unknown key 'cluster_key'") == true, "\(unknownKey)")

        let badEnv = problems(Self.base + "security: {cluster_key_env: \"not a name\"}\n")
        #expect(badEnv.first?.contains("security.cluster_key_env: expected an environment variable name") == true, "\(badEnv)")

        // A pasted token instead of its hash: refused, and not echoed.
        let pasted = problems(Self.base + "security:\n  tenants:\n    - {name: alice, token_sha256: hunter2-plain-token}\n")
        #expect(pasted.count == 1)
        #expect(pasted.first?.hasPrefix("/etc/bourse/c.yaml:") == true, "\(pasted)")
        #expect(pasted.first?.contains("security.tenants[0].token_sha256: expected 64 hex digits") == true, "\(pasted)")
        #expect(pasted.first?.contains("hunter2") == false)

        let duplicate = problems(Self.base + """
            security:
              tenants:
                - {name: alice, token_sha256: \(Self.hashA)}
                - {name: alice, token_sha256: \(Self.hashB)}
                - {name: carol, token_sha256: \(Self.hashA)}
            """)
        #expect(duplicate.contains { $0.contains("security.tenants[1].name: duplicate tenant name 'alice'") }, "\(duplicate)")
        #expect(duplicate.contains { $0.contains("security.tenants[2].token_sha256: the same token hash") }, "\(duplicate)")

        let empty = problems(Self.base + "security: {tenants: []}\n")
        #expect(empty.first?.contains("security.tenants: empty list") == true, "\(empty)")
        let missingHash = problems(Self.base + "security: {tenants: [{name: alice}]}\n")
        #expect(missingHash.first?.contains("security.tenants[0].token_sha256: missing required field") == true, "\(missingHash)")
    }
}
