/// A job as the gateway's store has it, for the auditor.
public struct AuditJob: Sendable, Hashable {
    public var id: String
    /// pending, running, restarting, completed, failed, cancelled.
    public var state: String
    public var reason: String
    /// Transitions of the job's history (append-only table) into a terminal state.
    public var terminalTransitions: Int

    public init(id: String, state: String, reason: String = "", terminalTransitions: Int) {
        self.id = id
        self.state = state
        self.reason = reason
        self.terminalTransitions = terminalTransitions
    }

    public static let terminalStates: Set<String> = ["completed", "failed", "cancelled"]
}

/// One broken invariant, naming the job, the GPU and the cluster time where they apply.
public struct AuditViolation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var invariant: String
    public var job: String?
    public var gpu: String?
    public var time: Double?
    public var detail: String

    public var description: String {
        var where_: [String] = []
        if let job { where_.append("job \(job)") }
        if let gpu { where_.append("GPU \(gpu)") }
        if let time { where_.append("t=\(Int(time.rounded())) s") }
        return "\(invariant): \(where_.joined(separator: ", ")): \(detail)"
    }
}

public struct InvariantVerdict: Sendable, Hashable, Codable {
    public var name: String
    public var holds: Bool
    /// Items checked (GPU intervals, jobs, resumes, leases, acknowledgements).
    public var checked: Int
    public var violations: Int
}

public struct AuditReport: Sendable, Hashable, Codable {
    public var invariants: [InvariantVerdict]
    public var violations: [AuditViolation]
    public var events: Int
    public var passed: Bool { violations.isEmpty }
}

/// The auditor: pure, over the parsed audit events of every process and the gateway's job table.
///
/// Invariants:
/// - `gpu_exclusive`: no GPU serves two jobs at once. A GPU is busy from a `worker_start` on it
///   until that worker's `worker_stop` or the restart (`process_start`) of its agent.
/// - `job_ends_once`: every accepted job is completed, failed with a reason, or cancelled, and its
///   history enters a terminal state exactly once.
/// - `progress_kept`: no worker resumes below the job's last checkpoint (`checkpoint` events and
///   the checkpoints of `worker_stop`s). A start that the agent raised to a newer shared
///   checkpoint before the worker began to compute (`resume_at`) is judged by the raised start.
/// - `leases_end`: every `lease_granted` has its `lease_ended`, or its owner restarted or had its
///   rack adopted.
/// - `acknowledged_present`: every job id a client got an acknowledgement for is in the store.
public struct Auditor: Sendable {
    /// Steps of slack for `progress_kept` (floating-point progress).
    public var stepTolerance: Double = 1e-6

    public init() {}

    public func audit(events: [AuditEvent], jobs: [AuditJob], acknowledged: [String]) -> AuditReport {
        var violations: [AuditViolation] = []
        var verdicts: [InvariantVerdict] = []
        func verdict(_ name: String, checked: Int, _ found: [AuditViolation]) {
            verdicts.append(InvariantVerdict(name: name, holds: found.isEmpty, checked: checked, violations: found.count))
            violations += found
        }
        // Stable order: by cluster time, ties in log order.
        let ordered = events.enumerated().sorted { ($0.element.t, $0.offset) < ($1.element.t, $1.offset) }.map(\.element)

        // gpu_exclusive (per agent: a GPU id belongs to one rack).
        do {
            var holder: [String: (job: String, since: Double, proc: String)] = [:]
            var found: [AuditViolation] = []
            var intervals = 0
            for e in ordered {
                switch e.ev {
                case "process_start":
                    holder = holder.filter { $0.value.proc != e.proc }
                case "worker_start":
                    guard let job = e.job else { continue }
                    intervals += 1
                    for gpu in e.gpus ?? [] {
                        if let h = holder[gpu], h.job != job {
                            found.append(AuditViolation(
                                invariant: "gpu_exclusive", job: job, gpu: gpu, time: e.t,
                                detail: "started while the GPU serves \(h.job) (since t=\(Int(h.since.rounded())) s)"))
                        }
                        holder[gpu] = (job, e.t, e.proc)
                    }
                case "worker_stop":
                    for gpu in e.gpus ?? [] where holder[gpu]?.job == e.job { holder[gpu] = nil }
                default: break
                }
            }
            verdict("gpu_exclusive", checked: intervals, found)
        }

        // job_ends_once
        do {
            var found: [AuditViolation] = []
            for job in jobs {
                if !AuditJob.terminalStates.contains(job.state) {
                    found.append(AuditViolation(invariant: "job_ends_once", job: job.id, detail: "never ended: state \(job.state)"))
                } else if job.state == "failed" && job.reason.isEmpty {
                    found.append(AuditViolation(invariant: "job_ends_once", job: job.id, detail: "failed without a reason"))
                } else if job.terminalTransitions != 1 {
                    found.append(AuditViolation(
                        invariant: "job_ends_once", job: job.id,
                        detail: "history enters a terminal state \(job.terminalTransitions) times (final: \(job.state))"))
                }
            }
            verdict("job_ends_once", checked: jobs.count, found)
        }

        // progress_kept
        do {
            var lastCheckpoint: [String: (steps: Double, t: Double)] = [:]
            var found: [AuditViolation] = []
            var resumes = 0
            // A start replaced, before its worker began to compute, by a start of the same job on
            // the same GPUs by the same agent (it adopted a newer shared checkpoint) never ran
            // from its steps: only the replacement is judged. Per agent: the parts of a job spread
            // over racks start on several agents at once.
            struct Worker: Hashable { var job: String; var agent: String }
            var replaced = Set<Int>()
            var open: [Worker: Int] = [:]
            for (i, e) in ordered.enumerated() where e.ev == "worker_start" {
                guard let job = e.job else { continue }
                let worker = Worker(job: job, agent: e.proc)
                if let j = open[worker], let until = ordered[j].resumeAt, e.t <= until, e.gpus == ordered[j].gpus {
                    replaced.insert(j)
                }
                open[worker] = i
            }
            for (i, e) in ordered.enumerated() {
                guard let job = e.job else { continue }
                switch e.ev {
                case "checkpoint", "worker_stop":
                    if let c = e.checkpoint, c > (lastCheckpoint[job]?.steps ?? -1) { lastCheckpoint[job] = (c, e.t) }
                case "worker_start":
                    if replaced.contains(i) { continue }
                    resumes += 1
                    let from = e.steps ?? 0
                    if let last = lastCheckpoint[job], from + stepTolerance < last.steps {
                        found.append(AuditViolation(
                            invariant: "progress_kept", job: job, gpu: e.gpus?.first, time: e.t,
                            detail: String(
                                format: "resumed from %.1f steps, below its checkpoint of %.1f steps (t=%.0f s)", from,
                                last.steps, last.t)))
                    }
                default: break
                }
            }
            verdict("progress_kept", checked: resumes, found)
        }

        // leases_end
        do {
            var open: [String: AuditEvent] = [:]
            var granted = 0
            for e in ordered {
                // A restarted owner starts without leases, and a dead owner's rack adopted by
                // another shard takes them with it: the ones it held ended.
                if e.ev == "process_start" { open = open.filter { $0.value.owner != e.proc } }
                if e.ev == "rack_adopted", let dead = e.owner { open = open.filter { $0.value.owner != dead } }
                guard let lease = e.lease else { continue }
                if e.ev == "lease_granted" { open[lease] = e; granted += 1 }
                if e.ev == "lease_ended" { open[lease] = nil }
            }
            let found = open.values.sorted { ($0.t, $0.lease ?? "") < ($1.t, $1.lease ?? "") }.map { e in
                AuditViolation(
                    invariant: "leases_end", job: e.job, gpu: e.gpus?.first, time: e.t,
                    detail: "lease \(e.lease ?? "?") of \(e.owner ?? "?") to \(e.buyer ?? "?") on \((e.gpus ?? []).joined(separator: ",")) never ended")
            }
            verdict("leases_end", checked: granted, found)
        }

        // acknowledged_present
        do {
            let known = Set(jobs.map(\.id))
            let found = acknowledged.filter { !known.contains($0) }.map {
                AuditViolation(invariant: "acknowledged_present", job: $0, detail: "acknowledged to a client but not in the store")
            }
            verdict("acknowledged_present", checked: acknowledged.count, found)
        }
        return AuditReport(invariants: verdicts, violations: violations, events: events.count)
    }
}
