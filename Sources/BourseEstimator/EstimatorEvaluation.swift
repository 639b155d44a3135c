import BourseWorkload
import Foundation

/// Held-out evaluation of `ThroughputEstimator` on a Gavel throughput table: observe a random
/// fraction of the table's cells with seeded multiplicative noise, fit, and measure the absolute
/// percentage error |estimate / truth - 1| on every other cell.
public enum EstimatorEvaluation {
    /// What counts as one cell.
    public enum CellSet: String, Sendable, CaseIterable {
        /// Every non-zero entry of the table: job type (model, scale factor) x worker type,
        /// `*_unconsolidated` worker types included. A 1-worker job has two entries per GPU type
        /// (the same configuration), so observing one reveals the other.
        case table
        /// Every distinct configuration (job type, GPU type, workers, placement) once: the 1-worker
        /// duplicates merged. Stricter.
        case distinct
    }

    /// How observations are perturbed: value * (1 + noise * u).
    public enum NoiseModel: String, Sendable, CaseIterable {
        /// u uniform on [-1, 1].
        case uniform
        /// u standard normal (factors below 0.05 clamped).
        case gaussian
    }

    public struct Options: Sendable, Hashable {
        public var observedFraction = 0.3
        public var noise = 0.05
        public var noiseModel = NoiseModel.uniform
        public var cells = CellSet.table
        public var seed: UInt64 = 0
        public var parameters = EstimatorParameters.default

        public init(
            observedFraction: Double = 0.3, noise: Double = 0.05, noiseModel: NoiseModel = .uniform,
            cells: CellSet = .table, seed: UInt64 = 0, parameters: EstimatorParameters = .default
        ) {
            self.observedFraction = observedFraction
            self.noise = noise
            self.noiseModel = noiseModel
            self.cells = cells
            self.seed = seed
            self.parameters = parameters
        }

        func validate() throws {
            guard observedFraction.isFinite, observedFraction > 0, observedFraction < 1 else {
                throw EstimatorError.invalidEvaluation("the observed fraction must be in (0, 1), got \(observedFraction)")
            }
            guard noise.isFinite, noise >= 0, noise < 1 else {
                throw EstimatorError.invalidEvaluation("the noise fraction must be in [0, 1), got \(noise)")
            }
        }
    }

    /// Error statistics of a set of absolute percentage errors (fractions: 0.07 = 7 %).
    public struct ErrorSummary: Sendable, Hashable {
        public var count: Int
        public var medianAPE: Double
        public var meanAPE: Double
        public var p90APE: Double
        public var maxAPE: Double

        public init(errors: [Double]) {
            let sorted = errors.sorted()
            count = sorted.count
            medianAPE = Self.quantile(sorted, 0.5)
            p90APE = Self.quantile(sorted, 0.9)
            meanAPE = sorted.isEmpty ? 0 : sorted.reduce(0, +) / Double(sorted.count)
            maxAPE = sorted.last ?? 0
        }

        /// Linear interpolation between order statistics; 0 for no data.
        static func quantile(_ sorted: [Double], _ q: Double) -> Double {
            guard !sorted.isEmpty else { return 0 }
            let position = q * Double(sorted.count - 1)
            let lower = Int(position.rounded(.down))
            let upper = min(lower + 1, sorted.count - 1)
            let t = position - Double(lower)
            return sorted[lower] * (1 - t) + sorted[upper] * t
        }
    }

    public struct Result: Sendable {
        public var options: Options
        /// Cells in the evaluated set, observed ones, and held-out ones the estimator answered.
        public var cells: Int
        public var observed: Int
        public var overall: ErrorSummary
        /// Per GPU type (held-out cells on that GPU type), sorted by name.
        public var perGPU: [(gpuType: String, summary: ErrorSummary)]
        /// Held-out cells with 1 worker and with several.
        public var singleWorker: ErrorSummary
        public var multiWorker: ErrorSummary
        /// Held-out cells the estimator could not answer (GPU type never observed); not in the errors.
        public var unanswered: Int
        /// Wall time of the fit, milliseconds.
        public var fitMilliseconds: Double
    }

    /// Observe `observedFraction` of the cells (uniformly at random, seeded), estimate the rest.
    public static func run(table: ThroughputTable, options: Options = Options()) throws -> Result {
        try options.validate()
        let cells = evaluationCells(table: table, set: options.cells)
        guard cells.count >= 2 else { throw EstimatorError.invalidEvaluation("the table has fewer than 2 cells") }
        var random = SeededRandom(seed: options.seed)
        let order = shuffled(Array(cells.indices), &random)
        let observedCount = min(max(Int((options.observedFraction * Double(cells.count)).rounded()), 1), cells.count - 1)
        var estimator = ThroughputEstimator(parameters: options.parameters)
        for model in table.models { try estimator.register(jobType: model) }
        for i in order[..<observedCount] {
            let cell = cells[i]
            let noisy = cell.samplesPerSecond * noiseFactor(options, &random)
            try estimator.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: noisy)
        }
        let start = ContinuousClock.now
        estimator.fit()
        let fitMilliseconds = milliseconds(since: start)

        var all: [Double] = []
        var byGPU: [String: [Double]] = [:]
        var single: [Double] = []
        var multi: [Double] = []
        var unanswered = 0
        for i in order[observedCount...].sorted() {
            let cell = cells[i]
            guard let estimate = estimator.estimate(jobType: cell.jobType, configuration: cell.configuration) else {
                unanswered += 1
                continue
            }
            let ape = abs(estimate / cell.samplesPerSecond - 1)
            all.append(ape)
            byGPU[cell.configuration.gpuType, default: []].append(ape)
            if cell.configuration.workers == 1 { single.append(ape) } else { multi.append(ape) }
        }
        return Result(
            options: options, cells: cells.count, observed: observedCount, overall: ErrorSummary(errors: all),
            perGPU: byGPU.keys.sorted().map { ($0, ErrorSummary(errors: byGPU[$0]!)) },
            singleWorker: ErrorSummary(errors: single), multiWorker: ErrorSummary(errors: multi),
            unanswered: unanswered, fitMilliseconds: fitMilliseconds)
    }

    public struct NewJobTypeResult: Sendable {
        public var options: Options
        /// Job types left out in turn, and cells profiled per job type (mean).
        public var jobTypes: Int
        public var meanProfiledCells: Double
        /// Errors on the left-out job types' unprofiled configurations (distinct configurations).
        public var overall: ErrorSummary
    }

    /// The new-job-type scenario: for each job type (model) of the table in turn, hide all its
    /// cells, observe `observedFraction` of the other cells with noise, profile the job type on the
    /// plan of `ThroughputEstimator.profilingPlan` (1 worker on each GPU type, plus a random
    /// multi-worker configuration for models with several scale factors), and measure the error on
    /// its other distinct configurations.
    public static func newJobType(table: ThroughputTable, options: Options = Options()) throws -> NewJobTypeResult {
        try options.validate()
        let cells = evaluationCells(table: table, set: options.cells)
        var random = SeededRandom(seed: options.seed &+ 0x6E65_776A_6F62)
        var errors: [Double] = []
        var profiled = 0
        var jobTypes = 0
        for model in table.models {
            let own = uniqueConfigurations(cells.filter { $0.jobType == model })
            let others = cells.filter { $0.jobType != model }
            guard own.count >= 2, !others.isEmpty else { continue }
            let order = shuffled(Array(others.indices), &random)
            let observedCount = min(max(Int((options.observedFraction * Double(others.count)).rounded()), 1), others.count)
            var estimator = ThroughputEstimator(parameters: options.parameters)
            for name in table.models { try estimator.register(jobType: name) }
            for i in order[..<observedCount] {
                let cell = others[i]
                try estimator.observe(
                    jobType: cell.jobType, configuration: cell.configuration,
                    samplesPerSecond: cell.samplesPerSecond * noiseFactor(options, &random))
            }
            let truth = Dictionary(own.map { ($0.configuration, $0.samplesPerSecond) }, uniquingKeysWith: { a, _ in a })
            let gpus = Array(Set(own.map(\.configuration.gpuType))).sorted()
            let multi = own.map(\.configuration).filter { $0.workers > 1 }.sorted()
            let requested = multi.isEmpty ? nil : multi[random.nextInt(below: multi.count)]
            let plan = ThroughputEstimator.profilingPlan(
                gpuTypes: gpus, requestedWorkers: requested?.workers ?? 1, requestedGPUType: requested?.gpuType,
                placement: requested?.placement ?? .consolidated
            ).filter { truth[$0] != nil }
            try estimator.profile(jobType: model, configurations: plan) { configuration in
                truth[configuration]! * noiseFactor(options, &random)
            }
            estimator.fit()
            let planned = Set(plan)
            for cell in own where !planned.contains(cell.configuration) {
                if let estimate = estimator.estimate(jobType: model, configuration: cell.configuration) {
                    errors.append(abs(estimate / cell.samplesPerSecond - 1))
                }
            }
            profiled += plan.count
            jobTypes += 1
        }
        return NewJobTypeResult(
            options: options, jobTypes: jobTypes, meanProfiledCells: jobTypes > 0 ? Double(profiled) / Double(jobTypes) : 0,
            overall: ErrorSummary(errors: errors))
    }

    /// Wall times of fits on the whole table, milliseconds (medians of `repeats`): from scratch
    /// (`full`), after one new cell (`newCell`), after one re-observed cell (`feedback`).
    public struct FitTiming: Sendable, Hashable {
        public var cells: Int
        public var full: Double
        public var newCell: Double
        public var feedback: Double
    }

    public static func fitTiming(table: ThroughputTable, parameters: EstimatorParameters = .default, repeats: Int = 5)
        throws -> FitTiming
    {
        let cells = uniqueConfigurations(TableCell.all(in: table))
        guard cells.count >= 2 else { throw EstimatorError.invalidEvaluation("the table has fewer than 2 cells") }
        var full: [Double] = []
        var newCell: [Double] = []
        var feedback: [Double] = []
        for _ in 0..<max(repeats, 1) {
            var estimator = ThroughputEstimator(parameters: parameters)
            for cell in cells.dropLast() {
                try estimator.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
            }
            var start = ContinuousClock.now
            estimator.fit(full: true)
            full.append(milliseconds(since: start))
            let last = cells[cells.count - 1]
            try estimator.observe(jobType: last.jobType, configuration: last.configuration, samplesPerSecond: last.samplesPerSecond)
            start = ContinuousClock.now
            estimator.fit()
            newCell.append(milliseconds(since: start))
            let again = cells[cells.count / 3]
            try estimator.observe(
                jobType: again.jobType, configuration: again.configuration, samplesPerSecond: again.samplesPerSecond * 1.02)
            start = ContinuousClock.now
            estimator.fit()
            feedback.append(milliseconds(since: start))
        }
        func median(_ xs: [Double]) -> Double { ErrorSummary.quantile(xs.sorted(), 0.5) }
        return FitTiming(cells: cells.count, full: median(full), newCell: median(newCell), feedback: median(feedback))
    }

    // MARK: Helpers

    /// The cells of `table` in the chosen set, in a fixed order.
    public static func evaluationCells(table: ThroughputTable, set: CellSet) -> [TableCell] {
        let all = TableCell.all(in: table)
        return set == .table ? all : uniqueConfigurations(all)
    }

    /// The first cell of each distinct (job type, configuration), in order.
    static func uniqueConfigurations(_ cells: [TableCell]) -> [TableCell] {
        struct Key: Hashable {
            var jobType: String
            var configuration: Configuration
        }
        var seen = Set<Key>()
        return cells.filter { seen.insert(Key(jobType: $0.jobType, configuration: $0.configuration)).inserted }
    }

    /// Fisher-Yates with `SeededRandom` (reproducible on every platform).
    static func shuffled<T>(_ items: [T], _ random: inout SeededRandom) -> [T] {
        var out = items
        guard out.count > 1 else { return out }
        for i in stride(from: out.count - 1, to: 0, by: -1) {
            out.swapAt(i, random.nextInt(below: i + 1))
        }
        return out
    }

    static func noiseFactor(_ options: Options, _ random: inout SeededRandom) -> Double {
        guard options.noise > 0 else { return 1 }
        switch options.noiseModel {
        case .uniform:
            return 1 + options.noise * (2 * random.nextUnitDouble() - 1)
        case .gaussian:
            // Box-Muller; 1 - u is in (0, 1].
            let u1 = 1 - random.nextUnitDouble()
            let u2 = random.nextUnitDouble()
            let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
            return max(1 + options.noise * normal, 0.05)
        }
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = ContinuousClock.now - start
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}
