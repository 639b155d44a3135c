@testable import BourseGateway
import BourseWire
import Testing

@Suite("JobStore (SQLite)")
struct JobStoreTests {
    private func job(_ seq: Int64, key: String = "", tenant: String = "") -> JobRecord {
        JobRecord(
            seq: seq, id: JobRecord.id(forSeq: seq),
            spec: JobSpec(
                jobType: "ResNet-18 (batch size 32)", totalSteps: 1000, workers: 2, minWorkers: 1, maxWorkers: 4,
                tenant: tenant, weight: 1.5, arrivalTime: 12, slo: 3600, name: "résumé ✓"),
            idempotencyKey: key, state: .pending, homeShard: "shard-r0", submittedAt: 10, updatedAt: 10)
    }

    @Test("WAL, synchronous=FULL, schema version")
    func durabilitySettings() throws {
        let dir = try TempDirectory()
        let store = try JobStore(path: dir.path("s.db"))
        let settings = try store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)
    }

    @Test("jobs and history round-trip through a reopen")
    func roundTrip() throws {
        let dir = try TempDirectory()
        let path = dir.path("s.db")
        var running = job(1, key: "k")
        do {
            let store = try JobStore(path: path)
            try store.apply([
                .insertJob(job(1, key: "k")),
                .appendTransition(TransitionRecord(jobID: "j-000001", from: .unspecified, to: .pending, at: 10, reason: "submitted", source: "gateway")),
                .insertJob(job(2)),
            ])
            running.state = .running
            running.startedAt = 20
            running.stepsDone = 123.5
            running.checkpointSteps = 100
            running.restarts = 2
            running.placement = Placement(gpuType: "v100", gpuIDs: ["r0-n0-g0", "r0-n0-g1"], shardID: "shard-r0")
            try store.apply([
                .updateJob(running),
                .appendTransition(TransitionRecord(jobID: "j-000001", from: .pending, to: .running, at: 20, source: "shard-r0", transitionID: UInt64.max)),
            ])
            store.close()
        }
        let reopened = try JobStore(path: path)
        let snapshot = try reopened.loadSnapshot()
        #expect(snapshot.jobs == [running, job(2)])
        #expect(snapshot.appliedTransitions == [TransitionKey(source: "shard-r0", transitionID: UInt64.max)])
        #expect(try reopened.job(id: "j-000002") == job(2))
        #expect(try reopened.job(id: "nope") == nil)
        #expect(try reopened.jobs(states: [.running]).map(\.id) == ["j-000001"])
        let history = try reopened.history(jobID: "j-000001")
        #expect(history.map(\.to) == [.pending, .running])
        #expect(history[0].transitionID == nil && history[1].transitionID == UInt64.max)
    }

    @Test("a batch is all or nothing: a duplicate idempotency key rolls back the whole batch")
    func atomicBatch() throws {
        let store = try JobStore(path: ":memory:")
        try store.apply([.insertJob(job(1, key: "k", tenant: "t"))])
        #expect(throws: SQLiteError.self) {
            try store.apply([.insertJob(job(2)), .insertJob(job(3, key: "k", tenant: "t"))])
        }
        #expect(try store.jobs().map(\.seq) == [1])
        // The same key under another tenant is fine.
        try store.apply([.insertJob(job(2, key: "k", tenant: "u"))])
    }

    @Test("history is append-only and a shard's transition id is recorded once")
    func appendOnly() throws {
        let store = try JobStore(path: ":memory:")
        let t = TransitionRecord(jobID: "j-000001", from: .pending, to: .running, at: 1, source: "shard-r0", transitionID: 9)
        try store.apply([.insertJob(job(1)), .appendTransition(t)])
        do {
            try store.apply([.appendTransition(t)])
            Issue.record("a repeated transition id was stored")
        } catch {
            #expect(error.isConstraint)
            #expect(error.description.contains("UNIQUE"), "\(error)")
        }
        do {
            try store.executeRaw("UPDATE transitions SET reason = 'x'")
            Issue.record("history was updated")
        } catch {
            #expect(error.message.contains("append-only"))
            #expect(error.description.contains("UPDATE transitions"))
        }
        #expect(throws: SQLiteError.self) { try store.executeRaw("DELETE FROM transitions") }
        #expect(try store.history(jobID: "j-000001").count == 1)
    }

    @Test("errors name the operation and carry sqlite's message")
    func typedErrors() throws {
        let dir = try TempDirectory()
        do {
            _ = try JobStore(path: dir.path("missing/dir/s.db"))
            Issue.record("opened a store in a missing directory")
        } catch {
            #expect(error.operation.hasPrefix("open "))
            #expect(error.description.contains("unable to open"), "\(error)")
        }
        let store = try JobStore(path: ":memory:")
        store.close()
        #expect(throws: SQLiteError.self) { try store.jobs() }
    }

    @Test("a second gateway cannot open a store that is in use")
    func exclusive() throws {
        let dir = try TempDirectory()
        let first = try JobStore(path: dir.path("s.db"))
        do {
            _ = try JobStore(path: dir.path("s.db"))
            Issue.record("second open succeeded")
        } catch {
            #expect(error.isBusy, "\(error)")
        }
        first.close()
        _ = try JobStore(path: dir.path("s.db"))
    }
}
