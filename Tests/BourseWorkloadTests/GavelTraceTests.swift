import Foundation
import XCTest

@testable import BourseWorkload

final class GavelTraceTests: XCTestCase {
    private let good = "A3C\tpython3 main.py\trl\t--max-steps\t0\t25832\t1\t1\t-1.000000\t259\n"

    private func line(_ fields: [String]) -> String { fields.joined(separator: "\t") + "\n" }

    private func fields(
        type: String = "A3C", steps: String = "100", scale: String = "1", weight: String = "1", slo: String = "-1",
        arrival: String = "0"
    ) -> String {
        line([type, "cmd", "dir", "--steps", "1", steps, scale, weight, slo, arrival])
    }

    private func error(_ text: String, table: ThroughputTable? = nil) -> TraceError? {
        do {
            let jobs = try GavelTrace.parse(text: text, file: "t.trace", table: table)
            XCTFail("expected an error, parsed \(jobs.count) jobs")
            return nil
        } catch let e as TraceError {
            return e
        } catch {
            XCTFail("unexpected error \(error)")
            return nil
        }
    }

    private var table: ThroughputTable {
        get throws { try ThroughputTable.parse(data: Data(#"{"v100": {"('A3C', 1)": {"null": 2.5}}}"#.utf8)) }
    }

    func testParsesGavelLine() throws {
        let jobs = try GavelTrace.parse(text: good)
        XCTAssertEqual(jobs.count, 1)
        let job = jobs[0]
        XCTAssertEqual(job.jobType, "A3C")
        XCTAssertEqual(job.command, "python3 main.py")
        XCTAssertEqual(job.workingDirectory, "rl")
        XCTAssertEqual(job.numStepsArg, "--max-steps")
        XCTAssertFalse(job.needsDataDir)
        XCTAssertEqual(job.totalSteps, 25832)
        XCTAssertEqual(job.scaleFactor, 1)
        XCTAssertEqual(job.priorityWeight, 1)
        XCTAssertEqual(job.slo, -1)
        XCTAssertEqual(job.arrivalTime, 259)
    }

    func testErrorsNameLineAndField() throws {
        let first = fields()
        XCTAssertEqual(
            error(first + "A3C\tcmd\n")?.description,
            "t.trace:2: expected 10 tab-separated fields (job_type, command, working_directory, num_steps_arg, needs_data_dir, total_steps, scale_factor, priority_weight, SLO, arrival_time_s), found 2"
        )
        XCTAssertEqual(error(first + fields(steps: "lots"))?.description, "t.trace:2 (field total_steps): 'lots' is not an integer")
        XCTAssertEqual(error(fields(steps: "0"))?.description, "t.trace:1 (field total_steps): total_steps must be > 0, got 0")
        XCTAssertEqual(error(fields(steps: "-5"))?.field, "total_steps")
        XCTAssertEqual(error(fields(arrival: "-3"))?.description, "t.trace:1 (field arrival_time_s): arrival time must be >= 0, got -3")
        XCTAssertEqual(error(fields(arrival: "soon"))?.description, "t.trace:1 (field arrival_time_s): 'soon' is not a finite number")
        XCTAssertEqual(error(fields(scale: "0"))?.field, "scale_factor")
        XCTAssertEqual(error(fields(weight: "0"))?.field, "priority_weight")
        XCTAssertEqual(error(fields(slo: "nan"))?.field, "SLO")
        XCTAssertEqual(
            error(fields(arrival: "10") + fields(arrival: "5"))?.description,
            "t.trace:2 (field arrival_time_s): arrival time 5 is earlier than the previous job's (10); lines must be in arrival order"
        )
        // Against a table: unknown job type, scale factor not in the table.
        XCTAssertEqual(
            error(first + "\n" + fields(type: "GPT-9"), table: try table)?.description,
            "t.trace:3 (field job_type): unknown job type 'GPT-9': not in the throughput table")
        XCTAssertEqual(
            error(fields(scale: "4"), table: try table)?.description,
            "t.trace:1 (field scale_factor): scale factor 4 is not in the throughput table for 'A3C' (it has 1)")
    }

    func testRoundTrip() throws {
        for name in ["dev-80-multi", "dev-80-single", "dev-120-static", "dev-300-multi"] {
            let path = repoRoot.appendingPathComponent("data/traces/\(name).trace").path
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let jobs = try GavelTrace.parse(text: text, file: path)
            XCTAssertGreaterThan(jobs.count, 0)
            XCTAssertEqual(GavelTrace.format(jobs: jobs), text, name)
        }
        let odd = [TraceJob(jobType: "A3C", totalSteps: 7, priorityWeight: 2.5, slo: 1.5, arrivalTime: 12.25)]
        XCTAssertEqual(try GavelTrace.parse(text: GavelTrace.format(jobs: odd)), odd)
    }

    func testShippedTracesValidateAgainstShippedTable() throws {
        let table = try ThroughputTable.load(path: repoRoot.appendingPathComponent("data/gavel-throughputs.json").path)
        let counts = ["dev-80-multi": 80, "dev-80-single": 80, "dev-120-static": 120, "dev-300-multi": 300]
        for (name, count) in counts {
            let jobs = try GavelTrace.load(path: repoRoot.appendingPathComponent("data/traces/\(name).trace").path, table: table)
            XCTAssertEqual(jobs.count, count, name)
        }
    }

    func testMissingFileIsAClearError() {
        XCTAssertThrowsError(try GavelTrace.load(path: "/nonexistent/x.trace")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/nonexistent/x.trace: cannot read the file"))
        }
    }
}
