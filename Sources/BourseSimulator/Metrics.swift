import BoursePolicy
import Foundation

/// What happened to one job.
public struct JobRecord: Sendable, Hashable {
    /// 0-based line index in the trace.
    public var id: Int
    public var jobType: String
    public var scaleFactor: Int
    public var totalSteps: Int
    public var arrival: Double
    /// nil if the job never finished (cannot happen with the shipped policies).
    public var completion: Double?
    /// completion - arrival.
    public var jct: Double
    /// Seconds the job spent running on GPUs.
    public var runSeconds: Double
    public var runSecondsByType: [String: Double]
    /// jct - runSeconds.
    public var waitSeconds: Double
    /// Checkpoint-restarts: dispatches onto other GPUs than the previous round's, after the
    /// first start.
    public var restarts: Int
    /// Rounds the job was placed in.
    public var dispatches: Int
    /// Jobs present on average while this job was in the system (itself included).
    public var averageActiveJobs: Double
    /// rho = JCT / time alone on a 1/N share of the cluster (N = averageActiveJobs).
    public var finishTimeFairness: Double
    /// waiting time / run time alone on its fastest GPU type.
    public var latencyRatio: Double
    /// Index of the job's tenant in `SimulationOptions.tenants`.
    public var tenant: Int = 0
}

/// What one tenant got over a run.
public struct TenantMetrics: Sendable, Hashable {
    public var name: String
    public var weight: Double
    public var jobs: Int
    public var avgJCT: Double
    /// Over the rounds the tenant had jobs in the system: its GPU-seconds / all jobs' GPU-seconds.
    public var shareReceived: Double
    /// Over the same rounds: its weight / the weights of the tenants with jobs in the system,
    /// averaged with the rounds' GPU-seconds as weights.
    public var shareEntitled: Double
    /// GPU-seconds per pool type, and the tenant's speed-up vector over them.
    public var gpuSecondsByType: [Double]
    public var speedUp: [Double]
}

/// The numbers of `docs/simulator.md` / the evaluation notes, computed from the job records.
public struct SimulationMetrics: Sendable, Hashable {
    public var jobs: Int
    public var avgJCT: Double
    public var medianJCT: Double
    public var p95JCT: Double
    public var p99JCT: Double
    public var makespan: Double
    /// GPU-seconds of running jobs / GPU-seconds of the cluster from first arrival to last
    /// completion.
    public var utilization: Double
    /// Gavel's own figure (mean over GPUs of the time credited to the jobs on it / total time),
    /// kept to compare with Gavel's printed utilisation.
    public var gavelUtilization: Double
    public var ftfMax: Double
    public var ftfMean: Double
    public var lrMax: Double
    /// Mean over rounds of the fraction of the cluster's GPUs left idle although a waiting job
    /// could have used that many GPUs of that type.
    public var fragmentation: Double
    public var restarts: Int
    /// Per tenant (in `SimulationOptions.tenants` order).
    public var tenants: [TenantMetrics]
    /// Largest envy between two tenants over the run (0 with one tenant); see `TenantFairness`.
    public var envyMax: Double

    init(
        records: [JobRecord], makespan: Double, utilization: Double, gavelUtilization: Double, fragmentation: Double,
        tenants: [TenantMetrics] = []
    ) {
        self.tenants = tenants
        envyMax = TenantFairness.maxEnvy(speedUps: tenants.map(\.speedUp), bundles: tenants.map(\.gpuSecondsByType))
        let jcts = records.map(\.jct).sorted()
        jobs = records.count
        avgJCT = jcts.isEmpty ? 0 : jcts.reduce(0, +) / Double(jcts.count)
        medianJCT = percentile(jcts, 0.5)
        p95JCT = percentile(jcts, 0.95)
        p99JCT = percentile(jcts, 0.99)
        self.makespan = makespan
        self.utilization = utilization
        self.gavelUtilization = gavelUtilization
        let ftf = records.map(\.finishTimeFairness)
        ftfMax = ftf.max() ?? 0
        ftfMean = ftf.isEmpty ? 0 : ftf.reduce(0, +) / Double(ftf.count)
        lrMax = records.map(\.latencyRatio).max() ?? 0
        self.fragmentation = fragmentation
        restarts = records.map(\.restarts).reduce(0, +)
    }
}

/// Linear interpolation between closest ranks (numpy's default) on sorted values.
public func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = p * Double(sorted.count - 1)
    let lo = Int(rank.rounded(.down))
    let hi = min(lo + 1, sorted.count - 1)
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - Double(lo))
}

/// Everything a run produced.
public struct SimulationResult: Sendable {
    public var policy: String
    public var gavelPolicy: String
    public var cluster: String
    public var gpus: [String: Int]
    public var options: SimulationOptions
    public var records: [JobRecord]
    public var metrics: SimulationMetrics
    /// Rounds planned, simulated events (arrivals + job-round completions + rounds), policy calls.
    public var rounds: Int
    public var events: Int
    public var allocations: Int
    /// A sharded run's trading figures (`trading` in the JSON); empty for one planner.
    public var trading: [String: Double] = [:]
    /// Set by the caller (e.g. the trace file name).
    public var traceName: String = ""
    public var throughputsName: String = ""

    /// The metrics as one JSON object with sorted keys and fixed number formatting, so the same
    /// inputs give byte-identical output.
    public func json() -> String {
        let m = metrics
        var fields: [String: JSONValue] = [
            "policy": .string(policy),
            "gavel_policy": .string(gavelPolicy),
            "trace": .string(traceName),
            "cluster": .string(cluster),
            "throughputs": .string(throughputsName),
            "gpus": .object(gpus.mapValues { .number(Double($0)) }),
            "jobs": .number(Double(m.jobs)),
            "avg_jct_s": .number(m.avgJCT),
            "median_jct_s": .number(m.medianJCT),
            "p95_jct_s": .number(m.p95JCT),
            "p99_jct_s": .number(m.p99JCT),
            "makespan_s": .number(m.makespan),
            "utilization": .number(m.utilization),
            "utilization_gavel": .number(m.gavelUtilization),
            "ftf_max": .number(m.ftfMax),
            "ftf_mean": .number(m.ftfMean),
            "lr_max": .number(m.lrMax),
            "fragmentation": .number(m.fragmentation),
            "envy_max": .number(m.envyMax),
            "tenants": .object(
                Dictionary(
                    m.tenants.map { t in
                        (
                            t.name,
                            JSONValue.object([
                                "weight": .number(t.weight), "jobs": .number(Double(t.jobs)), "avg_jct_s": .number(t.avgJCT),
                                "share_received": .number(t.shareReceived), "share_entitled": .number(t.shareEntitled),
                            ])
                        )
                    }, uniquingKeysWith: { a, _ in a })),
            "restarts": .number(Double(m.restarts)),
            "restarts_per_job": .number(m.jobs > 0 ? Double(m.restarts) / Double(m.jobs) : 0),
            "round_s": .number(options.roundSeconds),
            "restart_s": .number(options.restartSeconds),
            "seed": .number(Double(options.seed)),
            "throughput_mode": .string(options.throughputMode.rawValue),
            "rounds": .number(Double(rounds)),
            "events": .number(Double(events)),
            "allocations": .number(Double(allocations)),
        ]
        if m.jobs == 0 { fields["avg_jct_s"] = .number(0) }
        if !trading.isEmpty { fields["trading"] = .object(trading.mapValues { .number($0) }) }
        if PolicyCatalog.isBourse(policy) { fields["estimator"] = .string(options.estimator.rawValue) }
        return JSONValue.object(fields).render(indent: 0) + "\n"
    }

    /// One CSV line per job, with a header.
    public func jobsCSV() -> String {
        let types = gpus.keys.sorted()
        var out = "job_id,job_type,scale_factor,total_steps,arrival_s,completion_s,jct_s,run_s,wait_s,"
        out += types.map { "run_\($0)_s" }.joined(separator: ",")
        out += ",dispatches,restarts,avg_active_jobs,ftf,lr\n"
        for r in records {
            var cells = [
                String(r.id), csvQuote(r.jobType), String(r.scaleFactor), String(r.totalSteps), formatNumber(r.arrival),
                r.completion.map(formatNumber) ?? "", formatNumber(r.jct), formatNumber(r.runSeconds),
                formatNumber(r.waitSeconds),
            ]
            cells += types.map { formatNumber(r.runSecondsByType[$0] ?? 0) }
            cells += [
                String(r.dispatches), String(r.restarts), formatNumber(r.averageActiveJobs),
                formatNumber(r.finishTimeFairness), formatNumber(r.latencyRatio),
            ]
            out += cells.joined(separator: ",") + "\n"
        }
        return out
    }
}

private func csvQuote(_ s: String) -> String {
    if s.contains(",") || s.contains("\"") || s.contains("\n") {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}

/// Numbers rounded to 6 decimals, trailing zeros dropped ("19017.664", "3", "0.845"); NaN and
/// infinities (never expected) as "null".
public func formatNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    var s = String(format: "%.6f", value)
    if s.contains(".") {
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
    }
    if s == "-0" { s = "0" }
    return s
}

/// A tiny JSON writer with sorted keys.
enum JSONValue {
    case string(String)
    case number(Double)
    case object([String: JSONValue])

    func render(indent: Int) -> String {
        switch self {
        case .string(let s): return quote(s)
        case .number(let x): return formatNumber(x)
        case .object(let fields):
            if fields.isEmpty { return "{}" }
            let pad = String(repeating: "  ", count: indent + 1)
            let inner = fields.keys.sorted().map { key in
                "\(pad)\(quote(key)): \(fields[key]!.render(indent: indent + 1))"
            }
            return "{\n" + inner.joined(separator: ",\n") + "\n" + String(repeating: "  ", count: indent) + "}"
        }
    }

    private func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
