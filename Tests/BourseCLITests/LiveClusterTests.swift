import Foundation
import Testing

/// `bourse up` a tiny cluster (gateway, 2 shards, 2 agents as real processes on loopback), run
/// jobs through it, `bourse down`.
@Suite("live cluster between processes", .serialized)
struct LiveClusterTests {
    static let resnet = "ResNet-18 (batch size 32)"

    /// A scratch directory with a 2-rack config on fresh loopback ports.
    final class Scratch {
        let directory: URL
        let config: String
        let runDir: String

        init(speedup: Int = 600, racks: [String] = ["v100", "k80"]) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("bourse-live-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let ports = (0..<(1 + 2 * racks.count)).map { _ in freeLoopbackPort() }
            var yaml = """
                name: live-test
                round_seconds: 360
                speedup: \(speedup)
                restart_seconds: 30
                gpu_types:
                  - {name: v100}
                  - {name: p100}
                  - {name: k80}
                gateway: {address: "tcp://127.0.0.1:\(ports[0])"}
                racks:

                """
            for (i, type) in racks.enumerated() {
                yaml += """
                      - id: r\(i)
                        shard: "tcp://127.0.0.1:\(ports[1 + 2 * i])"
                        agent: "tcp://127.0.0.1:\(ports[2 + 2 * i])"
                        nodes:
                          - {prefix: r\(i)-n, count: 2, gpus: {\(type): 2}}

                    """
            }
            config = directory.appendingPathComponent("cluster.yaml").path
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            runDir = directory.appendingPathComponent("run").path
        }

        deinit {
            // Whatever happened, stop the processes (a no-op when the test already did).
            _ = try? runBourse(["down", "--run-dir", runDir], timeout: .seconds(20))
            try? FileManager.default.removeItem(at: directory)
        }

        func client(_ arguments: [String]) throws -> RunResult {
            try runBourse(arguments + ["--config", config], timeout: .seconds(30))
        }

        /// job id -> (state, finished_at) from `bourse jobs --json`.
        func jobs() throws -> [String: (state: String, finishedAt: Double)] {
            let result = try client(["jobs", "--json"])
            #expect(result.status == 0, "jobs: \(result.stderr)")
            let list = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
            var out: [String: (String, Double)] = [:]
            for job in list {
                out[job["job_id"] as? String ?? "?"] = (job["state"] as? String ?? "?", job["finished_at"] as? Double ?? 0)
            }
            return out
        }

        func logs() -> String {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: runDir)) ?? []
            return names.filter { $0.hasSuffix(".log") }.sorted().map { name in
                let text = (try? String(contentsOfFile: runDir + "/" + name, encoding: .utf8)) ?? ""
                return "== \(name)\n" + text.split(separator: "\n").suffix(15).joined(separator: "\n")
            }.joined(separator: "\n")
        }
    }

    @Test("up, submit jobs, every job completes once, members and nodes answer, down")
    func endToEnd() async throws {
        let scratch = try Scratch()
        let up = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        #expect(up.stdout.contains("cluster 'live-test' is up"), "\(up.stdout)")
        #expect(up.stdout.contains("logs:  \(scratch.runDir)/*.log"))
        guard up.status == 0 else { return }

        // Garbage to a shard and an agent: counted, answered with errors, the processes live on.
        let state = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: scratch.runDir + "/bourse-up.json"))) as? [String: Any]
        let processes = state?["processes"] as? [[String: Any]] ?? []
        for id in ["shard-r0", "agent-r1"] {
            let address = try #require(processes.first { $0["id"] as? String == id }?["address"] as? String)
            let fuzz = try runBourse(["wire", "fuzz", address, "--frames", "200", "--seed", "5"], timeout: .seconds(60))
            #expect(fuzz.status == 0 && fuzz.stdout.contains("target still answers pings: ok"), "\(id): \(fuzz.stdout) \(fuzz.stderr)")
        }

        // Six jobs: 1- and 2-worker, a 4-worker one that fills a rack.
        let shapes: [(steps: Int, workers: Int)] = [(4000, 1), (3000, 2), (6000, 1), (2000, 4), (5000, 2), (3000, 1)]
        var submitted: [String] = []
        for shape in shapes {
            let result = try scratch.client(
                ["submit", "--job-type", Self.resnet, "--steps", "\(shape.steps)", "--workers", "\(shape.workers)"])
            #expect(result.status == 0, "submit: \(result.stderr)")
            if let id = result.stdout.split(separator: " ").dropFirst().first { submitted.append(String(id)) }
        }
        #expect(submitted.count == shapes.count)

        let deadline = ContinuousClock.now + .seconds(90)
        var jobs = try scratch.jobs()
        while ContinuousClock.now < deadline && !(jobs.count == shapes.count && jobs.values.allSatisfy { $0.state == "completed" }) {
            try await Task.sleep(for: .milliseconds(500))
            jobs = try scratch.jobs()
        }
        #expect(jobs.count == shapes.count)
        #expect(jobs.values.allSatisfy { $0.state == "completed" && $0.finishedAt > 0 }, "\(jobs)\n\(scratch.logs())")

        let members = try runBourse(["members", "--run-dir", scratch.runDir], timeout: .seconds(20))
        #expect(members.status == 0, "members: \(members.stderr)")
        #expect(members.stdout.contains("SEEN BY shard-r0") && members.stdout.contains("SEEN BY shard-r1"), "\(members.stdout)")
        #expect(members.stdout.split(separator: "\n").filter { $0.hasPrefix("shard-r") && $0.contains("alive#") }.count >= 2)

        let nodes = try runBourse(["nodes", "--run-dir", scratch.runDir], timeout: .seconds(20))
        #expect(nodes.status == 0, "nodes: \(nodes.stderr)")
        for node in ["r0-n0", "r0-n1", "r1-n0", "r1-n1"] { #expect(nodes.stdout.contains(node), "\(nodes.stdout)") }

        for log in ["shard-r0.log", "agent-r1.log"] {
            let text = (try? String(contentsOfFile: scratch.runDir + "/" + log, encoding: .utf8)) ?? ""
            #expect(text.contains("dropped malformed frame #"), "\(log)")
        }

        // The shards trade (policy bourse, two racks): their markets' totals reach `bourse report`.
        let report = try scratch.client(["report", "--json"])
        #expect(report.status == 0, "report: \(report.stderr)")
        let fields = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        let trading = fields?["trading"] as? [String: Any]
        #expect((trading?["shards"] as? Int) == 2 && (trading?["rounds"] as? Int ?? 0) >= 1, "\(report.stdout)")

        // A second cluster on the same addresses is refused before anything starts.
        let again = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir + "-again"], timeout: .seconds(30))
        #expect(again.status != 0 && again.stderr.contains("already answers"), "\(again.stdout) \(again.stderr)")

        let down = try runBourse(["down", "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(down.status == 0, "down: \(down.stderr)")
        #expect(down.stdout.contains("stopped 5 of 5 processes"), "\(down.stdout)")
    }

    /// pid of `id` from the run directory's state file.
    func pid(_ scratch: Scratch, _ id: String) throws -> Int32 {
        let data = try Data(contentsOf: URL(fileURLWithPath: scratch.runDir + "/bourse-up.json"))
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let processes = object?["processes"] as? [[String: Any]] ?? []
        let pid = processes.first { $0["id"] as? String == id }?["pid"] as? Int
        return Int32(try #require(pid))
    }

    @Test("SIGKILL of a shard: SWIM declares it dead, its successor adopts the rack, every job completes exactly once")
    func shardFailover() async throws {
        let scratch = try Scratch(racks: ["v100", "p100", "k80"])
        let up = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }
        var homes: [String: String] = [:]
        for i in 0..<9 {
            let result = try scratch.client(
                ["submit", "--job-type", Self.resnet, "--steps", "\(40000 + 5000 * i)", "--workers", "\(1 + i % 2)"])
            #expect(result.status == 0, "submit: \(result.stderr)")
            let words = result.stdout.split(separator: " ")
            if words.count > 1 { homes[String(words[1])] = result.stdout.contains("shard-r1") ? "shard-r1" : "other" }
        }
        // Kill shard-r1 once one of its home jobs runs.
        let r1Jobs = homes.filter { $0.value == "shard-r1" }.map(\.key)
        #expect(!r1Jobs.isEmpty)
        var deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !(try scratch.jobs()).contains(where: { r1Jobs.contains($0.key) && $0.value.state == "running" }) {
            try await Task.sleep(for: .milliseconds(100))
        }
        kill(try pid(scratch, "shard-r1"), SIGKILL)
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch.runDir + "/bourse-up.json")))
        let epoch = try #require((state as? [String: Any])?["epoch"] as? Double)
        let killedAt = Date().timeIntervalSince1970 - epoch

        // Every other shard sees it dead: polled until both say so.
        deadline = ContinuousClock.now + .seconds(20)
        var members = RunResult(status: -1, stdout: "", stderr: "")
        while ContinuousClock.now < deadline {
            members = try runBourse(["members", "--run-dir", scratch.runDir, "--timeout-ms", "150"], timeout: .seconds(10))
            let line = members.stdout.split(separator: "\n").first { $0.hasPrefix("shard-r1 ") } ?? ""
            if line.components(separatedBy: "dead#").count == 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let line = members.stdout.split(separator: "\n").first { $0.hasPrefix("shard-r1 ") } ?? ""
        #expect(line.components(separatedBy: "dead#").count == 3, "\(members.stdout)")
        // Issue 5: probe period 500 ms, a killed member seen dead by every other within 5 s. When
        // each declared it dead comes from its log (wall seconds since the epoch, to the ms), not
        // from when a poll returned: polls measured the `bourse members` process too, and CI on a
        // busy 2-core machine measured 5.45 s that way. CI's later 5.5 s and 5.8 s were SWIM's own:
        // a probe timed from a late tick lost its verdict to the next probe (SWIMInstance.tick).
        let declared = try ["shard-r0", "shard-r2"].map { shard -> Double in
            let text = (try? String(contentsOfFile: scratch.runDir + "/\(shard).log", encoding: .utf8)) ?? ""
            let death = text.split(separator: "\n").last { $0.contains("member shard-r1 (shard)") && $0.contains("-> dead") }
            let wall = death?.components(separatedBy: " at wall ").last?.split(separator: " ").first.flatMap { Double($0) }
            return try #require(wall, "\(shard) logged no death of shard-r1 with its time: \(death ?? "")")
        }
        let detection = declared.max()! - killedAt
        print("shard failover: shard-r1 seen dead by both others \(detection) s after the kill (\(declared.map { $0 - killedAt }))")
        #expect(detection < 5, "seen dead by both others \(detection) s after the kill (\(declared.map { $0 - killedAt }))")

        // All jobs complete, each exactly once, r1 adopted by r2.
        deadline = ContinuousClock.now + .seconds(120)
        var jobs = try scratch.jobs()
        while ContinuousClock.now < deadline && !(jobs.count == 9 && jobs.values.allSatisfy { $0.state == "completed" }) {
            try await Task.sleep(for: .milliseconds(500))
            jobs = try scratch.jobs()
        }
        #expect(jobs.count == 9 && jobs.values.allSatisfy { $0.state == "completed" }, "\(jobs)\n\(scratch.logs())")
        let gatewayLog = (try? String(contentsOfFile: scratch.runDir + "/gateway.log", encoding: .utf8)) ?? ""
        for id in jobs.keys {
            let completions = gatewayLog.split(separator: "\n").filter { $0.contains("\(id): ") && $0.contains("-> completed") }
            #expect(completions.count == 1, "\(id) completed \(completions.count) times")
        }
        let adopter = (try? String(contentsOfFile: scratch.runDir + "/shard-r2.log", encoding: .utf8)) ?? ""
        #expect(adopter.contains("adopted rack r1"), "\(scratch.logs())")
        let agent = (try? String(contentsOfFile: scratch.runDir + "/agent-r1.log", encoding: .utf8)) ?? ""
        #expect(agent.contains("registered with shard-r2"))

        let down = try runBourse(["down", "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(down.stdout.contains("stopped 6 of 7 processes"), "\(down.stdout)")
    }

    @Test("a job on the other rack's lease is handed over to that rack's shard without a restart, and completes once there")
    func leasedJobIsHandedOver() async throws {
        let scratch = try Scratch()  // r0: 4 V100s, r1: 4 K80s
        let up = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }
        // Two jobs, so one has the K80 rack as its home; it gains from r0's V100s.
        var onK80: String?
        for _ in 0..<2 {
            let submitted = try scratch.client(["submit", "--job-type", Self.resnet, "--steps", "150000", "--workers", "1"])
            #expect(submitted.status == 0, "submit: \(submitted.stderr)")
            if submitted.stdout.contains("shard-r1") { onK80 = submitted.stdout.split(separator: " ").dropFirst().first.map(String.init) }
        }
        let id = try #require(onK80, "no job homed at r1")
        let deadline = ContinuousClock.now + .seconds(90)
        var jobs = try scratch.jobs()
        while ContinuousClock.now < deadline && jobs.values.contains(where: { $0.state != "completed" }) {
            try await Task.sleep(for: .milliseconds(500))
            jobs = try scratch.jobs()
        }
        #expect(jobs[id]?.state == "completed", "\(jobs)\n\(scratch.logs())")
        func log(_ name: String) -> String { (try? String(contentsOfFile: scratch.runDir + "/\(name).log", encoding: .utf8)) ?? "" }
        #expect(log("shard-r1").contains("\(id) handed over to shard-r0"), "\(scratch.logs())")
        #expect(log("shard-r0").contains("\(id) taken over from shard-r1"), "\(scratch.logs())")
        // r0 completed and reported it as its own; its agent started it once (no restart at the hand-over).
        let gatewayLog = log("gateway").split(separator: "\n").filter { $0.contains("\(id): ") }
        #expect(gatewayLog.filter { $0.contains("-> completed") }.count == 1, "\(gatewayLog)")
        #expect(gatewayLog.contains { $0.contains("-> completed") && $0.contains("shard-r0") }, "\(gatewayLog)")
        let starts = log("agent-r0").split(separator: "\n").filter { $0.contains("start \(id) ") }
        #expect(starts.count == 1, "\(starts)")
        let down = try runBourse(["down", "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(down.stdout.contains("stopped 5 of 5 processes"), "\(down.stdout)")
    }

    @Test("a job wider than any rack runs on two racks' agents through a trade and completes once")
    func jobAcrossRacks() async throws {
        let scratch = try Scratch(racks: ["v100", "v100"])  // 4 V100s per rack
        let up = try runBourse(["up", scratch.config, "--run-dir", scratch.runDir], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }
        let wide = try scratch.client(["submit", "--job-type", Self.resnet, "--steps", "300000", "--workers", "8"])
        #expect(wide.status == 0, "submit: \(wide.stderr)")
        let id = String(try #require(wide.stdout.split(separator: " ").dropFirst().first))
        let home = wide.stdout.contains("shard-r0") ? "r0" : "r1"
        let other = home == "r0" ? "r1" : "r0"
        let deadline = ContinuousClock.now + .seconds(60)
        var jobs = try scratch.jobs()
        // While it runs, `bourse status` lists the GPUs of both racks' parts.
        var placed: Set<String> = []
        while ContinuousClock.now < deadline && jobs[id]?.state != "completed" {
            try await Task.sleep(for: .milliseconds(500))
            let status = try scratch.client(["status", id, "--json"])
            let fields = try? JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
            let gpus = (fields?["placement"] as? [String: Any])?["gpu_ids"] as? [String] ?? []
            if gpus.count > placed.count { placed = Set(gpus) }
            jobs = try scratch.jobs()
        }
        #expect(jobs[id]?.state == "completed", "\(jobs)\n\(scratch.logs())")
        #expect(placed.count == 8 && Set(placed.map { $0.prefix(2) }) == ["r0", "r1"], "placement seen: \(placed.sorted())")
        func log(_ name: String) -> String { (try? String(contentsOfFile: scratch.runDir + "/\(name).log", encoding: .utf8)) ?? "" }
        let gatewayLog = log("gateway").split(separator: "\n").filter { $0.contains("\(id): ") }
        #expect(gatewayLog.filter { $0.contains("-> completed") }.count == 1, "\(gatewayLog)")
        #expect(gatewayLog.contains { $0.contains("spread over racks: 4 of its 8 GPUs here") }, "\(gatewayLog)")
        #expect(log("shard-\(home)").contains("no rack can run it alone; trading places it across racks"))
        #expect(log("shard-\(other)").contains("guest \(id) of shard-\(home) runs here on a lease"), "\(scratch.logs())")
        // The silent part stops when its shard next polls the gateway (its next round).
        let stopBy = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < stopBy && !log("shard-\(other)").contains("\(id) is no longer unfinished at the gateway (finished)") {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(log("shard-\(other)").contains("\(id) is no longer unfinished at the gateway (finished)"), "\(scratch.logs())")
        #expect(log("agent-\(other)").contains("stop \(id)"), "\(scratch.logs())")
        let report = try scratch.client(["report", "--json"])
        let fields = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
        let trading = fields?["trading"] as? [String: Any]
        #expect((trading?["leases_granted"] as? Int ?? 0) >= 2, "\(report.stdout)")
        let down = try runBourse(["down", "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(down.stdout.contains("stopped 5 of 5 processes"), "\(down.stdout)")
    }

    @Test("a node fails under a running job: it restarts elsewhere from its checkpoint and completes")
    func nodeFailure() async throws {
        let scratch = try Scratch()
        let up = try runBourse(
            ["up", scratch.config, "--run-dir", scratch.runDir, "--fail-node", "r0-n0@1200"], timeout: .seconds(60))
        #expect(up.status == 0, "up: \(up.stdout) \(up.stderr)")
        guard up.status == 0 else { return }
        // Homes alternate r0, r1, r0: two long v100 jobs fill r0, a short one runs on r1.
        for steps in [300_000, 20_000, 300_000] {
            let result = try scratch.client(["submit", "--job-type", Self.resnet, "--steps", "\(steps)", "--workers", "2"])
            #expect(result.status == 0, "submit: \(result.stderr)")
        }
        let deadline = ContinuousClock.now + .seconds(90)
        var jobs = try scratch.jobs()
        while ContinuousClock.now < deadline && !(jobs.count == 3 && jobs.values.allSatisfy { $0.state == "completed" }) {
            try await Task.sleep(for: .milliseconds(500))
            jobs = try scratch.jobs()
        }
        #expect(jobs.count == 3 && jobs.values.allSatisfy { $0.state == "completed" }, "\(jobs)\n\(scratch.logs())")
        let gatewayLog = (try? String(contentsOfFile: scratch.runDir + "/gateway.log", encoding: .utf8)) ?? ""
        #expect(gatewayLog.contains("node failed; back to the queue from its checkpoint"), "\(scratch.logs())")
        let nodes = try runBourse(["nodes", "--run-dir", scratch.runDir], timeout: .seconds(20))
        #expect(nodes.stdout.split(separator: "\n").contains { $0.hasPrefix("r0-n0") && $0.contains("failed") }, "\(nodes.stdout)")
        let down = try runBourse(["down", "--run-dir", scratch.runDir], timeout: .seconds(30))
        #expect(down.stdout.contains("stopped 5 of 5 processes"), "\(down.stdout)")
    }
}
