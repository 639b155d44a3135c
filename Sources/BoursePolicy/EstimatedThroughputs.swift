import BourseEstimator
import BourseWorkload
import Foundation

/// What Bourse's planner believes about throughputs when it does not read the true table: a
/// `ThroughputEstimator` (collaborative filtering over job type x GPU type x workers x
/// placement) fed with
///
/// 1. a prior: a seeded random `priorFraction` of the table's cells, with noise (the cluster's
///    history of other jobs);
/// 2. profiling: when a job type is first seen, `ThroughputEstimator.profilingPlan` (one worker on
///    every GPU type, plus the configuration the job asks for), measured with noise;
/// 3. feedback: the throughput a running job actually got on its configuration, measured with
///    noise, once per cell (a configuration that turns out not to run — e.g. out of memory — is
///    remembered as speed 0).
///
/// "Measured with noise" is the true value times 1 + noise * u, u uniform on [-1, 1], from a
/// seeded generator, so runs are reproducible. Speeds are returned in a job's work units per
/// second (trace steps at its trace scale factor, see `ElasticOption`).
public struct EstimatedThroughputs: Sendable {
    public struct Settings: Sendable, Hashable {
        public var priorFraction = 0.3
        public var noise = 0.05
        public var seed: UInt64 = 0
        public init() {}
    }

    public let settings: Settings
    public let table: ThroughputTable
    public let gpuTypes: [String]
    public private(set) var estimator: ThroughputEstimator
    public private(set) var fits = 0
    public private(set) var feedbackObservations = 0
    public private(set) var profiledJobTypes = 0
    private var random: SeededRandom
    private var profiled = Set<String>()
    private var fedBack = Set<CellKey>()
    private var infeasible = Set<CellKey>()
    /// jobType -> workers -> (consolidated, unconsolidated) samples/s per GPU type, from the last fit.
    private var cache: [String: [Int: (packed: [Double], spread: [Double])]] = [:]

    private struct CellKey: Hashable {
        var jobType: String
        var gpuType: String
        var workers: Int
        var spread: Bool
    }

    public init(table: ThroughputTable, gpuTypes: [String], settings: Settings = Settings()) throws {
        self.settings = settings
        self.table = table
        self.gpuTypes = gpuTypes
        self.random = SeededRandom(seed: settings.seed &+ 0x6573_7469_6D61_7465)
        var estimator = ThroughputEstimator()
        let cells = TableCell.all(in: table)
        for cell in cells where random.nextUnitDouble() < settings.priorFraction {
            try estimator.observe(
                jobType: cell.jobType, configuration: cell.configuration,
                samplesPerSecond: cell.samplesPerSecond * (1 + settings.noise * (2 * random.nextUnitDouble() - 1)))
        }
        for model in table.models { try estimator.register(jobType: model) }
        self.estimator = estimator
    }

    /// The true samples/s of a configuration (0 = cannot run).
    public func trueSamplesPerSecond(jobType: String, gpuType: String, workers: Int, spread: Bool) -> Double {
        let steps = table.throughput(JobTypeKey(model: jobType, scaleFactor: workers), gpuType: gpuType, consolidated: !spread)
        return steps * JobTypeFeatures(jobType: jobType).samplesPerStepPerWorker * Double(workers)
    }

    private mutating func measure(jobType: String, gpuType: String, workers: Int, spread: Bool) throws {
        let truth = trueSamplesPerSecond(jobType: jobType, gpuType: gpuType, workers: workers, spread: spread)
        let key = CellKey(jobType: jobType, gpuType: gpuType, workers: workers, spread: spread && workers > 1)
        guard truth > 0 else {
            // Cannot run there (e.g. out of memory): forget cached estimates of this job type, or
            // a planner would keep choosing the configuration whose start just failed.
            if infeasible.insert(key).inserted { cache[jobType] = nil }
            return
        }
        let noisy = truth * (1 + settings.noise * (2 * random.nextUnitDouble() - 1))
        try estimator.observe(
            jobType: jobType, gpuType: gpuType, workers: workers, placement: spread ? .unconsolidated : .consolidated,
            samplesPerSecond: noisy)
    }

    /// Profiles a job type the first time it is seen; returns true when it did.
    @discardableResult
    public mutating func profileIfNew(jobType: String, requestedWorkers: Int, spread: Bool) throws -> Bool {
        guard profiled.insert(jobType).inserted else { return false }
        let plan = ThroughputEstimator.profilingPlan(
            gpuTypes: gpuTypes, requestedWorkers: requestedWorkers, requestedGPUType: gpuTypes.first,
            placement: spread ? .unconsolidated : .consolidated)
        for c in plan {
            try measure(jobType: jobType, gpuType: c.gpuType, workers: c.workers, spread: c.placement == .unconsolidated)
        }
        profiledJobTypes += 1
        return true
    }

    /// A job ran on a configuration: observe its throughput there (once per cell).
    public mutating func feedBack(jobType: String, gpuType: String, workers: Int, spread: Bool) throws {
        let key = CellKey(jobType: jobType, gpuType: gpuType, workers: workers, spread: spread && workers > 1)
        guard fedBack.insert(key).inserted else { return }
        try measure(jobType: jobType, gpuType: gpuType, workers: workers, spread: spread)
        feedbackObservations += 1
    }

    /// Refits when something was observed since the last fit, and drops cached estimates.
    public mutating func refitIfNeeded() {
        guard estimator.needsFit else { return }
        estimator.fit()
        fits += 1
        cache.removeAll(keepingCapacity: true)
    }

    /// Estimated speeds of a job of type `jobType` with trace scale factor `traceScale` and
    /// worker counts `workers`, in work units per second (consolidated mode: spread = packed).
    public mutating func profile(
        jobType: String, traceScale: Int, workers: [Int], totalWork: Double, consolidatedOnly: Bool
    ) -> ElasticProfile {
        let batch = JobTypeFeatures(jobType: jobType).samplesPerStepPerWorker
        let unit = batch * Double(traceScale)  // samples per work unit
        var options: [ElasticOption] = []
        for w in workers {
            let speeds = samples(jobType: jobType, workers: w)
            let packed = speeds.packed.map { $0 / unit }
            let spread = consolidatedOnly ? packed : speeds.spread.map { $0 / unit }
            options.append(ElasticOption(workers: w, packed: packed, spread: spread))
        }
        return ElasticProfile(totalWork: totalWork, options: options)
    }

    private mutating func samples(jobType: String, workers: Int) -> (packed: [Double], spread: [Double]) {
        if let hit = cache[jobType]?[workers] { return hit }
        func one(_ gpu: String, _ spread: Bool) -> Double {
            if infeasible.contains(CellKey(jobType: jobType, gpuType: gpu, workers: workers, spread: spread && workers > 1)) {
                return 0
            }
            return estimator.estimate(
                jobType: jobType, gpuType: gpu, workers: workers, placement: spread ? .unconsolidated : .consolidated) ?? 0
        }
        let packed = gpuTypes.map { one($0, false) }
        let spread = workers > 1 ? gpuTypes.map { one($0, true) } : packed
        cache[jobType, default: [:]][workers] = (packed, spread)
        return (packed, spread)
    }
}
