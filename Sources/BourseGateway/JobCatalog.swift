import BourseWire
import BourseWorkload

/// What the gateway knows about job types: for each model of the throughput table, the worker
/// counts (scale factors) the table has. Submissions are validated against it.
public struct JobCatalog: Sendable, Hashable {
    /// model -> scale factors, ascending.
    public var scaleFactors: [String: [Int]]

    public init(scaleFactors: [String: [Int]]) {
        self.scaleFactors = scaleFactors.mapValues { Array(Set($0)).sorted() }
    }

    public init(table: ThroughputTable) {
        var factors: [String: [Int]] = [:]
        for key in table.jobTypes { factors[key.model, default: []].append(key.scaleFactor) }
        self.init(scaleFactors: factors)
    }

    /// A rejected field: the proto field path (e.g. "spec.total_steps") and why.
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        public var field: String
        public var message: String
        public var description: String { "\(field): \(message)" }
    }

    /// Checks a submitted spec; returns the first problem, naming its field, or nil.
    ///
    /// Rules: a job type of the table; total_steps > 0; workers a scale factor the table has for
    /// that model; the elastic range (min_workers/max_workers, 0 = workers) contains workers and
    /// lies within the table's smallest and largest scale factor for the model; weight finite and
    /// >= 0; arrival_time finite and >= 0.
    public func problem(with spec: JobSpec?) -> Problem? {
        guard let spec else { return Problem(field: "spec", message: "a submission needs a job spec") }
        func fail(_ field: String, _ message: String) -> Problem { Problem(field: "spec." + field, message: message) }
        if spec.jobType.isEmpty { return fail("job_type", "a job type is required (a model of the throughput table)") }
        guard let scales = scaleFactors[spec.jobType], let smallest = scales.first, let largest = scales.last else {
            let near = scaleFactors.keys.sorted().filter {
                $0.lowercased().hasPrefix(String(spec.jobType.lowercased().prefix(4)))
            }
            let hint = near.isEmpty ? "" : " (did you mean: \(near.prefix(5).joined(separator: "; "))?)"
            return fail("job_type", "unknown job type '\(spec.jobType)': not in the throughput table\(hint)")
        }
        let list = scales.map(String.init).joined(separator: ", ")
        if spec.totalSteps == 0 { return fail("total_steps", "total_steps must be > 0 (a job needs some work)") }
        if spec.workers == 0 { return fail("workers", "workers must be >= 1") }
        if !scales.contains(Int(spec.workers)) {
            return fail("workers", "\(spec.workers) workers: the throughput table has \(list) for '\(spec.jobType)'")
        }
        let low = spec.minWorkers == 0 ? spec.workers : spec.minWorkers
        let high = spec.maxWorkers == 0 ? spec.workers : spec.maxWorkers
        if low > spec.workers {
            return fail("min_workers", "min_workers \(low) is above workers \(spec.workers)")
        }
        if high < spec.workers {
            return fail("max_workers", "max_workers \(high) is below workers \(spec.workers)")
        }
        if Int(low) < smallest {
            return fail(
                "min_workers",
                "elastic range [\(low), \(high)] is outside the throughput table: it has \(list) workers for '\(spec.jobType)'")
        }
        if Int(high) > largest {
            return fail(
                "max_workers",
                "elastic range [\(low), \(high)] is outside the throughput table: it has \(list) workers for '\(spec.jobType)'")
        }
        if !spec.weight.isFinite || spec.weight < 0 { return fail("weight", "weight must be a finite number >= 0 (0 = 1)") }
        if !spec.arrivalTime.isFinite || spec.arrivalTime < 0 {
            return fail("arrival_time", "arrival_time must be a finite number >= 0 (0 = now)")
        }
        if spec.slo.isNaN { return fail("slo", "slo must be a number (<= 0 = none)") }
        return nil
    }
}
