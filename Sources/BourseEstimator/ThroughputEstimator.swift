import BourseWorkload
import Foundation

/// Estimates the throughput of job types on GPU configurations from a sparse set of observed
/// throughputs: a tensor job type x GPU type x worker count x placement, completed by a
/// Gaussian-process regression whose covariance combines job and configuration similarity with a
/// low-rank collaborative-filtering factorisation of the observed cells (docs/estimator.md).
///
/// Usage: `observe` throughputs (profiling runs, feedback from running jobs), `fit()`, then
/// `estimate`. A value type with no randomness: the same observations give the same estimates.
///
/// `estimate` always answers from the last `fit()`; `needsFit` says whether observations arrived
/// since. `fit()` is incremental when it can: new cells extend the Cholesky factor and re-observed
/// cells update it (O(n^2) each), and the factorisation is refitted only when the number of
/// observed cells grew by `parameters.refactorGrowth`.
public struct ThroughputEstimator: Sendable {
    public private(set) var parameters: EstimatorParameters

    // Job types (rows).
    private var rowNames: [String] = []
    private var rowIndex: [String: Int] = [:]
    private var rowFamily: [Int] = []
    private var rowLog2Batch: [Double] = []
    private var rowLogBatch: [Double] = []
    private var familyIndex: [String: Int] = [:]

    // GPU types and configurations (columns).
    private var gpuNames: [String] = []
    private var gpuIndex: [String: Int] = [:]
    private var gpuObservations: [Int] = []
    private var columns: [Configuration] = []
    private var columnIndex: [Configuration: Int] = [:]

    // Observed cells, one entry per cell (repeated observations are merged).
    private var obsRow: [Int] = []
    private var obsColumn: [Int] = []
    private var obsWeightedLog: [Double] = []  // sum of weight * log(samples/s)
    private var obsWeight: [Double] = []
    private var obsIndex: [CellKey: Int] = [:]

    // Fitted state.
    private var state: FitState?
    private var changedSinceFit = Set<Int>()
    private var version = 0
    private var fittedVersion = 0

    public init(parameters: EstimatorParameters = .default) {
        self.parameters = parameters
    }

    /// An estimator that has observed every distinct cell of `table` (weight 1 each), fitted.
    public init(table: ThroughputTable, parameters: EstimatorParameters = .default) throws {
        self.init(parameters: parameters)
        for cell in EstimatorEvaluation.uniqueConfigurations(TableCell.all(in: table)) {
            try observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        fit()
    }

    // MARK: Inspecting

    /// Job types the estimator knows (observed or registered), in order of first appearance.
    public var jobTypes: [String] { rowNames }
    /// GPU types with at least one observation, sorted.
    public var gpuTypes: [String] { gpuNames.indices.filter { gpuObservations[$0] > 0 }.map { gpuNames[$0] }.sorted() }
    /// Number of distinct observed cells.
    public var observedCellCount: Int { obsRow.count }
    /// True when observations arrived since the last `fit()`.
    public var needsFit: Bool { version != fittedVersion || (state == nil && !obsRow.isEmpty) }

    /// The observations of one cell merged: (weighted mean throughput in samples/s, total weight),
    /// or nil when the cell was never observed.
    public func observed(jobType: String, configuration: Configuration) -> (samplesPerSecond: Double, weight: Double)? {
        guard let r = rowIndex[jobType], let c = columnIndex[configuration], let i = obsIndex[CellKey(row: r, column: c)]
        else { return nil }
        return (exp(obsWeightedLog[i] / obsWeight[i]), obsWeight[i])
    }

    // MARK: Observing

    /// Makes a job type known without observing it: it then gets estimates from its family (same
    /// model, other batch sizes) until it is observed. Returns false when it was already known.
    @discardableResult
    public mutating func register(jobType: String) throws -> Bool {
        guard !jobType.isEmpty else { throw EstimatorError.emptyJobType }
        if rowIndex[jobType] != nil { return false }
        _ = row(for: jobType)
        version += 1
        return true
    }

    /// Records an observed throughput of `jobType` (the table's model name, e.g.
    /// "ResNet-18 (batch size 32)") on `workers` GPUs of `gpuType`, in samples per second of the
    /// whole job. Repeated observations of a cell are merged (weighted mean in log space, weights
    /// add up); a weight of w counts as w observations of weight 1. Call `fit()` afterwards.
    public mutating func observe(
        jobType: String, gpuType: String, workers: Int, placement: Placement = .consolidated,
        samplesPerSecond: Double, weight: Double = 1
    ) throws {
        guard workers >= 1 else { throw EstimatorError.invalidWorkers(workers) }
        try observe(
            jobType: jobType, configuration: Configuration(gpuType: gpuType, workers: workers, placement: placement),
            samplesPerSecond: samplesPerSecond, weight: weight)
    }

    public mutating func observe(
        jobType: String, configuration: Configuration, samplesPerSecond: Double, weight: Double = 1
    ) throws {
        guard !jobType.isEmpty else { throw EstimatorError.emptyJobType }
        guard !configuration.gpuType.isEmpty else { throw EstimatorError.emptyGPUType }
        guard configuration.workers >= 1 else { throw EstimatorError.invalidWorkers(configuration.workers) }
        guard samplesPerSecond.isFinite, samplesPerSecond > 0 else {
            throw EstimatorError.invalidThroughput(samplesPerSecond)
        }
        guard weight.isFinite, weight > 0 else { throw EstimatorError.invalidWeight(weight) }
        let r = row(for: jobType)
        let c = column(for: configuration)
        let key = CellKey(row: r, column: c)
        let value = weight * log(samplesPerSecond)
        if let i = obsIndex[key] {
            obsWeightedLog[i] += value
            obsWeight[i] += weight
            if let state, i < state.count { changedSinceFit.insert(i) }
        } else {
            obsIndex[key] = obsRow.count
            obsRow.append(r)
            obsColumn.append(c)
            obsWeightedLog.append(value)
            obsWeight.append(weight)
            gpuObservations[gpuIndex[configuration.gpuType]!] += 1
        }
        version += 1
    }

    public mutating func observe(_ observation: ThroughputObservation) throws {
        try observe(
            jobType: observation.jobType, configuration: observation.configuration,
            samplesPerSecond: observation.samplesPerSecond, weight: observation.weight)
    }

    // MARK: Profiling a new job type

    /// The few configurations to profile a new job type on: one worker on each GPU type, plus the
    /// configuration it asks for (`requestedWorkers` on `requestedGPUType`, default the first GPU
    /// type) when that is more than one worker.
    public static func profilingPlan(
        gpuTypes: [String], requestedWorkers: Int = 1, requestedGPUType: String? = nil,
        placement: Placement = .consolidated
    ) -> [Configuration] {
        var seen = Set<String>()
        let types = gpuTypes.filter { !$0.isEmpty && seen.insert($0).inserted }
        var plan = types.map { Configuration(gpuType: $0, workers: 1) }
        if requestedWorkers > 1, let gpu = requestedGPUType ?? types.first {
            plan.append(Configuration(gpuType: gpu, workers: requestedWorkers, placement: placement))
        }
        return plan
    }

    /// Profiles `jobType` on `configurations`: `measure` returns the measured samples/s of each
    /// (e.g. a short run); every measurement is observed with `weight`. Call `fit()` afterwards.
    public mutating func profile(
        jobType: String, configurations: [Configuration], weight: Double = 1,
        measure: (Configuration) throws -> Double
    ) throws {
        try register(jobType: jobType)
        for configuration in configurations {
            try observe(jobType: jobType, configuration: configuration, samplesPerSecond: measure(configuration), weight: weight)
        }
    }

    // MARK: Fitting

    /// How `fit()` brought the model up to date.
    public enum FitKind: String, Sendable {
        /// Nothing to do: no observation since the last fit.
        case upToDate
        /// Factorisation kept; the Cholesky factor updated in place for re-observed cells
        /// (rank-one updates) and extended with new cells: O(n^2) per changed or new cell.
        case incremental
        /// Factorisation kept; Gaussian process refactored (many re-observed cells).
        case refactored
        /// Factorisation and Gaussian process fitted from scratch.
        case full
    }

    /// Fits the model to all observations. Incremental unless `full` is true (see the type's
    /// documentation). Cost: O(n^3) for n observed cells for a full fit (about 15 ms for the
    /// Gavel table's 411 cells in a release build), O(n^2) per new or re-observed cell otherwise.
    @discardableResult
    public mutating func fit(full: Bool = false) -> FitKind {
        let n = obsRow.count
        defer {
            fittedVersion = version
            changedSinceFit.removeAll()
        }
        guard n > 0 else {
            state = nil
            return .upToDate
        }
        if !full, let state, !needsFit, state.count == n { return .upToDate }

        var kind = FitKind.full
        var factors: [Double] = []
        var factorColumns = 0
        var factorCells = 0
        if !full, let old = state, Double(n) <= Double(old.factorCells) * (1 + parameters.refactorGrowth) {
            factors = old.factors
            factorColumns = old.factorColumns
            factorCells = old.factorCells
            kind = .refactored
        } else {
            (factors, factorColumns) = fitFactors()
            factorCells = n
        }
        let features = observationFeatures(factors: factors, factorColumns: factorColumns)
        let sigma = log1p(parameters.measurementNoise)
        var lower: [[Double]] = []
        if kind == .refactored, let old = state, old.count <= n, changedSinceFit.count * 6 <= old.count {
            // Re-observed cells change only their own noise variance (the diagonal).
            lower = old.lower
            for i in changedSinceFit.sorted() {
                let delta = sigma * sigma * (1 / obsWeight[i] - 1 / old.weights[i])
                if delta != 0 { Self.rankOneUpdate(&lower, index: i, delta: delta) }
            }
            kind = .incremental
        }
        lower.reserveCapacity(n)
        for i in lower.count..<n {
            lower.append(choleskyRow(i, lower: lower, features: features))
        }
        var mean = 0.0
        var z = [Double](repeating: 0, count: n)
        for i in 0..<n {
            z[i] = logSteps(observation: i)
            mean += z[i]
        }
        mean /= Double(n)
        for i in 0..<n { z[i] -= mean }
        let alpha = Self.choleskySolve(lower: lower, rhs: z)
        state = FitState(
            count: n, mean: mean, lower: lower, alpha: alpha, weights: obsWeight, factors: factors,
            factorColumns: factorColumns, factorCells: factorCells)
        return kind
    }

    // MARK: Estimating

    /// Estimated samples/s of `jobType` on `workers` GPUs of `gpuType`, from the last fit; nil when
    /// the job type or GPU type is unknown, `workers` < 1, or nothing was fitted yet. Observed
    /// cells get a blend of their observations and the model weighted by confidence (many
    /// observations: the observed mean).
    public func estimate(jobType: String, gpuType: String, workers: Int, placement: Placement = .consolidated) -> Double? {
        guard workers >= 1 else { return nil }
        return estimate(jobType: jobType, configuration: Configuration(gpuType: gpuType, workers: workers, placement: placement))
    }

    public func estimate(jobType: String, configuration: Configuration) -> Double? {
        guard let (r, column, state) = query(jobType: jobType, configuration: configuration) else { return nil }
        var z = state.mean
        for i in 0..<state.count {
            z += kernel(row: r, column: column, row2: obsRow[i], column2: columnFeatures(obsColumn[i], state)) * state.alpha[i]
        }
        return exp(z + rowLogBatch[r] + log(Double(configuration.workers)))
    }

    /// Estimated samples/s of a table job type (its model, at its scale factor) on `gpuType`.
    public func estimate(_ key: JobTypeKey, gpuType: String, placement: Placement = .consolidated) -> Double? {
        estimate(jobType: key.model, gpuType: gpuType, workers: key.scaleFactor, placement: placement)
    }

    /// Like `estimate`, but also the uncertainty (O(n^2) instead of O(n)).
    public func estimateDetail(jobType: String, configuration: Configuration) -> Estimate? {
        guard let (r, column, state) = query(jobType: jobType, configuration: configuration) else { return nil }
        var k = [Double](repeating: 0, count: state.count)
        var z = state.mean
        for i in 0..<state.count {
            k[i] = kernel(row: r, column: column, row2: obsRow[i], column2: columnFeatures(obsColumn[i], state))
            z += k[i] * state.alpha[i]
        }
        let v = Self.forwardSubstitute(lower: state.lower, rhs: k)
        var variance = kernel(row: r, column: column, row2: r, column2: column)
        for x in v { variance -= x * x }
        let weight = columnIndex[configuration].flatMap { obsIndex[CellKey(row: r, column: $0)] }.map { obsWeight[$0] } ?? 0
        return Estimate(
            samplesPerSecond: exp(z + rowLogBatch[r] + log(Double(configuration.workers))),
            logStandardDeviation: max(variance, 0).squareRoot(), observedWeight: weight)
    }

    /// Throws a typed error for the first reason `estimate` would return nil.
    public func validate(jobType: String, configuration: Configuration) throws {
        guard rowIndex[jobType] != nil else { throw EstimatorError.unknownJobType(jobType) }
        guard let g = gpuIndex[configuration.gpuType], gpuObservations[g] > 0 else {
            throw EstimatorError.unknownGPUType(configuration.gpuType)
        }
        guard configuration.workers >= 1 else { throw EstimatorError.invalidWorkers(configuration.workers) }
    }

    /// Converts samples/s of a job type on `workers` workers to steps/s as in the throughput table.
    public static func stepsPerSecond(samplesPerSecond: Double, jobType: String, workers: Int) -> Double {
        samplesPerSecond / (JobTypeFeatures(jobType: jobType).samplesPerStepPerWorker * Double(max(workers, 1)))
    }

    // MARK: Internals

    private struct CellKey: Hashable {
        var row: Int
        var column: Int
    }

    private struct FitState: Sendable {
        var count: Int
        var mean: Double
        var lower: [[Double]]
        var alpha: [Double]
        /// Observation weights the factor was computed with.
        var weights: [Double]
        /// Factors of the first `factorColumns` columns, `rank` values each, scaled so that the
        /// mean squared norm is 1.
        var factors: [Double]
        var factorColumns: Int
        var factorCells: Int
    }

    /// A configuration as the kernel sees it; `id` is the column index or -1 for a configuration
    /// never observed.
    private struct ColumnFeatures {
        var id: Int
        var gpu: Int
        var workers: Int
        var log2Workers: Double
        var unconsolidated: Bool
        var factorOffset: Int  // -1 when the column has no factors
    }

    private mutating func row(for jobType: String) -> Int {
        if let r = rowIndex[jobType] { return r }
        let features = JobTypeFeatures(jobType: jobType)
        let family: Int
        if let f = familyIndex[features.family] {
            family = f
        } else {
            family = familyIndex.count
            familyIndex[features.family] = family
        }
        let r = rowNames.count
        rowNames.append(jobType)
        rowIndex[jobType] = r
        rowFamily.append(family)
        rowLog2Batch.append(log2(features.samplesPerStepPerWorker))
        rowLogBatch.append(log(features.samplesPerStepPerWorker))
        return r
    }

    private mutating func column(for configuration: Configuration) -> Int {
        if let c = columnIndex[configuration] { return c }
        if gpuIndex[configuration.gpuType] == nil {
            gpuIndex[configuration.gpuType] = gpuNames.count
            gpuNames.append(configuration.gpuType)
            gpuObservations.append(0)
        }
        let c = columns.count
        columns.append(configuration)
        columnIndex[configuration] = c
        return c
    }

    private func logSteps(observation i: Int) -> Double {
        obsWeightedLog[i] / obsWeight[i] - rowLogBatch[obsRow[i]] - log(Double(columns[obsColumn[i]].workers))
    }

    private func query(jobType: String, configuration: Configuration) -> (Int, ColumnFeatures, FitState)? {
        guard let state, let r = rowIndex[jobType], configuration.workers >= 1,
            let g = gpuIndex[configuration.gpuType], gpuObservations[g] > 0
        else { return nil }
        let column: ColumnFeatures
        if let c = columnIndex[configuration] {
            column = columnFeatures(c, state)
        } else {
            column = ColumnFeatures(
                id: -1, gpu: g, workers: configuration.workers, log2Workers: log2(Double(configuration.workers)),
                unconsolidated: configuration.placement == .unconsolidated, factorOffset: -1)
        }
        return (r, column, state)
    }

    private func columnFeatures(_ c: Int, _ state: FitState) -> ColumnFeatures {
        columnFeatures(c, factorColumns: state.factorColumns)
    }

    private func columnFeatures(_ c: Int, factorColumns: Int) -> ColumnFeatures {
        let configuration = columns[c]
        return ColumnFeatures(
            id: c, gpu: gpuIndex[configuration.gpuType]!, workers: configuration.workers,
            log2Workers: log2(Double(configuration.workers)), unconsolidated: configuration.placement == .unconsolidated,
            factorOffset: c < factorColumns && parameters.rank > 0 ? c * parameters.rank : -1)
    }

    private struct ObservationFeatures {
        var columns: [ColumnFeatures]
        var factors: [Double]
    }

    private func observationFeatures(factors: [Double], factorColumns: Int) -> ObservationFeatures {
        ObservationFeatures(
            columns: obsColumn.map { columnFeatures($0, factorColumns: factorColumns) }, factors: factors)
    }

    /// The covariance of two cells (see `EstimatorParameters`). `factors` defaults to the fitted ones.
    private func kernel(
        row a: Int, column ca: ColumnFeatures, row2 b: Int, column2 cb: ColumnFeatures, factors: [Double]? = nil
    ) -> Double {
        let p = parameters
        let sameRow = a == b
        var kr = 0.0
        if rowFamily[a] == rowFamily[b] {
            let d = rowLog2Batch[a] - rowLog2Batch[b]
            kr = d == 0 ? 1 : exp(-d * d / (2 * p.batchLengthScale * p.batchLengthScale))
        }
        let sameGPU = ca.gpu == cb.gpu
        let dw = ca.log2Workers - cb.log2Workers
        var kc = dw == 0 ? 1 : exp(-dw * dw / (2 * p.workerLengthScale * p.workerLengthScale))
        if !sameGPU { kc *= p.gpuCorrelation }
        if ca.unconsolidated != cb.unconsolidated { kc *= p.placementCorrelation }
        let sameScale = ca.workers == cb.workers && ca.unconsolidated == cb.unconsolidated
        let sameColumn = sameGPU && sameScale
        let ir = sameRow ? 1.0 : 0.0
        var k = p.jobBias * kr + p.jobOwnBias * ir + p.configBias * kc + p.interaction * kr * kc
        if sameGPU { k += p.gpuInteraction * kr }
        if sameScale { k += p.scaleInteraction * kr }
        if sameRow { k += p.jobOwnInteraction * kc }
        if sameColumn {
            k += p.configOwnBias
            if sameRow { k += p.cellVariance }
        }
        if p.collaborative > 0, ca.factorOffset >= 0, cb.factorOffset >= 0, kr > 0 || sameRow {
            let f = factors ?? state?.factors ?? []
            var kv = 0.0
            for d in 0..<p.rank { kv += f[ca.factorOffset + d] * f[cb.factorOffset + d] }
            k += p.collaborative * (kr + p.collaborativeJobOwn * ir) * kv
        }
        return k
    }

    /// Row i of the Cholesky factor of K + noise, given rows 0..<i.
    private func choleskyRow(_ i: Int, lower: [[Double]], features: ObservationFeatures) -> [Double] {
        var out = [Double](repeating: 0, count: i + 1)
        let ri = obsRow[i]
        let ci = features.columns[i]
        let sigma = log1p(parameters.measurementNoise)
        for j in 0...i {
            var a = kernel(row: ri, column: ci, row2: obsRow[j], column2: features.columns[j], factors: features.factors)
            if j == i { a += sigma * sigma / obsWeight[i] }
            var s = a
            if j > 0 {
                out.withUnsafeBufferPointer { li in
                    var dot = 0.0
                    if j == i {
                        for k in 0..<j { dot += li[k] * li[k] }
                    } else {
                        lower[j].withUnsafeBufferPointer { lj in
                            for k in 0..<j { dot += li[k] * lj[k] }
                        }
                    }
                    s -= dot
                }
            }
            if j < i {
                out[j] = s / lower[j][j]
            } else {
                out[i] = max(s, 1e-12).squareRoot()
            }
        }
        return out
    }

    /// Turns the Cholesky factor of A into that of A + delta * e_i e_i^T (rank-one update, or
    /// downdate when delta < 0), touching rows i... only.
    static func rankOneUpdate(_ lower: inout [[Double]], index i: Int, delta: Double) {
        let n = lower.count
        let sign: Double = delta >= 0 ? 1 : -1
        var x = [Double](repeating: 0, count: n)
        x[i] = abs(delta).squareRoot()
        for k in i..<n {
            let lkk = lower[k][k]
            let r = max(lkk * lkk + sign * x[k] * x[k], 1e-24).squareRoot()
            let c = r / lkk
            let s = x[k] / lkk
            lower[k][k] = r
            for j in (k + 1)..<max(n, k + 1) {
                let ljk = (lower[j][k] + sign * s * x[j]) / c
                lower[j][k] = ljk
                x[j] = c * x[j] - s * ljk
            }
        }
    }

    static func forwardSubstitute(lower: [[Double]], rhs: [Double]) -> [Double] {
        var y = rhs
        for i in 0..<y.count {
            var s = y[i]
            lower[i].withUnsafeBufferPointer { li in
                for k in 0..<i { s -= li[k] * y[k] }
            }
            y[i] = s / lower[i][i]
        }
        return y
    }

    static func choleskySolve(lower: [[Double]], rhs: [Double]) -> [Double] {
        var x = forwardSubstitute(lower: lower, rhs: rhs)
        let n = x.count
        for i in stride(from: n - 1, through: 0, by: -1) {
            var s = x[i]
            for k in (i + 1)..<max(n, i + 1) { s -= lower[k][i] * x[k] }
            x[i] = s / lower[i][i]
        }
        return x
    }

    /// Column factors of a rank-`rank` factorisation of the observed cells (`LowRankFactorization`),
    /// scaled so that their mean squared norm over observed columns is 1, and the number of
    /// columns they cover.
    private func fitFactors() -> ([Double], Int) {
        let rank = parameters.rank
        guard rank > 0, parameters.collaborative > 0, !obsRow.isEmpty else { return ([], 0) }
        let cells = (0..<obsRow.count).map {
            LowRankFactorization.Cell(row: obsRow[$0], column: obsColumn[$0], value: logSteps(observation: $0))
        }
        let factorization = LowRankFactorization(
            rows: rowNames.count, columns: columns.count, cells: cells, rank: rank,
            regularization: parameters.regularization, iterations: parameters.alsIterations)
        var v = factorization.columnFactors
        // (An array, not a Set: the summation order must not depend on hashing.)
        var observedColumn = [Bool](repeating: false, count: columns.count)
        for cell in cells { observedColumn[cell.column] = true }
        var norm = 0.0
        var observedColumns = 0
        for c in columns.indices where observedColumn[c] {
            for d in 0..<rank { norm += v[c * rank + d] * v[c * rank + d] }
            observedColumns += 1
        }
        norm = observedColumns == 0 ? 0 : norm / Double(observedColumns)
        guard norm > 1e-12 else { return ([], 0) }
        let scale = 1 / norm.squareRoot()
        for i in v.indices { v[i] *= scale }
        return (v, columns.count)
    }

    /// In-place Cholesky solve of a small symmetric positive definite system (row-major).
    static func solveSPD(_ m: inout [Double], _ b: inout [Double], dim: Int) {
        for j in 0..<dim {
            var s = m[j * dim + j]
            for k in 0..<j { s -= m[j * dim + k] * m[j * dim + k] }
            let d = max(s, 1e-12).squareRoot()
            m[j * dim + j] = d
            for i in (j + 1)..<max(dim, j + 1) {
                var t = m[i * dim + j]
                for k in 0..<j { t -= m[i * dim + k] * m[j * dim + k] }
                m[i * dim + j] = t / d
            }
        }
        for i in 0..<dim {
            var s = b[i]
            for k in 0..<i { s -= m[i * dim + k] * b[k] }
            b[i] = s / m[i * dim + i]
        }
        for i in stride(from: dim - 1, through: 0, by: -1) {
            var s = b[i]
            for k in (i + 1)..<max(dim, i + 1) { s -= m[k * dim + i] * b[k] }
            b[i] = s / m[i * dim + i]
        }
    }
}
