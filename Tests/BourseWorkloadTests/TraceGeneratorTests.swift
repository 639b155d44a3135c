import Foundation
import XCTest

@testable import BourseWorkload

final class TraceGeneratorTests: XCTestCase {
    /// A few job types with V100 throughputs from Gavel's table.
    private let types: [JobTypeInfo] = [
        JobTypeInfo(
            model: "ResNet-18 (batch size 32)",
            referenceStepsPerSecond: [1: 29.947157347732464, 2: 94.24893164660543, 4: 114.73342037584995, 8: 340.0383618985821]),
        JobTypeInfo(
            model: "Transformer (batch size 128)",
            referenceStepsPerSecond: [1: 5.44610521981264, 2: 10.069238394742342, 4: 14.17451716526748, 8: 30.88352104398441]),
        JobTypeInfo(
            model: "LM (batch size 20)",
            referenceStepsPerSecond: [1: 64.74245099960703, 2: 132.17413449742747, 4: 110.99685986392635, 8: 497.2952582330656]),
        JobTypeInfo(model: "A3C", referenceStepsPerSecond: [1: 7.175767179667988]),
        JobTypeInfo(model: "Recommendation (batch size 1024)", referenceStepsPerSecond: [1: 13.2825697082565]),
    ]

    private var dataParallel: [JobTypeInfo] { types.filter(\.isDataParallel) }

    /// Seconds a job lasts on the reference GPU, from its steps.
    private func seconds(_ job: TraceJob) -> Double {
        let type = types.first { $0.model == job.jobType }!
        return Double(job.totalSteps) / type.referenceStepsPerSecond[job.scaleFactor]!
    }

    private func text(_ jobs: [TraceJob]) -> String { GavelTrace.format(jobs: jobs) }

    /// The repository's data directory (shipped throughput table and Gavel's dev traces).
    private let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("data")

    // MARK: - SeededRandom

    func testSeededRandomMatchesReferenceOutputs() {
        var sm = SplitMix64(state: 0)
        XCTAssertEqual(sm.next(), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(sm.next(), 0x6E78_9E6A_A1B9_65F4)
        var rng = SeededRandom(seed: 0)
        XCTAssertEqual([rng.next(), rng.next(), rng.next()], [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0])
        rng = SeededRandom(seed: 42)
        XCTAssertEqual(rng.next(), 0x1578_0B2E_0C2E_C716)
    }

    func testSeededRandomHelpers() {
        var rng = SeededRandom(seed: 7)
        var counts = [0, 0, 0]
        var sum = 0.0
        for _ in 0..<30_000 {
            counts[rng.nextInt(below: 3)] += 1
            let u = rng.nextUnitDouble()
            XCTAssertTrue(u >= 0 && u < 1)
            sum += rng.nextExponential(mean: 10)
        }
        for c in counts { XCTAssertEqual(Double(c) / 30_000, 1.0 / 3, accuracy: 0.015) }
        XCTAssertEqual(sum / 30_000, 10, accuracy: 0.2)
    }

    // MARK: - Synthetic traces

    func testSameSeedSameTraceDifferentSeedDifferentTrace() throws {
        let spec = SyntheticTraceSpec(jobs: 200, arrivals: .poisson(meanInterArrival: 1800), seed: 3)
        let a = try TraceGenerator.synthetic(spec, jobTypes: types)
        let b = try TraceGenerator.synthetic(spec, jobTypes: types.reversed())  // order of types does not matter
        XCTAssertEqual(a, b)
        XCTAssertEqual(text(a), text(b))
        var other = spec
        other.seed = 4
        let c = try TraceGenerator.synthetic(other, jobTypes: types)
        XCTAssertNotEqual(text(a), text(c))
        XCTAssertEqual(a.count, 200)
    }

    func testChangingTheArrivalRateKeepsTheJobMix() throws {
        let a = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 50, arrivals: .poisson(meanInterArrival: 1800), seed: 1), jobTypes: types)
        let b = try TraceGenerator.synthetic(SyntheticTraceSpec(jobs: 50, arrivals: .allAtZero, seed: 1), jobTypes: types)
        XCTAssertEqual(a.map(\.jobType), b.map(\.jobType))
        XCTAssertEqual(a.map(\.totalSteps), b.map(\.totalSteps))
        XCTAssertEqual(a.map(\.scaleFactor), b.map(\.scaleFactor))
    }

    func testMultiGPUMixIsRespected() throws {
        let mix = try ScaleMix(parsing: "0.6,0.1,0.2,0.1")
        let jobs = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 2000, arrivals: .allAtZero, scaleMix: mix, seed: 11), jobTypes: dataParallel)
        let counts = jobs.reduce(into: [Int: Int]()) { $0[$1.scaleFactor, default: 0] += 1 }
        for (scale, fraction) in [(1, 0.6), (2, 0.1), (4, 0.2), (8, 0.1)] {
            XCTAssertEqual(Double(counts[scale, default: 0]) / 2000, fraction, accuracy: 0.03, "scale \(scale)")
        }
    }

    func testOnlyDataParallelTypesGetMoreThanOneGPU() throws {
        let jobs = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 2000, arrivals: .allAtZero, scaleMix: .gavel, seed: 5), jobTypes: types)
        let single = jobs.filter { $0.jobType == "A3C" || $0.jobType.hasPrefix("Recommendation") }
        XCTAssertFalse(single.isEmpty)
        XCTAssertTrue(single.allSatisfy { $0.scaleFactor == 1 })
        let multi = jobs.filter { $0.jobType != "A3C" && !$0.jobType.hasPrefix("Recommendation") }
        let fractions = [1, 2, 4, 8].map { s in Double(multi.filter { $0.scaleFactor == s }.count) / Double(multi.count) }
        XCTAssertEqual(fractions[0], 0.7, accuracy: 0.03)
        XCTAssertEqual(fractions[1], 0.1, accuracy: 0.03)
        XCTAssertEqual(fractions[2], 0.2, accuracy: 0.03)
        XCTAssertEqual(fractions[3], 0)
        // Job types are picked uniformly.
        for type in types {
            XCTAssertEqual(Double(jobs.filter { $0.jobType == type.model }.count) / 2000, 0.2, accuracy: 0.03, type.model)
        }
    }

    func testPoissonInterArrivalMeanIsRespected() throws {
        let jobs = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 2000, arrivals: .poisson(meanInterArrival: 500), seed: 9), jobTypes: types)
        XCTAssertEqual(jobs.first?.arrivalTime, 0)
        let gaps = zip(jobs.dropFirst(), jobs).map { $0.arrivalTime - $1.arrivalTime }
        XCTAssertTrue(gaps.allSatisfy { $0 >= 0 })
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        XCTAssertEqual(mean, 500, accuracy: 25)  // 5 %; the standard error is about 2.2 %
        // Exponential gaps: the standard deviation is close to the mean.
        let sd = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count)).squareRoot()
        XCTAssertEqual(sd / mean, 1, accuracy: 0.1)
        XCTAssertTrue(jobs.allSatisfy { $0.arrivalTime == $0.arrivalTime.rounded() })
    }

    func testStaticTraceAndDurations() throws {
        let jobs = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 400, arrivals: .allAtZero, durations: .wholeHours(1...4), seed: 2), jobTypes: types)
        XCTAssertTrue(jobs.allSatisfy { $0.arrivalTime == 0 })
        var hours = Set<Int>()
        for job in jobs {
            let h = seconds(job) / 3600
            XCTAssertEqual(h, h.rounded(), accuracy: 0.001, "\(job)")
            hours.insert(Int(h.rounded()))
        }
        XCTAssertEqual(hours, [1, 2, 3, 4])

        let uniform = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 400, arrivals: .allAtZero, durations: try DurationHours(parsing: "0.5-2"), seed: 2),
            jobTypes: types)
        let h = uniform.map { seconds($0) / 3600 }
        XCTAssertTrue(h.allSatisfy { $0 >= 0.499 && $0 <= 2.001 })
        XCTAssertGreaterThan(Set(h.map { Int($0 * 10) }).count, 10)
    }

    func testGavelLaunchFields() throws {
        let job = try TraceGenerator.synthetic(SyntheticTraceSpec(jobs: 1, arrivals: .allAtZero), jobTypes: [types[1]])[0]
        XCTAssertEqual(job.jobType, "Transformer (batch size 128)")
        XCTAssertEqual(job.command, "python3 train.py -data %s/translation/multi30k.atok.low.pt -batch_size 128 -proj_share_weight")
        XCTAssertEqual(job.workingDirectory, "translation")
        XCTAssertEqual(job.numStepsArg, "-step")
        XCTAssertTrue(job.needsDataDir)
        XCTAssertEqual(job.priorityWeight, 1)
        XCTAssertEqual(job.slo, -1)
        XCTAssertFalse(GavelJobCommands.launch(for: "A3C").needsDataDir)
        XCTAssertEqual(GavelJobCommands.launch(for: "Mystery").command, "-")
    }

    func testOptionParsingAndErrors() throws {
        XCTAssertEqual(try ScaleMix(parsing: "0.7, 0.1, 0.2"), .gavel)
        XCTAssertEqual(try ScaleMix(parsing: "1"), .singleGPU)
        XCTAssertThrowsError(try ScaleMix(parsing: "0.7,0.1")) { XCTAssertTrue("\($0)".contains("sum to 1"), "\($0)") }
        XCTAssertThrowsError(try ScaleMix(parsing: "0.7,x,0.3")) { XCTAssertTrue("\($0)".contains("\"x\""), "\($0)") }
        XCTAssertThrowsError(try ScaleMix(parsing: "0.2,0.2,0.2,0.2,0.2")) { XCTAssertTrue("\($0)".contains("1 to 4"), "\($0)") }
        XCTAssertThrowsError(try ScaleMix(parsing: "1.5,-0.5")) { XCTAssertTrue("\($0)".contains("between 0 and 1"), "\($0)") }
        XCTAssertEqual(try DurationHours(parsing: "1-4"), .wholeHours(1...4))
        XCTAssertEqual(try DurationHours(parsing: "3"), .wholeHours(3...3))
        XCTAssertEqual(try DurationHours(parsing: "0.5-2"), .uniform(0.5...2))
        for bad in ["4-1", "0-2", "a-b", "1-2-3", ""] {
            XCTAssertThrowsError(try DurationHours(parsing: bad), bad)
        }
        XCTAssertThrowsError(
            try TraceGenerator.synthetic(SyntheticTraceSpec(jobs: 5, arrivals: .poisson(meanInterArrival: 0)), jobTypes: types))
        XCTAssertThrowsError(try TraceGenerator.synthetic(SyntheticTraceSpec(jobs: 5, arrivals: .allAtZero), jobTypes: []))
    }

    func testSummary() throws {
        let jobs = [
            TraceJob(jobType: "A", totalSteps: 1, scaleFactor: 1, arrivalTime: 0),
            TraceJob(jobType: "A", totalSteps: 1, scaleFactor: 1, arrivalTime: 100),
            TraceJob(jobType: "A", totalSteps: 1, scaleFactor: 4, arrivalTime: 7200),
        ]
        XCTAssertEqual(
            TraceSummary(jobs: jobs).description, "3 jobs; GPUs per job 1: 2 (67%), 4: 1 (33%); arrivals 0-7200 s (2 h)")
        XCTAssertEqual(TraceSummary(jobs: [jobs[0]]).description, "1 job; GPUs per job 1: 1 (100%); all arrive at 0 s")
    }

    // MARK: - From Philly

    func testFromPhillyWindowArrivalsAndDurations() throws {
        let trace = try PhillyTrace(parsing: phillyFixtureCSV)
        let start = PhillyTrace.parseTimestamp("2017-10-07 07:00:00")!
        let window = PhillyWindow(start: start, seconds: 2 * 3600)
        let result = try TraceGenerator.fromPhilly(trace, window: window, jobTypes: types, seed: 1)
        XCTAssertEqual(result.jobs.count, 22)
        XCTAssertEqual(result.droppedByLimit, 0)
        XCTAssertEqual(result.scaleAdjustments, [])
        XCTAssertEqual(result.jobs.map(\.arrivalTime).prefix(4), [115, 715, 1043, 1043])
        XCTAssertEqual(result.jobs.map(\.scaleFactor), result.sourceJobs.map(\.numGPUs))
        XCTAssertEqual(result.jobs.filter { $0.scaleFactor == 2 }.count, 4)
        for (job, source) in zip(result.jobs, result.sourceJobs) {
            // The job lasts as long on the reference GPU as it ran in the log (to within a step).
            let type = types.first { $0.model == job.jobType }!
            XCTAssertEqual(seconds(job), source.duration, accuracy: 1 / type.referenceStepsPerSecond[job.scaleFactor]!)
            XCTAssertTrue(type.scaleFactors.contains(job.scaleFactor))
        }
        // Multi-GPU jobs only get data-parallel types.
        XCTAssertTrue(result.jobs.filter { $0.scaleFactor > 1 }.allSatisfy { j in dataParallel.contains { $0.model == j.jobType } })

        // Seeded: same seed, same trace; another seed, other job types.
        let again = try TraceGenerator.fromPhilly(trace, window: window, jobTypes: types, seed: 1)
        XCTAssertEqual(text(again.jobs), text(result.jobs))
        let other = try TraceGenerator.fromPhilly(trace, window: window, jobTypes: types, seed: 2)
        XCTAssertNotEqual(other.jobs.map(\.jobType), result.jobs.map(\.jobType))
        XCTAssertEqual(other.jobs.map(\.arrivalTime), result.jobs.map(\.arrivalTime))

        // --max-jobs keeps the earliest.
        let limited = try TraceGenerator.fromPhilly(trace, window: window, maxJobs: 5, jobTypes: types, seed: 1)
        XCTAssertEqual(limited.jobs.count, 5)
        XCTAssertEqual(limited.droppedByLimit, 17)
        XCTAssertEqual(limited.sourceJobs, Array(result.sourceJobs.prefix(5)))
    }

    func testFromPhillyCapsGPUCountsTheTableLacks() throws {
        let trace = try PhillyTrace(parsing: phillyFixtureCSV)
        // Everything in the fixture: one 32-GPU job becomes 8 GPUs.
        let all = PhillyWindow(start: trace.earliestSubmitTime!, seconds: 60 * 86_400)
        let result = try TraceGenerator.fromPhilly(trace, window: all, jobTypes: types, seed: 0)
        XCTAssertEqual(result.jobs.count, 40)
        XCTAssertEqual(result.scaleAdjustments, [.init(from: 32, to: 8, jobs: 1)])
        XCTAssertEqual(result.adjustmentSummary, "32 GPUs -> 8 (1 job)")
        let job = try XCTUnwrap(zip(result.jobs, result.sourceJobs).first { $0.1.numGPUs == 32 }?.0)
        XCTAssertEqual(job.scaleFactor, 8)
        XCTAssertEqual(job.arrivalTime, 0 + Double(PhillyTrace.parseTimestamp("2017-10-06 14:37:26")! - trace.earliestSubmitTime!))
        // A table without 8-GPU throughputs: 8 and 32 become 4; odd counts round down to a power the table has.
        let upTo4 = types.map { t in
            JobTypeInfo(model: t.model, referenceStepsPerSecond: t.referenceStepsPerSecond.filter { $0.key <= 4 })
        }
        let capped = try TraceGenerator.fromPhilly(trace, window: all, jobTypes: upTo4, seed: 0)
        XCTAssertEqual(capped.scaleAdjustments, [.init(from: 8, to: 4, jobs: 1), .init(from: 32, to: 4, jobs: 1)])
        XCTAssertEqual(Set(capped.jobs.map(\.scaleFactor)), [1, 2, 4])

        let odd = PhillyTrace(jobs: [PhillyJob(line: 2, submitTime: 100, duration: 60, numGPUs: 3, gpuTime: 180, cluster: "x")])
        let three = try TraceGenerator.fromPhilly(odd, window: PhillyWindow(start: 100, seconds: 1), jobTypes: types, seed: 0)
        XCTAssertEqual(three.jobs.map(\.scaleFactor), [2])
        XCTAssertThrowsError(try TraceGenerator.fromPhilly(odd, window: PhillyWindow(start: 100, seconds: 0), jobTypes: types, seed: 0))
    }

    // MARK: - With the shipped table and Gavel's format

    func testShippedTableTracesRoundTripThroughGavelFormat() throws {
        let table = try ThroughputTable.load(path: dataDirectory.appendingPathComponent("gavel-throughputs.json").path)
        let all = try JobTypeInfo.all(in: table)
        XCTAssertEqual(all.count, 26)
        XCTAssertEqual(all.filter(\.isDataParallel).count, 19)  // ResNet-18/50, Transformer, LM
        let resnet50 = try XCTUnwrap(all.first { $0.model == "ResNet-50 (batch size 64)" })
        XCTAssertEqual(resnet50.referenceStepsPerSecond[8] ?? 0, 17.303172756892167, accuracy: 1e-9)
        XCTAssertThrowsError(try JobTypeInfo.all(in: table, referenceGPU: "h100")) {
            XCTAssertTrue("\($0)".contains("'h100'"), "\($0)")
        }

        let synthetic = try TraceGenerator.synthetic(
            SyntheticTraceSpec(jobs: 300, arrivals: .poisson(meanInterArrival: 500), seed: 0), jobTypes: all)
        XCTAssertEqual(try GavelTrace.parse(text: GavelTrace.format(jobs: synthetic), table: table), synthetic)

        let trace = try PhillyTrace(parsing: phillyFixtureCSV)
        let philly = try TraceGenerator.fromPhilly(
            trace, window: PhillyWindow(start: trace.earliestSubmitTime!, seconds: 60 * 86_400), jobTypes: all, seed: 0)
        XCTAssertEqual(try GavelTrace.parse(text: GavelTrace.format(jobs: philly.jobs), table: table), philly.jobs)
    }

    func testLaunchFieldsMatchGavelDevTraces() throws {
        var checked = Set<String>()
        for name in ["dev-80-multi", "dev-80-single", "dev-300-multi", "dev-120-static"] {
            let jobs = try GavelTrace.load(path: dataDirectory.appendingPathComponent("traces/\(name).trace").path)
            for job in jobs {
                let info = JobTypeInfo(model: job.jobType, referenceStepsPerSecond: [1: 1])
                XCTAssertEqual(info.command, job.command, job.jobType)
                XCTAssertEqual(info.workingDirectory, job.workingDirectory, job.jobType)
                XCTAssertEqual(info.numStepsArg, job.numStepsArg, job.jobType)
                XCTAssertEqual(info.needsDataDir, job.needsDataDir, job.jobType)
                checked.insert(job.jobType)
            }
        }
        XCTAssertEqual(checked.count, 26)
    }
}
