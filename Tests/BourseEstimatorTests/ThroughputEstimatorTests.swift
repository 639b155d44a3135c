import BourseWorkload
import Foundation
import XCTest

@testable import BourseEstimator

/// The shipped Gavel table (data/gavel-throughputs.json of this repository).
private func shippedTable() throws -> ThroughputTable {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return try ThroughputTable.load(path: root.appendingPathComponent("data/gavel-throughputs.json").path)
}

private func median(_ xs: [Double]) -> Double { EstimatorEvaluation.ErrorSummary(errors: xs).medianAPE }

final class LowRankFactorizationTests: XCTestCase {
    /// An exactly rank-2 matrix (plus biases) with half its cells observed is recovered on the
    /// other half.
    func testRecoversExactLowRankMatrix() {
        var random = SeededRandom(seed: 7)
        func draw() -> Double { 2 * random.nextUnitDouble() - 1 }
        let rows = 30
        let columns = 20
        let rank = 2
        let a = (0..<rows).map { _ in draw() }
        let b = (0..<columns).map { _ in draw() }
        let u = (0..<(rows * rank)).map { _ in draw() }
        let v = (0..<(columns * rank)).map { _ in draw() }
        func truth(_ r: Int, _ c: Int) -> Double {
            var x = 3 + a[r] + b[c]
            for d in 0..<rank { x += u[r * rank + d] * v[c * rank + d] }
            return x
        }
        var observed: [LowRankFactorization.Cell] = []
        var heldOut: [(Int, Int)] = []
        for r in 0..<rows {
            for c in 0..<columns {
                if random.nextUnitDouble() < 0.5 {
                    observed.append(.init(row: r, column: c, value: truth(r, c)))
                } else {
                    heldOut.append((r, c))
                }
            }
        }
        let model = LowRankFactorization(
            rows: rows, columns: columns, cells: observed, rank: rank, regularization: 1e-4, iterations: 300)
        let errors = heldOut.map { abs(model.predict(row: $0.0, column: $0.1) - truth($0.0, $0.1)) }
        XCTAssertLessThan(errors.max()!, 0.02, "held-out cells of an exactly low-rank matrix are recovered")
        let fitted = observed.map { abs(model.predict(row: $0.row, column: $0.column) - $0.value) }
        XCTAssertLessThan(fitted.max()!, 0.01)
        // Rank 0 (biases only) cannot.
        let biasesOnly = LowRankFactorization(
            rows: rows, columns: columns, cells: observed, rank: 0, regularization: 1e-4, iterations: 5)
        let worse = heldOut.map { abs(biasesOnly.predict(row: $0.0, column: $0.1) - truth($0.0, $0.1)) }
        XCTAssertGreaterThan(median(worse), 10 * median(errors))
    }

    func testEmptyAndDeterministic() {
        let empty = LowRankFactorization(rows: 2, columns: 2, cells: [], rank: 2, regularization: 1)
        XCTAssertEqual(empty.predict(row: 1, column: 1), 0)
        let cells = [LowRankFactorization.Cell(row: 0, column: 0, value: 1), .init(row: 1, column: 1, value: 2)]
        let x = LowRankFactorization(rows: 2, columns: 2, cells: cells, rank: 1, regularization: 0.1)
        let y = LowRankFactorization(rows: 2, columns: 2, cells: cells, rank: 1, regularization: 0.1)
        XCTAssertEqual(x.columnFactors, y.columnFactors)
        XCTAssertEqual(x.predict(row: 0, column: 1), y.predict(row: 0, column: 1))
    }
}

final class ThroughputEstimatorTests: XCTestCase {
    /// The full estimator on a synthetic tensor job type x GPU type x workers x placement whose
    /// log throughputs are exactly low rank: observing 40 % of the cells, the others come out
    /// within a few percent once the model is reduced to biases + factors (the defaults add
    /// smoothness priors over job families and configurations tuned for the Gavel table).
    func testRecoversSyntheticLowRankTensor() throws {
        var random = SeededRandom(seed: 11)
        func draw() -> Double { 2 * random.nextUnitDouble() - 1 }
        let gpus = ["g1", "g2", "g3"]
        var configurations: [Configuration] = []
        for gpu in gpus {
            configurations.append(Configuration(gpuType: gpu, workers: 1))
            for w in [2, 4, 8] {
                for p in Placement.allCases { configurations.append(Configuration(gpuType: gpu, workers: w, placement: p)) }
            }
        }
        let jobs = (0..<24).map { "job\($0)" }
        let rank = 2
        let a = jobs.map { _ in draw() }
        let b = configurations.map { _ in draw() }
        let u = (0..<(jobs.count * rank)).map { _ in 0.7 * draw() }
        let v = (0..<(configurations.count * rank)).map { _ in 0.7 * draw() }
        func truth(_ j: Int, _ c: Int) -> Double {
            var x = 4 + a[j] + b[c]
            for d in 0..<rank { x += u[j * rank + d] * v[c * rank + d] }
            return exp(x) * Double(configurations[c].workers)
        }
        var parameters = EstimatorParameters()
        // Only the terms of a low-rank model: job biases, configuration biases, factors.
        parameters.jobBias = 0
        parameters.configBias = 0
        parameters.interaction = 0
        parameters.gpuInteraction = 0
        parameters.scaleInteraction = 0
        parameters.jobOwnInteraction = 0
        parameters.jobOwnBias = 1
        parameters.configOwnBias = 1
        parameters.collaborative = 1
        parameters.collaborativeJobOwn = 1
        parameters.cellVariance = 0.0001
        parameters.measurementNoise = 0.001
        parameters.regularization = 0.01
        var estimator = ThroughputEstimator(parameters: parameters)
        var heldOut: [(Int, Int)] = []
        for j in jobs.indices {
            for c in configurations.indices {
                if random.nextUnitDouble() < 0.4 {
                    try estimator.observe(jobType: jobs[j], configuration: configurations[c], samplesPerSecond: truth(j, c))
                } else {
                    heldOut.append((j, c))
                }
            }
        }
        estimator.fit()
        let errors = heldOut.map { j, c in
            abs(estimator.estimate(jobType: jobs[j], configuration: configurations[c])! / truth(j, c) - 1)
        }
        XCTAssertLessThan(median(errors), 0.02, "median held-out error on an exactly low-rank tensor")
        XCTAssertLessThan(errors.max()!, 0.2)
        // The collaborative-filtering term is what recovers it: without it the error is larger.
        parameters.rank = 0
        var plain = ThroughputEstimator(parameters: parameters)
        for j in jobs.indices {
            for c in configurations.indices where !heldOut.contains(where: { $0 == (j, c) }) {
                try plain.observe(jobType: jobs[j], configuration: configurations[c], samplesPerSecond: truth(j, c))
            }
        }
        plain.fit()
        let plainErrors = heldOut.map { j, c in
            abs(plain.estimate(jobType: jobs[j], configuration: configurations[c])! / truth(j, c) - 1)
        }
        XCTAssertLessThan(5 * median(errors), median(plainErrors))
    }

    /// The figure the issue asks for: 30 % of the table's cells observed with 5 % noise, median
    /// absolute percentage error on the others at most 10 %, on several seeds.
    func testThirtyPercentObservedMedianErrorAtMostTenPercent() throws {
        let table = try shippedTable()
        var medians: [Double] = []
        for seed in UInt64(0)..<5 {
            let result = try EstimatorEvaluation.run(
                table: table, options: .init(observedFraction: 0.3, noise: 0.05, seed: seed))
            XCTAssertEqual(result.cells, 489)
            XCTAssertEqual(result.observed, 147)
            XCTAssertEqual(result.overall.count + result.unanswered, 342)
            XCTAssertLessThanOrEqual(result.overall.medianAPE, 0.10, "seed \(seed)")
            medians.append(result.overall.medianAPE)
        }
        XCTAssertLessThanOrEqual(medians.reduce(0, +) / 5, 0.09)
    }

    /// The stricter variant (each configuration once, Gaussian noise) stays near 10 %.
    func testDistinctCellsGaussianNoise() throws {
        let table = try shippedTable()
        var medians: [Double] = []
        for seed in UInt64(0)..<3 {
            let result = try EstimatorEvaluation.run(
                table: table, options: .init(observedFraction: 0.3, noise: 0.05, noiseModel: .gaussian, cells: .distinct, seed: seed))
            XCTAssertEqual(result.cells, 411)
            medians.append(result.overall.medianAPE)
        }
        XCTAssertLessThanOrEqual(medians.reduce(0, +) / 3, 0.13)
    }

    /// More observed cells, lower error (on average over seeds).
    func testMoreObservationsLowerError() throws {
        let table = try shippedTable()
        var previous = Double.infinity
        for fraction in [0.1, 0.3, 0.5, 0.7] {
            var sum = 0.0
            for seed in UInt64(20)..<23 {
                sum += try EstimatorEvaluation.run(
                    table: table, options: .init(observedFraction: fraction, noise: 0.05, seed: seed)
                ).overall.medianAPE
            }
            let mean = sum / 3
            XCTAssertLessThan(mean, previous, "observed fraction \(fraction)")
            previous = mean
        }
        XCTAssertLessThan(previous, 0.07)
    }

    /// Feedback: observing a cell's true throughput (a running job's measurements) makes its
    /// estimate match it within the noise, and makes the estimate more certain.
    func testFeedbackPinsTheEstimate() throws {
        let table = try shippedTable()
        let cells = EstimatorEvaluation.evaluationCells(table: table, set: .distinct)
        var random = SeededRandom(seed: 5)
        var estimator = ThroughputEstimator()
        var heldOut: [TableCell] = []
        for cell in cells {
            if random.nextUnitDouble() < 0.3 {
                try estimator.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
            } else {
                heldOut.append(cell)
            }
        }
        estimator.fit()
        // The held-out cell estimated worst.
        let worst = heldOut.max { x, y in
            abs(estimator.estimate(jobType: x.jobType, configuration: x.configuration)! / x.samplesPerSecond - 1)
                < abs(estimator.estimate(jobType: y.jobType, configuration: y.configuration)! / y.samplesPerSecond - 1)
        }!
        let before = estimator.estimateDetail(jobType: worst.jobType, configuration: worst.configuration)!
        XCTAssertGreaterThan(abs(before.samplesPerSecond / worst.samplesPerSecond - 1), 0.3)
        XCTAssertFalse(before.isObserved)
        // A running job reports its throughput a few times, with 2 % measurement noise.
        for k in 0..<5 {
            let measured = worst.samplesPerSecond * (1 + 0.02 * (Double(k % 3) - 1))
            try estimator.observe(jobType: worst.jobType, configuration: worst.configuration, samplesPerSecond: measured)
        }
        XCTAssertTrue(estimator.needsFit)
        estimator.fit()
        XCTAssertFalse(estimator.needsFit)
        let after = estimator.estimateDetail(jobType: worst.jobType, configuration: worst.configuration)!
        XCTAssertTrue(after.isObserved)
        XCTAssertEqual(after.observedWeight, 5)
        XCTAssertEqual(after.samplesPerSecond / worst.samplesPerSecond, 1, accuracy: 0.04)
        XCTAssertLessThan(after.logStandardDeviation, before.logStandardDeviation / 3)
        // A heavier weight pins it closer still.
        try estimator.observe(
            jobType: worst.jobType, configuration: worst.configuration, samplesPerSecond: worst.samplesPerSecond, weight: 100)
        estimator.fit()
        XCTAssertEqual(
            estimator.estimate(jobType: worst.jobType, configuration: worst.configuration)! / worst.samplesPerSecond, 1,
            accuracy: 0.01)
    }

    func testDeterministicForASeed() throws {
        let table = try shippedTable()
        let options = EstimatorEvaluation.Options(observedFraction: 0.3, noise: 0.05, seed: 42)
        let x = try EstimatorEvaluation.run(table: table, options: options)
        let y = try EstimatorEvaluation.run(table: table, options: options)
        XCTAssertEqual(x.overall, y.overall)
        XCTAssertEqual(x.perGPU.map(\.summary), y.perGPU.map(\.summary))
        var other = options
        other.seed = 43
        XCTAssertNotEqual(try EstimatorEvaluation.run(table: table, options: other).overall, x.overall)
        let n1 = try EstimatorEvaluation.newJobType(table: table, options: options)
        let n2 = try EstimatorEvaluation.newJobType(table: table, options: options)
        XCTAssertEqual(n1.overall, n2.overall)
    }

    func testBadInput() throws {
        var estimator = ThroughputEstimator()
        XCTAssertNil(estimator.estimate(jobType: "LM (batch size 20)", gpuType: "v100", workers: 1), "nothing fitted")
        for bad in [0.0, -3.0, .nan, .infinity] {
            XCTAssertThrowsError(
                try estimator.observe(jobType: "LM (batch size 20)", gpuType: "v100", workers: 1, samplesPerSecond: bad)
            ) { error in
                guard case .invalidThroughput = error as? EstimatorError else { return XCTFail("\(error)") }
            }
        }
        XCTAssertThrowsError(try estimator.observe(jobType: "x", gpuType: "v100", workers: 1, samplesPerSecond: -1)) {
            XCTAssertEqual($0 as? EstimatorError, .invalidThroughput(-1))
        }
        XCTAssertThrowsError(try estimator.observe(jobType: "x", gpuType: "v100", workers: 0, samplesPerSecond: 1)) {
            XCTAssertEqual($0 as? EstimatorError, .invalidWorkers(0))
        }
        XCTAssertThrowsError(try estimator.observe(jobType: "x", gpuType: "v100", workers: 1, samplesPerSecond: 1, weight: 0)) {
            XCTAssertEqual($0 as? EstimatorError, .invalidWeight(0))
        }
        XCTAssertThrowsError(try estimator.observe(jobType: "", gpuType: "v100", workers: 1, samplesPerSecond: 1)) {
            XCTAssertEqual($0 as? EstimatorError, .emptyJobType)
        }
        XCTAssertThrowsError(try estimator.observe(jobType: "x", gpuType: "", workers: 1, samplesPerSecond: 1)) {
            XCTAssertEqual($0 as? EstimatorError, .emptyGPUType)
        }
        XCTAssertEqual(estimator.observedCellCount, 0, "rejected observations leave no trace")

        try estimator.observe(jobType: "LM (batch size 20)", gpuType: "v100", workers: 1, samplesPerSecond: 1200)
        try estimator.observe(jobType: "LM (batch size 20)", gpuType: "k80", workers: 2, placement: .unconsolidated, samplesPerSecond: 800)
        estimator.fit()
        XCTAssertNotNil(estimator.estimate(jobType: "LM (batch size 20)", gpuType: "k80", workers: 1))
        XCTAssertNil(estimator.estimate(jobType: "Unknown (batch size 4)", gpuType: "v100", workers: 1))
        XCTAssertNil(estimator.estimate(jobType: "LM (batch size 20)", gpuType: "a100", workers: 1))
        XCTAssertNil(estimator.estimate(jobType: "LM (batch size 20)", gpuType: "v100", workers: 0))
        let unknownGPU = Configuration(gpuType: "a100", workers: 1)
        XCTAssertThrowsError(try estimator.validate(jobType: "LM (batch size 20)", configuration: unknownGPU)) {
            XCTAssertEqual($0 as? EstimatorError, .unknownGPUType("a100"))
        }
        XCTAssertThrowsError(try estimator.validate(jobType: "nope", configuration: unknownGPU)) {
            XCTAssertEqual($0 as? EstimatorError, .unknownJobType("nope"))
        }
        // A registered job type of a known family gets a family-based estimate before any observation.
        try estimator.register(jobType: "LM (batch size 40)")
        estimator.fit()
        XCTAssertNotNil(estimator.estimate(jobType: "LM (batch size 40)", gpuType: "v100", workers: 1))
        XCTAssertThrowsError(try EstimatorEvaluation.run(table: try shippedTable(), options: .init(observedFraction: 1)))
        XCTAssertThrowsError(try EstimatorEvaluation.run(table: try shippedTable(), options: .init(noise: -0.1)))
    }

    /// Observed cells return (about) their observed value; 1-worker placement is irrelevant;
    /// estimates for table keys go through the scale factor.
    func testObservedCellsAndConventions() throws {
        let table = try shippedTable()
        let estimator = try ThroughputEstimator(table: table)
        let key = JobTypeKey(model: "ResNet-18 (batch size 32)", scaleFactor: 4)
        let steps = table.throughput(key, gpuType: "p100", consolidated: false)
        let samples = steps * 32 * 4
        let estimate = try XCTUnwrap(estimator.estimate(key, gpuType: "p100", placement: .unconsolidated))
        XCTAssertEqual(estimate / samples, 1, accuracy: 0.01)
        XCTAssertEqual(
            ThroughputEstimator.stepsPerSecond(samplesPerSecond: estimate, jobType: key.model, workers: 4), steps,
            accuracy: steps * 0.01)
        XCTAssertEqual(
            estimator.estimate(jobType: "A3C", gpuType: "k80", workers: 1, placement: .unconsolidated),
            estimator.estimate(jobType: "A3C", gpuType: "k80", workers: 1, placement: .consolidated))
        XCTAssertEqual(
            Configuration(gpuType: "v100", workers: 1, placement: .unconsolidated), Configuration(gpuType: "v100", workers: 1))
        // Worker counts outside the table are interpolated / extrapolated smoothly.
        let w4 = estimator.estimate(jobType: key.model, gpuType: "v100", workers: 4)!
        let w8 = estimator.estimate(jobType: key.model, gpuType: "v100", workers: 8)!
        let w6 = estimator.estimate(jobType: key.model, gpuType: "v100", workers: 6)!
        XCTAssertGreaterThan(w6, min(w4, w8) * 0.8)
        XCTAssertLessThan(w6, max(w4, w8) * 1.25)
    }

    func testTableCellsAndFeatures() throws {
        let table = try shippedTable()
        let cells = TableCell.all(in: table)
        XCTAssertEqual(cells.count, 489)
        XCTAssertEqual(EstimatorEvaluation.evaluationCells(table: table, set: .distinct).count, 411)
        XCTAssertTrue(cells.allSatisfy { $0.samplesPerSecond > 0 })
        let f = JobTypeFeatures(jobType: "Recommendation (batch size 8192)")
        XCTAssertEqual(f.family, "Recommendation")
        XCTAssertEqual(f.batchSize, 8192)
        XCTAssertEqual(JobTypeFeatures(jobType: "A3C").family, "A3C")
        XCTAssertNil(JobTypeFeatures(jobType: "A3C").batchSize)
        XCTAssertEqual(JobTypeFeatures(jobType: "X (batch size zero)").family, "X (batch size zero)")
    }

    func testProfilingPlanAndNewJobType() throws {
        let plan = ThroughputEstimator.profilingPlan(
            gpuTypes: ["v100", "k80", "p100", "k80"], requestedWorkers: 4, requestedGPUType: "p100", placement: .unconsolidated)
        XCTAssertEqual(
            plan,
            [
                Configuration(gpuType: "v100", workers: 1), Configuration(gpuType: "k80", workers: 1),
                Configuration(gpuType: "p100", workers: 1),
                Configuration(gpuType: "p100", workers: 4, placement: .unconsolidated),
            ])
        XCTAssertEqual(ThroughputEstimator.profilingPlan(gpuTypes: ["v100"]), [Configuration(gpuType: "v100", workers: 1)])

        let table = try shippedTable()
        let result = try EstimatorEvaluation.newJobType(table: table, options: .init(seed: 1))
        XCTAssertEqual(result.jobTypes, 26)
        XCTAssertGreaterThanOrEqual(result.meanProfiledCells, 3)
        XCTAssertLessThanOrEqual(result.meanProfiledCells, 4)
        XCTAssertGreaterThan(result.overall.count, 250)
        XCTAssertLessThan(result.overall.medianAPE, 0.15)

        // Profiling a new job type through the API.
        var estimator = ThroughputEstimator()
        for cell in TableCell.all(in: table) where cell.jobType != "Transformer (batch size 64)" {
            try estimator.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        let truth = Dictionary(
            TableCell.all(in: table).filter { $0.jobType == "Transformer (batch size 64)" }.map {
                ($0.configuration, $0.samplesPerSecond)
            }, uniquingKeysWith: { a, _ in a })
        let configs = ThroughputEstimator.profilingPlan(gpuTypes: table.gpuTypes, requestedWorkers: 2)
        try estimator.profile(jobType: "Transformer (batch size 64)", configurations: configs) { truth[$0]! }
        estimator.fit()
        let errors = truth.filter { !configs.contains($0.key) }.map {
            abs(estimator.estimate(jobType: "Transformer (batch size 64)", configuration: $0.key)! / $0.value - 1)
        }
        XCTAssertLessThan(median(errors), 0.15)
    }

    /// Incremental fits give the same estimates as a fit from scratch (without the
    /// factorisation, which a fit from scratch would refit).
    func testIncrementalFitMatchesFullFit() throws {
        let table = try shippedTable()
        let cells = EstimatorEvaluation.evaluationCells(table: table, set: .distinct)
        var parameters = EstimatorParameters()
        parameters.rank = 0
        var incremental = ThroughputEstimator(parameters: parameters)
        for cell in cells.prefix(150) {
            try incremental.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(incremental.fit(), .full)
        XCTAssertEqual(incremental.fit(), .upToDate)
        for cell in cells[150..<160] {
            try incremental.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(incremental.fit(), .incremental)
        try incremental.observe(jobType: cells[3].jobType, configuration: cells[3].configuration, samplesPerSecond: cells[3].samplesPerSecond * 1.1)
        try incremental.observe(
            jobType: cells[7].jobType, configuration: cells[7].configuration, samplesPerSecond: cells[7].samplesPerSecond, weight: 50)
        XCTAssertEqual(incremental.fit(), .incremental, "re-observed cells: rank-one updates")
        for cell in cells.prefix(40) {
            try incremental.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(incremental.fit(), .refactored, "many re-observed cells: refactor")

        var scratch = ThroughputEstimator(parameters: parameters)
        for cell in cells.prefix(160) {
            try scratch.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        try scratch.observe(jobType: cells[3].jobType, configuration: cells[3].configuration, samplesPerSecond: cells[3].samplesPerSecond * 1.1)
        try scratch.observe(
            jobType: cells[7].jobType, configuration: cells[7].configuration, samplesPerSecond: cells[7].samplesPerSecond, weight: 50)
        var scratchAfterUpdates = scratch
        scratchAfterUpdates.fit(full: true)
        for cell in cells.prefix(40) {
            try scratch.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        scratch.fit(full: true)
        for cell in cells[160...].prefix(40) + cells.prefix(10) {
            let x = try XCTUnwrap(incremental.estimate(jobType: cell.jobType, configuration: cell.configuration))
            let y = try XCTUnwrap(scratch.estimate(jobType: cell.jobType, configuration: cell.configuration))
            XCTAssertEqual(x / y, 1, accuracy: 1e-9)
        }
        // Rank-one updates agree with a fit from scratch.
        var updated = ThroughputEstimator(parameters: parameters)
        for cell in cells.prefix(160) {
            try updated.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        updated.fit()
        try updated.observe(jobType: cells[3].jobType, configuration: cells[3].configuration, samplesPerSecond: cells[3].samplesPerSecond * 1.1)
        try updated.observe(
            jobType: cells[7].jobType, configuration: cells[7].configuration, samplesPerSecond: cells[7].samplesPerSecond, weight: 50)
        XCTAssertEqual(updated.fit(), .incremental)
        for cell in cells[160...].prefix(40) + cells.prefix(10) {
            let x = try XCTUnwrap(updated.estimate(jobType: cell.jobType, configuration: cell.configuration))
            let y = try XCTUnwrap(scratchAfterUpdates.estimate(jobType: cell.jobType, configuration: cell.configuration))
            XCTAssertEqual(x / y, 1, accuracy: 1e-9)
            let dx = try XCTUnwrap(updated.estimateDetail(jobType: cell.jobType, configuration: cell.configuration))
            let dy = try XCTUnwrap(scratchAfterUpdates.estimateDetail(jobType: cell.jobType, configuration: cell.configuration))
            XCTAssertEqual(dx.logStandardDeviation, dy.logStandardDeviation, accuracy: 1e-7)
        }
        // With the factorisation on, a large growth refits it.
        var growing = ThroughputEstimator()
        for cell in cells.prefix(50) {
            try growing.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(growing.fit(), .full)
        for cell in cells[50..<55] {
            try growing.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(growing.fit(), .incremental)
        for cell in cells[55..<100] {
            try growing.observe(jobType: cell.jobType, configuration: cell.configuration, samplesPerSecond: cell.samplesPerSecond)
        }
        XCTAssertEqual(growing.fit(), .full)
    }
}
