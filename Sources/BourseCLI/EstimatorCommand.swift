import ArgumentParser
import BourseEstimator
import BourseWorkload
import Foundation

/// `bourse estimator ...`: the throughput estimator (collaborative filtering over job type x GPU
/// type x worker count).
struct EstimatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "estimator",
        abstract: "Evaluate the throughput estimator (job type x GPU type x worker count completion).",
        discussion: """
            The estimator completes a sparse tensor of observed throughputs (job type x GPU type x \
            worker count x placement) from a few observed cells; Bourse's policy uses its \
            estimates for job types it has only profiled. See docs/estimator.md.
            """,
        subcommands: [Eval.self]
    )
}

extension EstimatorCommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "eval",
            abstract: "Error of the estimator on held-out cells of the throughput table.",
            discussion: """
                Observes a random fraction of the table's cells (with seeded multiplicative \
                noise), fits the estimator, and reports the absolute percentage error \
                |estimate/truth - 1| on all other cells: median, mean, 90th percentile, per GPU \
                type. Also runs the new-job-type scenario (each job type in turn hidden except a \
                few profiled cells: 1 worker on each GPU type plus one multi-worker \
                configuration) and times a fit of the whole table.

                Cells (--cells): 'table' = every non-zero entry of the table, *_unconsolidated \
                worker types included (a 1-worker job has the same throughput in both); \
                'distinct' = each (job type, GPU type, workers, placement) once.

                Examples:
                  bourse estimator eval
                  bourse estimator eval --observed 0.1 --noise 0.05 --seed 3 --json
                  bourse estimator eval --runs 5 --cells distinct --noise-model gaussian
                """)

        @Option(help: ArgumentHelp("Fraction of the cells observed, in (0, 1).", valueName: "fraction"))
        var observed: Double = 0.3

        @Option(help: ArgumentHelp("Relative noise of the observations, in [0, 1).", valueName: "fraction"))
        var noise: Double = 0.05

        @Option(
            name: .customLong("noise-model"),
            help: ArgumentHelp("uniform (x * (1 + noise * U[-1,1])) or gaussian (x * (1 + noise * N(0,1))).", valueName: "model"))
        var noiseModel: String = EstimatorEvaluation.NoiseModel.uniform.rawValue

        @Option(help: ArgumentHelp("table (every entry) or distinct (each configuration once).", valueName: "set"))
        var cells: String = EstimatorEvaluation.CellSet.table.rawValue

        @Option(help: ArgumentHelp("Seed of the sampling and noise; the same seed gives the same figures.", valueName: "n"))
        var seed: UInt64 = 0

        @Option(help: ArgumentHelp("Repeat with seeds seed, seed+1, ... and average the figures.", valueName: "n"))
        var runs: Int = 1

        @Option(
            help: ArgumentHelp(
                "Throughput table in Gavel's JSON format (default: the shipped data/gavel-throughputs.json).",
                valueName: "file"))
        var throughputs: String?

        @Option(
            help: ArgumentHelp(
                "Rank of the collaborative-filtering factorisation (0 turns it off; default \(EstimatorParameters.default.rank)).",
                valueName: "n"))
        var rank: Int?

        @Flag(help: "Print the figures as JSON (fractions: 0.07 = 7 %).")
        var json = false

        func validate() throws {
            guard observed.isFinite, observed > 0, observed < 1 else { throw ValidationError("--observed must be in (0, 1)") }
            guard noise.isFinite, noise >= 0, noise < 1 else { throw ValidationError("--noise must be in [0, 1)") }
            guard EstimatorEvaluation.NoiseModel(rawValue: noiseModel) != nil else {
                throw ValidationError("--noise-model must be uniform or gaussian")
            }
            guard EstimatorEvaluation.CellSet(rawValue: cells) != nil else {
                throw ValidationError("--cells must be table or distinct")
            }
            guard runs >= 1, runs <= 1000 else { throw ValidationError("--runs must be between 1 and 1000") }
            if let rank, rank < 0 || rank > 16 { throw ValidationError("--rank must be between 0 and 16") }
        }

        func run() throws {
            let tablePath = try throughputs ?? SimFiles.defaultTablePath()
            let table = try SimFiles.report { try ThroughputTable.load(path: tablePath) }
            var parameters = EstimatorParameters.default
            if let rank { parameters.rank = rank }
            var results: [EstimatorEvaluation.Result] = []
            var newJob: [EstimatorEvaluation.NewJobTypeResult] = []
            for run in 0..<runs {
                let options = EstimatorEvaluation.Options(
                    observedFraction: observed, noise: noise,
                    noiseModel: EstimatorEvaluation.NoiseModel(rawValue: noiseModel)!,
                    cells: EstimatorEvaluation.CellSet(rawValue: cells)!, seed: seed &+ UInt64(run), parameters: parameters)
                results.append(try SimFiles.report { try EstimatorEvaluation.run(table: table, options: options) })
                newJob.append(try SimFiles.report { try EstimatorEvaluation.newJobType(table: table, options: options) })
            }
            let timing = try SimFiles.report { try EstimatorEvaluation.fitTiming(table: table, parameters: parameters) }
            if json {
                Output.line(
                    jsonReport(results, newJob, timing, rank: parameters.rank, tableName: URL(fileURLWithPath: tablePath).lastPathComponent))
            } else {
                Output.line(textReport(results, newJob, timing, tableName: URL(fileURLWithPath: tablePath).lastPathComponent))
            }
        }

        private func average<T>(_ items: [T], _ value: (T) -> Double) -> Double {
            items.isEmpty ? 0 : items.map(value).reduce(0, +) / Double(items.count)
        }

        private func rounded(_ x: Double, _ digits: Double = 1e5) -> Double { (x * digits).rounded() / digits }

        private func summaryObject(_ s: EstimatorEvaluation.ErrorSummary) -> [String: Any] {
            [
                "median_ape": rounded(s.medianAPE), "mean_ape": rounded(s.meanAPE), "p90_ape": rounded(s.p90APE),
                "max_ape": rounded(s.maxAPE), "held_out": s.count,
            ]
        }

        private func jsonReport(
            _ results: [EstimatorEvaluation.Result], _ newJob: [EstimatorEvaluation.NewJobTypeResult],
            _ timing: EstimatorEvaluation.FitTiming, rank: Int, tableName: String
        ) -> String {
            let first = results[0]
            var perGPU: [String: Any] = [:]
            for (gpu, _) in first.perGPU {
                let summaries = results.compactMap { r in r.perGPU.first { $0.gpuType == gpu }?.summary }
                perGPU[gpu] = [
                    "median_ape": rounded(average(summaries) { $0.medianAPE }),
                    "mean_ape": rounded(average(summaries) { $0.meanAPE }),
                    "held_out": summaries.first?.count ?? 0,
                ]
            }
            var object: [String: Any] = [
                "throughputs": tableName,
                "observed_fraction": observed, "noise": noise, "noise_model": noiseModel, "cells": cells,
                "seed": seed, "runs": runs, "rank": rank,
                "cells_total": first.cells, "observed": first.observed, "held_out": first.overall.count,
                "unanswered": first.unanswered,
                "median_ape": rounded(average(results) { $0.overall.medianAPE }),
                "mean_ape": rounded(average(results) { $0.overall.meanAPE }),
                "p90_ape": rounded(average(results) { $0.overall.p90APE }),
                "max_ape": rounded(average(results) { $0.overall.maxAPE }),
                "single_worker": ["median_ape": rounded(average(results) { $0.singleWorker.medianAPE })],
                "multi_worker": ["median_ape": rounded(average(results) { $0.multiWorker.medianAPE })],
                "per_gpu": perGPU,
                "new_job_type": [
                    "median_ape": rounded(average(newJob) { $0.overall.medianAPE }),
                    "mean_ape": rounded(average(newJob) { $0.overall.meanAPE }),
                    "p90_ape": rounded(average(newJob) { $0.overall.p90APE }),
                    "held_out": newJob[0].overall.count, "job_types": newJob[0].jobTypes,
                    "profiled_cells_per_job_type": rounded(newJob[0].meanProfiledCells, 100),
                ],
                "fit_ms": [
                    "full": rounded(timing.full, 1000), "new_cell": rounded(timing.newCell, 1000),
                    "feedback": rounded(timing.feedback, 1000), "cells": timing.cells,
                ],
            ]
            if runs > 1 {
                object["per_run"] = zip(results, newJob).map { r, n in
                    [
                        "seed": r.options.seed, "median_ape": rounded(r.overall.medianAPE), "mean_ape": rounded(r.overall.meanAPE),
                        "new_job_type_median_ape": rounded(n.overall.medianAPE),
                    ] as [String: Any]
                }
            }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
                let text = String(data: data, encoding: .utf8)
            else { return "{}" }
            return text
        }

        private func percent(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }

        private func textReport(
            _ results: [EstimatorEvaluation.Result], _ newJob: [EstimatorEvaluation.NewJobTypeResult],
            _ timing: EstimatorEvaluation.FitTiming, tableName: String
        ) -> String {
            let first = results[0]
            let seeds = runs == 1 ? "seed \(seed)" : "seeds \(seed)...\(seed &+ UInt64(runs - 1)) (averaged)"
            var out = """
                \(tableName): \(first.observed) of \(first.cells) \(cells) cells observed \
                (\(percent(observed))), \(percent(noise)) \(noiseModel) noise, \(seeds)
                held-out cells: \(first.overall.count)\(first.unanswered > 0 ? " (+\(first.unanswered) unanswered)" : "")

                """
            func line(_ label: String, _ summaries: [EstimatorEvaluation.ErrorSummary]) {
                let label = label.padding(toLength: 22, withPad: " ", startingAt: 0)
                out += "  \(label) median \(percent(average(summaries) { $0.medianAPE }).leftPadded(7))"
                out += "   mean \(percent(average(summaries) { $0.meanAPE }).leftPadded(7))"
                out += "   p90 \(percent(average(summaries) { $0.p90APE }).leftPadded(7))"
                out += "   (\(summaries.first?.count ?? 0) cells)\n"
            }
            line("all held-out", results.map(\.overall))
            for (gpu, _) in first.perGPU {
                line("  on \(gpu)", results.compactMap { r in r.perGPU.first { $0.gpuType == gpu }?.summary })
            }
            line("  1 worker", results.map(\.singleWorker))
            line("  several workers", results.map(\.multiWorker))
            out += String(
                format: "new job type (%d job types, %.1f profiled cells each, rest %@ observed):\n",
                newJob[0].jobTypes, newJob[0].meanProfiledCells, percent(observed))
            line("unprofiled configs", newJob.map(\.overall))
            out += String(
                format: "fit on %d cells: %.2f ms from scratch, %.2f ms after a new cell, %.2f ms after feedback on a cell",
                timing.cells, timing.full, timing.newCell, timing.feedback)
            return out
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
