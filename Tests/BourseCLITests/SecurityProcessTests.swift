import Foundation
import Testing

/// The closed door (issue 7) between real processes on loopback: a gateway with a cluster key
/// and tenants; a whole `bourse up` cluster with a key.
@Suite("cluster key and tenant tokens between processes", .serialized)
struct SecurityProcessTests {
    static let resnet = "ResNet-18 (batch size 32)"
    /// Unique per run, so a match in a log can only come from this test.
    static let secret = "door-secret-\(UUID().uuidString)"
    static let aliceToken = "alice-\(UUID().uuidString)"
    static let bobToken = "bob-\(UUID().uuidString)"

    static func sha256Hex(_ text: String) throws -> String {
        // The tests depend on BourseModel only: hash with the system's sha256sum.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["sha256sum"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: data, as: UTF8.self).prefix(64))
    }

    final class Scratch {
        let directory: URL
        let config: String
        let address: String

        init(tenants: Bool) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-door-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let ports = (0..<5).map { _ in freeLoopbackPort() }
            address = "tcp://127.0.0.1:\(ports[0])"
            var yaml = """
                name: door-test
                speedup: 600
                gpu_types: [v100, k80]
                gateway: {address: "\(address)"}
                racks:
                  - {id: r0, shard: "tcp://127.0.0.1:\(ports[1])", agent: "tcp://127.0.0.1:\(ports[2])", nodes: [{prefix: r0-n, count: 2, gpus: {v100: 2}}]}
                  - {id: r1, shard: "tcp://127.0.0.1:\(ports[3])", agent: "tcp://127.0.0.1:\(ports[4])", nodes: [{prefix: r1-n, count: 2, gpus: {k80: 2}}]}
                security:
                  cluster_key_env: BOURSE_DOOR_TEST_KEY

                """
            if tenants {
                yaml += """
                      tenants:
                        - {name: alice, token_sha256: \(try SecurityProcessTests.sha256Hex(SecurityProcessTests.aliceToken))}
                        - {name: bob, token_sha256: \(try SecurityProcessTests.sha256Hex(SecurityProcessTests.bobToken))}

                    """
            }
            config = directory.appendingPathComponent("cluster.yaml").path
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        var keyed: [String: String] { ["BOURSE_DOOR_TEST_KEY": SecurityProcessTests.secret] }

        /// A client command through --config, with the environment given.
        func client(_ arguments: [String], _ environment: [String: String]) throws -> RunResult {
            try runBourse(arguments + ["--config", config], timeout: .seconds(30), environment: environment)
        }
    }

    @Test("a gateway with a key refuses unsigned and forged submissions (UNAUTHORIZED), accepts signed ones; tenants are scoped; the secret is never logged")
    func gatewayDoor() async throws {
        let scratch = try Scratch(tenants: true)
        let db = scratch.directory.appendingPathComponent("gateway.db").path
        let gateway = try BourseProcess(["gateway", "--config", scratch.config, "--db", db], environment: scratch.keyed)
        defer { gateway.stop() }
        #expect(await gateway.waitForOutput("gateway listening on \(scratch.address)"), "\(gateway.stdout) \(gateway.stderr)")
        let submit = ["submit", "--job-type", Self.resnet, "--steps", "1000", "--workers", "1"]
        var outputs: [RunResult] = []

        // Unsigned: the config names the key variable, so a client without it cannot even start;
        // a client that only knows the gateway's address sends unsigned frames and is refused.
        let noKey = try runBourse(submit + ["--gateway", scratch.address, "--tenant-token", Self.aliceToken], timeout: .seconds(30))
        outputs.append(noKey)
        #expect(noKey.status != 0)
        #expect(noKey.stderr.contains("unauthorized") && noKey.stderr.contains("no HMAC"), "\(noKey.stderr)")
        let noKeyWithConfig = try scratch.client(submit, [:])
        outputs.append(noKeyWithConfig)
        #expect(noKeyWithConfig.status != 0)
        #expect(noKeyWithConfig.stderr.contains("BOURSE_DOOR_TEST_KEY"), "\(noKeyWithConfig.stderr)")

        // Forged: signed with another key.
        let forged = try scratch.client(
            submit + ["--tenant-token", Self.aliceToken], ["BOURSE_DOOR_TEST_KEY": "another-key-of-sufficient-length"])
        outputs.append(forged)
        #expect(forged.status != 0)
        #expect(forged.stderr.contains("cluster key") || forged.stderr.contains("unauthorized"), "\(forged.stderr)")

        // Signed, but no tenant token: UNAUTHORIZED on tenant_token.
        let noToken = try scratch.client(submit, scratch.keyed)
        outputs.append(noToken)
        #expect(noToken.status != 0 && noToken.stderr.contains("unauthorized: tenant_token"), "\(noToken.stderr)")

        // Signed with a token: accepted and stamped with the token's tenant (not --tenant's).
        let accepted = try scratch.client(submit + ["--tenant", "bob", "--tenant-token", Self.aliceToken], scratch.keyed)
        outputs.append(accepted)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        #expect(accepted.stdout.hasPrefix("submitted j-000001"), "\(accepted.stdout)")
        var bobEnvironment = scratch.keyed
        bobEnvironment["BOURSE_TENANT_TOKEN"] = Self.bobToken
        let bobSubmit = try scratch.client(submit, bobEnvironment)
        outputs.append(bobSubmit)
        #expect(bobSubmit.stdout.hasPrefix("submitted j-000002"), "\(bobSubmit.stdout) \(bobSubmit.stderr)")

        // Bob (token from the environment) neither sees nor cancels Alice's job.
        for command in [["status", "j-000001"], ["cancel", "j-000001"]] {
            let result = try scratch.client(command, bobEnvironment)
            outputs.append(result)
            #expect(result.status != 0 && result.stderr.contains("not found"), "\(command): \(result.stdout) \(result.stderr)")
        }
        let bobJobs = try scratch.client(["jobs", "--json"], bobEnvironment)
        outputs.append(bobJobs)
        let bobList = try JSONSerialization.jsonObject(with: Data(bobJobs.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(bobList.map { $0["job_id"] as? String } == ["j-000002"], "\(bobJobs.stdout) \(bobJobs.stderr)")

        // Alice sees hers (tenant alice) and cancels it.
        let aliceStatus = try scratch.client(["status", "j-000001", "--tenant-token", Self.aliceToken], scratch.keyed)
        outputs.append(aliceStatus)
        #expect(aliceStatus.status == 0 && aliceStatus.stdout.contains("alice"), "\(aliceStatus.stdout) \(aliceStatus.stderr)")
        let aliceCancel = try scratch.client(["cancel", "j-000001", "--tenant-token", Self.aliceToken], scratch.keyed)
        outputs.append(aliceCancel)
        #expect(aliceCancel.status == 0 && aliceCancel.stdout.contains("j-000001: cancelled"), "\(aliceCancel.stdout) \(aliceCancel.stderr)")

        // The gateway lived through it all, counted the refusals, and never logged a secret.
        #expect(gateway.process.isRunning)
        gateway.stop()
        let log = gateway.stdout + gateway.stderr
        #expect(log.contains("refused request #"), "\(log)")
        #expect(log.contains("bad hmac 2"), "\(log)")
        #expect(log.contains("cluster key from environment variable BOURSE_DOOR_TEST_KEY"), "\(log)")
        for secret in [Self.secret, Self.aliceToken, Self.bobToken, "another-key-of-sufficient-length"] {
            #expect(!log.contains(secret), "a secret is in the gateway's log")
            for output in outputs { #expect(!(output.stdout + output.stderr).contains(secret), "a secret is in a client's output") }
        }
    }

    @Test("bourse up with a key: shards, agents and clients sign; jobs complete; nothing legitimate is refused; no log has the key")
    func keyedCluster() async throws {
        let scratch = try Scratch(tenants: false)
        let runDir = scratch.directory.appendingPathComponent("run").path
        defer { _ = try? runBourse(["down", "--run-dir", runDir], timeout: .seconds(20)) }
        let up = try runBourse(["up", scratch.config, "--run-dir", runDir, "--policy", "fifo"], timeout: .seconds(60), environment: scratch.keyed)
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }
        #expect(!up.stdout.contains("running without a cluster key"))

        var ids: [String] = []
        for (steps, workers) in [(3000, 1), (2000, 2)] {
            let result = try scratch.client(["submit", "--job-type", Self.resnet, "--steps", "\(steps)", "--workers", "\(workers)"], scratch.keyed)
            #expect(result.status == 0, "\(result.stderr)")
            ids += result.stdout.split(separator: " ").dropFirst().prefix(1).map(String.init)
        }
        #expect(ids.count == 2)
        var completed = false
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline && !completed {
            let jobs = try scratch.client(["jobs", "--json"], scratch.keyed)
            let list = try JSONSerialization.jsonObject(with: Data(jobs.stdout.utf8)) as? [[String: Any]] ?? []
            completed = list.count == 2 && list.allSatisfy { $0["state"] as? String == "completed" }
            if !completed { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(completed, "jobs did not complete on a keyed cluster")

        // SWIM between signing shards works, and a keyed `members` is answered.
        let members = try runBourse(["members", "--run-dir", runDir], timeout: .seconds(20), environment: scratch.keyed)
        #expect(members.stdout.contains("SEEN BY shard-r0") && members.stdout.contains("SEEN BY shard-r1"), "\(members.stdout) \(members.stderr)")
        // An unsigned ping to a shard is refused with an error, not answered with the membership.
        let unsigned = try runBourse(["members", "--run-dir", runDir], timeout: .seconds(20), environment: ["BOURSE_DOOR_TEST_KEY": "wrong-key-but-long-enough"])
        #expect(!unsigned.stdout.contains("alive#"), "\(unsigned.stdout)")

        let down = try runBourse(["down", "--run-dir", runDir], timeout: .seconds(30))
        #expect(down.status == 0, "down: \(down.stderr)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []
        #expect(files.filter { $0.hasSuffix(".log") }.count == 5)
        for name in files {
            let text = (try? String(contentsOfFile: runDir + "/" + name, encoding: .utf8)) ?? ""
            #expect(!text.contains(Self.secret), "the cluster key is in \(name)")
            if name.hasSuffix(".log") {
                #expect(text.contains("messages are signed and checked with the cluster key"), "\(name)")
                // Legitimate traffic is never refused (replay window and re-stamped retries).
                let refused = text.split(separator: "\n").filter { line in
                    line.contains("refused a reply") || line.contains("refused the reply") || line.contains("replayed frame from")
                        || ["'shard-", "'agent-", "'gateway'"].contains { line.contains("unauthenticated frame from \($0)") }
                }
                #expect(refused.isEmpty, "\(name): \(refused.prefix(5))")
            }
        }
    }

    @Test("without a key the gateway says so once in its log and serves unsigned clients as before")
    func noKey() async throws {
        let scratch = try Scratch(tenants: false)
        // The same cluster without the security section, and no key in the environment.
        let config = scratch.directory.appendingPathComponent("open.yaml").path
        let yaml = try String(contentsOfFile: scratch.config, encoding: .utf8).components(separatedBy: "security:")[0]
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let db = scratch.directory.appendingPathComponent("open.db").path
        let gateway = try BourseProcess(["gateway", "--config", config, "--db", db], environment: ["BOURSE_CLUSTER_KEY": ""])
        defer { gateway.stop() }
        #expect(await gateway.waitForOutput("gateway listening on \(scratch.address)"), "\(gateway.stdout) \(gateway.stderr)")
        let submit = try runBourse(
            ["submit", "--job-type", Self.resnet, "--steps", "100", "--workers", "1", "--gateway", scratch.address],
            timeout: .seconds(30), environment: ["BOURSE_CLUSTER_KEY": ""])
        #expect(submit.status == 0 && submit.stdout.hasPrefix("submitted j-000001"), "\(submit.stdout) \(submit.stderr)")
        gateway.stop()
        let warnings = gateway.stderr.components(separatedBy: "running without a cluster key: messages are not authenticated").count - 1
        #expect(warnings == 1, "\(gateway.stderr)")
    }
}
