import Foundation
import Testing

/// `bourse gateway` and its client commands as real processes.
@Suite("bourse gateway between processes", .serialized)
struct GatewayProcessTests {
    static let resnet = "ResNet-18 (batch size 32)"

    /// A scratch directory with a cluster config whose gateway listens on a fresh address.
    final class Scratch {
        let directory: URL
        let config: String
        let db: String
        let address: String

        init(tcp: Bool = false) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-gw-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            address = tcp ? "tcp://127.0.0.1:\(freeLoopbackPort())" : uniqueIPCAddress("gateway")
            let base = try String(
                contentsOf: repoRoot.appendingPathComponent("cluster-configs/gavel-4-4-4.yaml"), encoding: .utf8)
            #expect(base.contains("tcp://127.0.0.1:7800"))
            config = directory.appendingPathComponent("cluster.yaml").path
            try base.replacingOccurrences(of: "tcp://127.0.0.1:7800", with: address)
                .write(toFile: config, atomically: true, encoding: .utf8)
            db = directory.appendingPathComponent("gateway.db").path
        }

        deinit { try? FileManager.default.removeItem(at: directory) }

        func startGateway() async throws -> BourseProcess {
            let gateway = try BourseProcess(["gateway", "--config", config, "--db", db])
            let ready = await gateway.waitForOutput("gateway listening on \(address), store \(db)")
            #expect(ready, "gateway did not start: \(gateway.stdout) \(gateway.stderr)")
            return gateway
        }

        /// Runs a client command against this scratch's gateway (found through --config).
        func client(_ arguments: [String]) throws -> RunResult {
            try runBourse(arguments + ["--config", config], timeout: .seconds(30))
        }

        func submit(_ extra: [String] = [], type: String = GatewayProcessTests.resnet, steps: Int = 1000, workers: Int = 2) throws -> RunResult {
            try client(["submit", "--job-type", type, "--steps", "\(steps)", "--workers", "\(workers)"] + extra)
        }

        /// job id -> state, from `bourse jobs --json`.
        func states() throws -> [String: String] {
            let result = try client(["jobs", "--json"])
            #expect(result.status == 0, "jobs: \(result.stderr)")
            let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
            var states: [String: String] = [:]
            for job in list { states[job["job_id"] as? String ?? "?"] = job["state"] as? String ?? "?" }
            return states
        }
    }

    /// The job id in "submitted j-000001 (home shard ...)".
    private func jobID(_ result: RunResult) -> String? {
        result.stdout.split(separator: " ").dropFirst().first.map(String.init)
    }

    @Test("acknowledged submissions survive a SIGKILL of the gateway and a restart on the same store")
    func sigkillRestart() async throws {
        let scratch = try Scratch()
        var gateway = try await scratch.startGateway()
        var acknowledged: [String] = []
        for i in 0..<8 {
            let extra = i % 2 == 0 ? ["--idempotency-key", "key-\(i)", "--tenant", "t\(i % 3)"] : ["--max-workers", "4"]
            let result = try scratch.submit(extra, steps: 1000 + i)
            #expect(result.status == 0, "submit \(i): \(result.stderr)")
            #expect(result.stdout.hasPrefix("submitted j-"), "\(result.stdout)")
            acknowledged.append(try #require(jobID(result)))
        }
        #expect(acknowledged == (1...8).map { String(format: "j-%06d", $0) })
        for id in [acknowledged[2], acknowledged[5]] {
            let cancel = try scratch.client(["cancel", id])
            #expect(cancel.status == 0 && cancel.stdout.contains("\(id): cancelled"), "\(cancel.stdout) \(cancel.stderr)")
        }
        let before = try scratch.states()
        #expect(before.count == 8)
        #expect(before[acknowledged[2]] == "cancelled" && before[acknowledged[0]] == "pending")

        // Kill it hard, immediately after the last acknowledgement, and restart on the same store.
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        #expect(gateway.process.terminationReason == .uncaughtSignal)
        gateway = try await scratch.startGateway()
        #expect(gateway.stderr.contains("8 jobs in the store"), "\(gateway.stderr)")

        let after = try scratch.states()
        #expect(after == before, "before the kill: \(before), after the restart: \(after)")
        // A retried submission still returns its job; new jobs continue the numbering.
        let retry = try scratch.submit(["--idempotency-key", "key-4", "--tenant", "t1"], steps: 1004)
        #expect(jobID(retry) == acknowledged[4], "\(retry.stdout) \(retry.stderr)")
        let next = try scratch.submit()
        #expect(jobID(next) == "j-000009", "\(next.stdout) \(next.stderr)")
        let status = try scratch.client(["status", acknowledged[5]])
        #expect(status.status == 0)
        #expect(status.stdout.contains("cancelled"), "\(status.stdout)")
        #expect(gateway.process.isRunning)
    }

    @Test("a SIGKILL in the middle of concurrent submissions loses no acknowledged job")
    func sigkillUnderLoad() async throws {
        let scratch = try Scratch()
        let gateway = try await scratch.startGateway()
        var clients: [(steps: Int, process: BourseProcess)] = []
        for i in 0..<12 {
            let steps = 100 + i
            clients.append((steps, try BourseProcess([
                "submit", "--config", scratch.config, "--job-type", Self.resnet, "--steps", "\(steps)", "--workers", "1",
                "--timeout-ms", "3000",
            ])))
        }
        // Kill the gateway as soon as a few submissions have been acknowledged.
        let deadline = ContinuousClock.now + .seconds(30)
        while clients.filter({ $0.process.stdout.contains("submitted") }).count < 3 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        kill(gateway.process.processIdentifier, SIGKILL)
        gateway.process.waitUntilExit()
        var acknowledged: [String: Int] = [:]  // job id -> steps
        for client in clients {
            let result = await client.process.wait(timeout: .seconds(30))
            if result.status == 0, let id = jobID(result) { acknowledged[id] = client.steps }
        }
        #expect(acknowledged.count >= 3)
        let restarted = try await scratch.startGateway()
        let listing = try scratch.client(["jobs", "--json"])
        let jobs = try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]] ?? []
        var stored: [String: Int] = [:]
        for job in jobs { stored[job["job_id"] as? String ?? "?"] = job["total_steps"] as? Int ?? -1 }
        for (id, steps) in acknowledged {
            #expect(stored[id] == steps, "acknowledged \(id) (\(steps) steps) is missing or different after the restart: \(stored)")
        }
        #expect(restarted.process.isRunning)
        print("sigkill under load: \(acknowledged.count) of \(clients.count) submissions acknowledged, \(stored.count) jobs stored after the restart")
    }

    @Test("bad submissions get a clear error naming the field; nothing is stored")
    func validation() async throws {
        let scratch = try Scratch()
        let gateway = try await scratch.startGateway()
        let cases: [([String], String)] = [
            (["submit", "--job-type", "GPT-17", "--steps", "10", "--workers", "1"], "spec.job_type: unknown job type 'GPT-17'"),
            (["submit", "--job-type", Self.resnet, "--steps", "0", "--workers", "1"], "spec.total_steps"),
            (["submit", "--job-type", Self.resnet, "--steps", "10", "--workers", "2", "--max-workers", "16"],
             "spec.max_workers: elastic range [2, 16] is outside the throughput table"),
            (["submit", "--job-type", Self.resnet, "--steps", "10", "--workers", "3"], "spec.workers"),
        ]
        for (arguments, expected) in cases {
            let result = try scratch.client(arguments)
            #expect(result.status != 0, "\(arguments) was accepted: \(result.stdout)")
            #expect(result.stderr.contains("invalid request: \(expected)"), "\(arguments): \(result.stderr)")
        }
        #expect(try scratch.states().isEmpty)
        #expect(gateway.stderr.contains("rejected a submission: spec.job_type"), "\(gateway.stderr)")
    }

    @Test("jobs, status and cancel: tables, JSON, unknown jobs, finished jobs")
    func clientCommands() async throws {
        let scratch = try Scratch(tcp: true)
        let gateway = try await scratch.startGateway()
        _ = gateway
        #expect(try scratch.submit().status == 0)
        #expect(try scratch.submit(["--tenant", "alice"], type: "A3C", steps: 50, workers: 1).status == 0)
        let table = try scratch.client(["jobs"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("JOB"), "\(table.stdout)")
        #expect(table.stdout.contains("j-000002  pending"), "\(table.stdout)")
        #expect(table.stdout.contains("2 jobs: 2 pending"), "\(table.stdout)")
        // The first job goes to the first rack's shard, the next to the least-loaded one.
        #expect(table.stdout.contains("shard-v100") && table.stdout.contains("shard-p100"), "\(table.stdout)")
        // --gateway works as well as --config.
        let direct = try runBourse(["status", "j-000002", "--gateway", scratch.address, "--json"])
        let object = try JSONSerialization.jsonObject(with: Data(direct.stdout.utf8)) as? [String: Any]
        #expect(object?["tenant"] as? String == "alice" && object?["state"] as? String == "pending", "\(direct.stdout)")
        let missing = try scratch.client(["status", "j-424242"])
        #expect(missing.status != 0 && missing.stderr.contains("not found: job_id: no job 'j-424242'"), "\(missing.stderr)")
        #expect(try scratch.client(["cancel", "j-000001"]).stdout.contains("j-000001: cancelled"))
        let twice = try scratch.client(["cancel", "j-000001"])
        #expect(twice.status == 0 && twice.stdout.contains("j-000001: cancelled"))
        let filtered = try scratch.client(["jobs", "--state", "cancelled"])
        #expect(filtered.stdout.contains("j-000001") && !filtered.stdout.contains("j-000002"), "\(filtered.stdout)")
        // A run directory without a `bourse up` in it: the error says so (whatever the last
        // `bourse up` on this machine was).
        let emptyRun = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-norun-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: emptyRun, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: emptyRun) }
        let noGateway = try runBourse(["jobs", "--run-dir", emptyRun])
        #expect(noGateway.status != 0 && noGateway.stderr.contains("bourse up"), "\(noGateway.stderr)")
        let trace = try runBourse(["submit", "--trace", "no-such.trace", "--gateway", scratch.address, "--speedup", "100"])
        #expect(trace.status != 0 && trace.stderr.contains("no-such.trace"), "\(trace.stderr)")
        let both = try runBourse(["submit", "--trace", "x.trace", "--job-type", "A3C", "--gateway", scratch.address])
        #expect(both.status != 0 && both.stderr.contains("either --trace FILE or one job"), "\(both.stderr)")
    }

    @Test("garbage frames are answered, counted and logged; the gateway lives on")
    func garbage() async throws {
        let scratch = try Scratch(tcp: true)
        let gateway = try await scratch.startGateway()
        let fuzz = try runBourse(["wire", "fuzz", scratch.address, "--frames", "200", "--seed", "5"], timeout: .seconds(90))
        #expect(fuzz.status == 0, "fuzz: \(fuzz.stdout) \(fuzz.stderr)")
        #expect(fuzz.stdout.contains("target still answers pings: ok"), "\(fuzz.stdout)")
        #expect(gateway.process.isRunning)
        let logged = gateway.stderr.split(separator: "\n").filter { $0.contains("dropped malformed frame") }.count
        #expect(logged > 100, "the gateway logged \(logged) malformed frames")
        let submit = try scratch.submit()
        #expect(submit.status == 0, "\(submit.stderr)")
    }

    @Test("a second gateway on the same store refuses to start")
    func storeInUse() async throws {
        let scratch = try Scratch()
        let gateway = try await scratch.startGateway()
        _ = gateway
        let second = try runBourse(
            ["gateway", "--config", scratch.config, "--db", scratch.db, "--listen", uniqueIPCAddress("second")],
            timeout: .seconds(30))
        #expect(second.status != 0)
        #expect(second.stderr.contains("another gateway has this store open"), "\(second.stderr)")
    }
}
