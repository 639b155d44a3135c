import BourseGateway
import BourseWire
import Testing

/// The gateway's logic as a pure state machine: requests in, state + decisions out.
@Suite("GatewayCore")
struct GatewayCoreTests {
    @Test("a submission gets a monotonic id, a home shard, and two writes (job + history)")
    func submitAssigns() throws {
        var core = GatewayCore(settings: testSettings)
        let d = core.handle(submit(spec()), now: 10)
        let ack = try #require(d.reply.submitAck)
        #expect(ack.jobID == "j-000001")
        #expect(ack.homeShard == "shard-r0")
        #expect(d.writes.count == 2)
        guard case .insertJob(let job) = d.writes[0], case .appendTransition(let t) = d.writes[1] else {
            Issue.record("unexpected writes \(d.writes)")
            return
        }
        #expect(job.state == .pending && job.submittedAt == 10 && job.seq == 1)
        #expect(t.from == .unspecified && t.to == .pending && t.transitionID == nil && t.source == "gateway")
        #expect(d.notices == [.newJob(shard: "shard-r0", job: job.status)])
        #expect(core.job("j-000001")?.state == .pending)
    }

    @Test("home shards: least unfinished jobs first, ties in config order")
    func homeShards() {
        var core = GatewayCore(settings: testSettings)
        let homes = (0..<6).map { _ in core.handle(submit(spec()), now: 1).reply.submitAck?.homeShard ?? "" }
        #expect(homes == ["shard-r0", "shard-r1", "shard-r2", "shard-r0", "shard-r1", "shard-r2"])
        // A finished job frees its shard: the next job goes there.
        _ = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-000002"))), now: 2)
        #expect(core.handle(submit(spec()), now: 3).reply.submitAck?.homeShard == "shard-r1")
        #expect(core.shardLoad == ["shard-r0": 2, "shard-r1": 2, "shard-r2": 2])
    }

    @Test("a retried submission with the same idempotency key returns the same job and writes nothing")
    func idempotentSubmission() throws {
        var core = GatewayCore(settings: testSettings)
        let first = core.handle(submit(spec(), key: "k1"), now: 1)
        let again = core.handle(submit(spec(), key: "k1"), now: 2)
        #expect(again.reply == first.reply)
        #expect(again.writes.isEmpty)
        #expect(core.jobCount == 1)
        #expect(core.stats.duplicateSubmissions == 1)
        // Another tenant's key space is separate.
        let other = core.handle(submit(spec(tenant: "b"), key: "k1"), now: 3)
        #expect(other.reply.submitAck?.jobID == "j-000002")
        // The same key with a different spec is an error naming the field.
        let changed = core.handle(submit(spec(steps: 5), key: "k1"), now: 4)
        #expect(changed.reply.errorMessage?.field == "idempotency_key")
        #expect(changed.writes.isEmpty)
    }

    @Test(
        "validation errors are INVALID and name the field",
        arguments: [
            (spec("GPT-9"), "spec.job_type", "unknown job type 'GPT-9'"),
            (spec(""), "spec.job_type", "required"),
            (spec(steps: 0), "spec.total_steps", "> 0"),
            (spec(workers: 0), "spec.workers", ">= 1"),
            (spec(workers: 3), "spec.workers", "has 1, 2, 4, 8"),
            (spec(workers: 2, max: 16), "spec.max_workers", "outside the throughput table"),
            (spec("CycleGAN", workers: 1, max: 2), "spec.max_workers", "outside the throughput table"),
            (spec(workers: 2, min: 4, max: 8), "spec.min_workers", "above workers"),
            (spec(workers: 4, max: 2), "spec.max_workers", "below workers"),
        ])
    func validation(bad: JobSpec, field: String, text: String) throws {
        var core = GatewayCore(settings: testSettings)
        let d = core.handle(submit(bad), now: 1)
        let error = try #require(d.reply.errorMessage)
        #expect(error.code == .invalid)
        #expect(error.field == field)
        #expect(error.message.contains(text), "\(error.message)")
        #expect(d.writes.isEmpty)
        #expect(core.jobCount == 0)
        #expect(core.stats.rejected == 1)
    }

    @Test("a submission without a spec names the spec field; an elastic range inside the table is fine")
    func specPresenceAndElastic() {
        var core = GatewayCore(settings: testSettings)
        #expect(core.handle(submit(nil), now: 1).reply.errorMessage?.field == "spec")
        #expect(core.handle(submit(spec(workers: 2, min: 1, max: 8)), now: 1).reply.submitAck != nil)
    }

    @Test("cancel: pending becomes cancelled; cancelled and completed jobs stay as they are")
    func cancelSemantics() throws {
        var core = GatewayCore(settings: testSettings)
        _ = core.handle(submit(spec()), now: 1)
        _ = core.handle(submit(spec()), now: 1)
        let cancel = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-000001"))), now: 5)
        #expect(cancel.reply.cancelAck == CancelAck(jobID: "j-000001", state: .cancelled))
        #expect(cancel.writes.count == 2)
        #expect(cancel.notices == [.cancelled(shard: "shard-r0", jobID: "j-000001")])
        #expect(core.job("j-000001")?.finishedAt == 5)
        // Again: same answer, nothing written.
        let again = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-000001"))), now: 6)
        #expect(again.reply.cancelAck?.state == .cancelled)
        #expect(again.writes.isEmpty)
        // Running jobs can be cancelled; completed ones cannot.
        _ = core.handle(transition("j-000002", .running, id: 1, from: "shard-r1"), now: 7)
        _ = core.handle(transition("j-000002", .completed, id: 2, from: "shard-r1", steps: 1000), now: 8)
        let late = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-000002"))), now: 9)
        #expect(late.reply.cancelAck == CancelAck(jobID: "j-000002", state: .completed))
        #expect(late.writes.isEmpty)
        #expect(core.job("j-000002")?.state == .completed)
        // Unknown jobs are NOT_FOUND.
        let missing = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-999999"))), now: 9)
        #expect(missing.reply.errorMessage?.code == .notFound)
        #expect(missing.reply.errorMessage?.field == "job_id")
    }

    @Test("restarts count as in the simulator: back from the queue or onto other GPUs, not the first start")
    func restartsCount() throws {
        var core = GatewayCore(settings: testSettings)
        _ = core.handle(submit(spec()), now: 1)
        func report(_ state: JobState, _ id: UInt64, gpus: [String]? = nil, from shard: String = "shard-r0") {
            var envelope = transition("j-000001", state, id: id, from: shard, at: Double(id))
            if case .jobTransition(var t) = envelope.body, let gpus {
                t.placement = Placement(gpuType: "v100", gpuIDs: gpus, shardID: shard)
                envelope.body = .jobTransition(t)
            }
            _ = core.handle(envelope, now: Double(id))
        }
        func restarts() -> UInt32 { core.job("j-000001")?.restarts ?? 99 }
        report(.running, 1, gpus: ["g0"])
        #expect(restarts() == 0)
        report(.running, 2, gpus: ["g0"], from: "shard-r1")  // a rack handed back: same GPUs
        #expect(restarts() == 0)
        report(.running, 3, gpus: ["g1", "g2"])  // moved (and resized)
        #expect(restarts() == 1)
        report(.pending, 4)  // preempted
        report(.running, 5, gpus: ["g1", "g2"])  // back from the queue
        #expect(restarts() == 2)
        report(.restarting, 6)  // its node failed
        report(.running, 7, gpus: ["g3"])
        #expect(restarts() == 3)
    }

    @Test("a spread job's placement lists every rack's GPUs; a part's report changes neither its state, progress nor restarts")
    func spreadJobPlacement() throws {
        var core = GatewayCore(settings: testSettings)
        _ = core.handle(submit(spec()), now: 1)
        func report(_ state: JobState, _ id: UInt64, gpus: [String]?, from shard: String, part: Bool = false, steps: Double = 0) {
            var t = JobTransition(
                jobID: "j-000001", state: state, at: Double(id), stepsDone: steps, checkpointSteps: steps, transitionID: id,
                spreadPart: part)
            t.placement = gpus.map { Placement(gpuType: "v100", gpuIDs: $0, shardID: shard) }
            _ = core.handle(Envelope(senderID: shard, body: .jobTransition(t)), now: Double(id))
        }
        func placement() throws -> [String] {
            let query = Envelope(body: .jobStatusRequest(JobStatusRequest(jobID: "j-000001")))
            return try #require(core.handle(query, now: 99).reply.jobStatus).placement?.gpuIDs ?? []
        }
        func listed() throws -> [String] {
            let list = Envelope(body: .listJobsRequest(ListJobsRequest()))
            return try #require(core.handle(list, now: 99).reply.listJobs).jobs.first?.placement?.gpuIDs ?? []
        }
        // The other rack's part may report before the job's own report of the round.
        report(.running, 1, gpus: ["r1-g0", "r1-g1"], from: "shard-r1", part: true)
        report(.running, 1, gpus: ["r0-g0", "r0-g1"], from: "shard-r0", steps: 10)
        #expect(try placement() == ["r0-g0", "r0-g1", "r1-g0", "r1-g1"])
        #expect(try listed() == ["r0-g0", "r0-g1", "r1-g0", "r1-g1"])
        // The next round: both report the same GPUs; a late duplicate of the part is ignored.
        report(.running, 2, gpus: ["r1-g0", "r1-g1"], from: "shard-r1", part: true, steps: 999)
        report(.running, 1, gpus: ["r1-g7"], from: "shard-r1", part: true)
        report(.running, 2, gpus: ["r0-g0", "r0-g1"], from: "shard-r0", steps: 20)
        #expect(try placement() == ["r0-g0", "r0-g1", "r1-g0", "r1-g1"])
        let job = try #require(core.job("j-000001"))
        #expect(job.state == .running && job.stepsDone == 20 && job.restarts == 0)
        #expect(job.placement?.gpuIDs == ["r0-g0", "r0-g1"])  // what is stored: the reporting shard's
        // The deal is split anew: the reporting shard's GPUs change, the old part is gone.
        report(.running, 3, gpus: ["r0-g2", "r0-g3"], from: "shard-r0")
        #expect(try placement() == ["r0-g2", "r0-g3"])
        #expect(core.job("j-000001")?.restarts == 1)
        report(.running, 3, gpus: ["r2-g0", "r2-g1"], from: "shard-r2", part: true)
        #expect(try placement() == ["r0-g2", "r0-g3", "r2-g0", "r2-g1"])
        // A part that ends leaves; a part's report of a state is not the job's.
        report(.pending, 4, gpus: nil, from: "shard-r2", part: true)
        #expect(try placement() == ["r0-g2", "r0-g3"])
        #expect(core.job("j-000001")?.state == .running)
        // Preempted: no placement, and no part kept for a later start.
        report(.running, 5, gpus: ["r2-g0", "r2-g1"], from: "shard-r2", part: true)
        report(.pending, 6, gpus: nil, from: "shard-r0")
        report(.running, 7, gpus: ["r0-g2", "r0-g3"], from: "shard-r0")
        #expect(try placement() == ["r0-g2", "r0-g3"])
    }

    @Test("transitions apply once per (shard, transition id) and are recorded")
    func transitionIdempotency() throws {
        var core = GatewayCore(settings: testSettings)
        _ = core.handle(submit(spec()), now: 1)
        let run = core.handle(transition("j-000001", .running, id: 7, at: 50), now: 51)
        #expect(run.reply.jobStatus?.state == .running)
        #expect(run.writes.count == 2)
        if case .appendTransition(let t) = run.writes[1] {
            #expect(t == TransitionRecord(jobID: "j-000001", from: .pending, to: .running, at: 50, source: "shard-r0", transitionID: 7))
        } else {
            Issue.record("no history write")
        }
        let dup = core.handle(transition("j-000001", .running, id: 7, at: 50), now: 52)
        #expect(dup.writes.isEmpty)
        #expect(dup.reply.jobStatus?.state == .running)
        #expect(core.stats.transitionsDuplicate == 1)
        // The same id from another shard is a different transition.
        let restart = core.handle(transition("j-000001", .restarting, id: 7, from: "shard-r1", at: 60, steps: 400), now: 61)
        #expect(restart.writes.count == 2)
        let job = try #require(core.job("j-000001"))
        #expect(job.restarts == 1 && job.startedAt == 50 && job.stepsDone == 400)
        // A finished job ignores late reports.
        _ = core.handle(transition("j-000001", .failed, id: 8, at: 70, reason: "node lost"), now: 71)
        let late = core.handle(transition("j-000001", .running, id: 9, at: 80), now: 81)
        #expect(late.writes.isEmpty)
        #expect(late.reply.jobStatus?.state == .failed)
        #expect(core.job("j-000001")?.reason == "node lost")
        #expect(core.job("j-000001")?.finishedAt == 70)
    }

    @Test("malformed transitions are rejected naming the field")
    func badTransitions() {
        var core = GatewayCore(settings: testSettings)
        _ = core.handle(submit(spec()), now: 1)
        #expect(core.handle(transition("j-000001", .running, id: 0), now: 2).reply.errorMessage?.field == "transition_id")
        #expect(core.handle(transition("j-000001", .unspecified, id: 3), now: 2).reply.errorMessage?.field == "state")
        #expect(core.handle(transition("j-000001", .running, id: 3, from: ""), now: 2).reply.errorMessage?.field == "sender_id")
        #expect(core.handle(transition("j-000404", .running, id: 4), now: 2).reply.errorMessage?.code == .notFound)
    }

    @Test("SWIM: the gateway refutes a suspicion or death of itself with a higher incarnation, and its acks carry its record")
    func refutesSuspicion() throws {
        var settings = testSettings
        settings.swimIncarnation = 500
        var core = GatewayCore(settings: settings)
        func ack(_ updates: [MemberUpdate], from sender: String = "shard-r1") throws -> Ack {
            let reply = core.handle(Envelope(senderID: sender, body: .ping(Ping(probeID: 9, updates: updates))), now: 1).reply
            var ack: Ack?
            if case .ack(let a) = reply { ack = a }
            return try #require(ack)
        }
        func myself(_ a: Ack) -> MemberUpdate? { a.updates.first { $0.memberID == "gateway" } }
        // A plain ping: alive at the start incarnation.
        #expect(try myself(ack([])) == MemberUpdate(memberID: "gateway", status: .alive, incarnation: 500, role: .gateway))
        // Declared dead at 500 (e.g. by shards that lost it under message loss): alive at 501.
        let dead = MemberUpdate(memberID: "gateway", status: .dead, incarnation: 500, role: .gateway)
        #expect(try myself(ack([dead]))?.incarnation == 501 && core.swimIncarnation == 501)
        // The same stale verdict again changes nothing; a suspicion at 501 is refuted at 502.
        #expect(try myself(ack([dead]))?.incarnation == 501)
        let suspect = MemberUpdate(memberID: "gateway", status: .suspect, incarnation: 501, role: .gateway)
        #expect(try myself(ack([suspect]))?.status == .alive && core.swimIncarnation == 502)
        // Records about other members are none of the gateway's business.
        #expect(try myself(ack([MemberUpdate(memberID: "shard-r0", status: .dead, incarnation: 900, role: .shard)]))?.incarnation == 502)
        // A restarted gateway starts above its previous life (start time in ms); a record of a
        // previous life with a higher incarnation is overtaken too.
        let old = MemberUpdate(memberID: "gateway", status: .alive, incarnation: 700, role: .gateway)
        #expect(try myself(ack([old]))?.incarnation == 701)
        // A forged maximum does not trap (it cannot be refuted either).
        #expect(try myself(ack([MemberUpdate(memberID: "gateway", status: .dead, incarnation: .max, role: .gateway)]))?.incarnation == .max)
    }

    @Test("status, list with a state filter, ping, and messages the gateway does not take")
    func queries() throws {
        var core = GatewayCore(settings: testSettings)
        for _ in 0..<3 { _ = core.handle(submit(spec()), now: 1) }
        _ = core.handle(Envelope(body: .cancelJob(CancelJob(jobID: "j-000002"))), now: 2)
        let status = try #require(core.handle(Envelope(body: .jobStatusRequest(JobStatusRequest(jobID: "j-000003"))), now: 3).reply.jobStatus)
        #expect(status.jobID == "j-000003" && status.state == .pending && status.spec == spec())
        let all = try #require(core.handle(Envelope(body: .listJobsRequest(ListJobsRequest())), now: 3).reply.listJobs)
        #expect(all.jobs.map(\.jobID) == ["j-000001", "j-000002", "j-000003"])
        let pending = try #require(core.handle(Envelope(body: .listJobsRequest(ListJobsRequest(states: [.pending]))), now: 3).reply.listJobs)
        #expect(pending.jobs.map(\.jobID) == ["j-000001", "j-000003"])
        let alive = MemberUpdate(memberID: "gateway", status: .alive, incarnation: 0, role: .gateway)
        #expect(core.handle(Envelope(body: .ping(Ping(probeID: 5))), now: 3).reply == .ack(Ack(probeID: 5, targetID: "gateway", updates: [alive])))
        #expect(core.handle(Envelope(body: .leaseCommit(LeaseCommit())), now: 3).reply.errorMessage?.code == .invalid)
        let garbage = core.malformedFrame(bytes: 3, error: "bad")
        #expect(garbage.reply.errorMessage?.code == .malformed)
        #expect(core.stats.malformed == 1)
    }

    @Test("a core rebuilt from a snapshot continues ids, keys and applied transitions")
    func rebuildFromSnapshot() {
        var core = GatewayCore(settings: testSettings)
        var snapshot = StoreSnapshot()
        for request in [submit(spec(), key: "a"), submit(spec()), transition("j-000001", .running, id: 1)] {
            for write in core.handle(request, now: 1).writes {
                switch write {
                case .insertJob(let j): snapshot.jobs.append(j)
                case .updateJob(let j): snapshot.jobs[Int(j.seq) - 1] = j
                case .appendTransition(let t): if let id = t.transitionID { snapshot.appliedTransitions.insert(TransitionKey(source: t.source, transitionID: id)) }
                }
            }
        }
        var rebuilt = GatewayCore(settings: testSettings, snapshot: snapshot)
        #expect(rebuilt.jobs() == core.jobs())
        #expect(rebuilt.shardLoad == core.shardLoad)
        #expect(rebuilt.handle(submit(spec(), key: "a"), now: 2).reply.submitAck?.jobID == "j-000001")
        #expect(rebuilt.handle(transition("j-000001", .running, id: 1), now: 2).writes.isEmpty)
        #expect(rebuilt.handle(submit(spec()), now: 2).reply.submitAck?.jobID == "j-000003")
    }
}
