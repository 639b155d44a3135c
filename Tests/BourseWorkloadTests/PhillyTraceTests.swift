import Foundation
import XCTest

@testable import BourseWorkload

final class PhillyTraceTests: XCTestCase {
    private let header = "timestamp,duration,num_gpus,gpu_time,cluster\n"

    /// Parses `text` expecting a failure; returns the error.
    private func parseError(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> TraceError? {
        do {
            let trace = try PhillyTrace(parsing: text, source: "t.csv")
            XCTFail("expected a parse error, got \(trace.jobs.count) jobs", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertError(
        _ text: String, line: Int, field: String?, mentions needle: String, file: StaticString = #filePath,
        testLine: UInt = #line
    ) {
        guard let error = parseError(text, file: file, line: testLine) else { return }
        XCTAssertEqual(error.line, line, "\(error)", file: file, line: testLine)
        XCTAssertEqual(error.field, field, "\(error)", file: file, line: testLine)
        XCTAssertTrue(error.description.contains(needle), "\(error) should mention \(needle)", file: file, line: testLine)
        XCTAssertTrue(error.description.hasPrefix("t.csv:\(line)\(field.map { " (field \($0))" } ?? ""): "), "\(error)", file: file, line: testLine)
        if let field {
            XCTAssertTrue(error.description.contains("(field \(field))"), "\(error)", file: file, line: testLine)
        }
    }

    // MARK: - Fixture

    func testFixtureParsesToTheExpectedJobs() throws {
        let trace = try PhillyTrace(parsing: phillyFixtureCSV, source: "fixture")
        XCTAssertEqual(trace.jobs.count, 40)
        XCTAssertEqual(
            trace.jobs.first,
            PhillyJob(
                line: 2, submitTime: PhillyTrace.parseTimestamp("2017-10-07 09:31:56")!, duration: 69, numGPUs: 1,
                gpuTime: 69, cluster: "11cb48"))
        XCTAssertEqual(
            trace.jobs.last,
            PhillyJob(
                line: 41, submitTime: PhillyTrace.parseTimestamp("2017-10-06 14:37:26")!, duration: 55625, numGPUs: 32,
                gpuTime: 1_780_000, cluster: "2869ce"))
        XCTAssertEqual(trace.jobs.map(\.line), Array(2...41))
        let gpus = trace.jobs.reduce(into: [Int: Int]()) { $0[$1.numGPUs, default: 0] += 1 }
        XCTAssertEqual(gpus, [1: 31, 2: 5, 4: 2, 8: 1, 32: 1])
        for job in trace.jobs { XCTAssertEqual(job.gpuTime, job.duration * Double(job.numGPUs)) }
        XCTAssertEqual(trace.jobs[2].timestamp, "2017-10-05 08:54:57")
        XCTAssertEqual(PhillyTrace.formatTimestamp(trace.earliestSubmitTime!), "2017-09-14 11:31:20")
        XCTAssertEqual(PhillyTrace.formatTimestamp(trace.latestSubmitTime!), "2017-10-07 09:31:56")
    }

    func testReadsAFileAndNamesItInErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("philly-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.csv")
        try phillyFixtureCSV.write(to: good, atomically: true, encoding: .utf8)
        XCTAssertEqual(try PhillyTrace(contentsOf: good.path).jobs, try PhillyTrace(parsing: phillyFixtureCSV).jobs)

        let bad = dir.appendingPathComponent("bad.csv")
        try (header + "2017-10-07 09:31:56,69.0,1,69.0,11cb48\n2017-10-07 09:31:56,x,1,69.0,11cb48\n")
            .write(to: bad, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try PhillyTrace(contentsOf: bad.path)) { error in
            XCTAssertEqual("\(error)", "\(bad.path):3 (field duration): expected a number of seconds, found \"x\"")
        }
        XCTAssertThrowsError(try PhillyTrace(contentsOf: dir.appendingPathComponent("none.csv").path)) { error in
            XCTAssertTrue("\(error)".contains("cannot read the file"), "\(error)")
        }
    }

    func testBlankLinesCRLFAndByteOrderMarkAreAccepted() throws {
        let text = "\u{FEFF}timestamp,duration,num_gpus,gpu_time,cluster\r\n2017-10-07 09:31:56,69.0,1,69.0,a\r\n\r\n"
            + "2017-10-07 09:21:55,62,2,124,b\r\n\n"
        let trace = try PhillyTrace(parsing: text)
        XCTAssertEqual(trace.jobs.map(\.line), [2, 4])
        XCTAssertEqual(trace.jobs.map(\.cluster), ["a", "b"])
        XCTAssertEqual(trace.jobs.map(\.numGPUs), [1, 2])
        XCTAssertEqual(try PhillyTrace(parsing: header).jobs, [])
    }

    // MARK: - Errors name the line and the field

    func testMissingHeader() {
        assertError("2017-10-07 09:31:56,69.0,1,69.0,11cb48\n", line: 1, field: nil, mentions: "missing header")
        assertError("time,duration,gpus,gpu_time,cluster\n", line: 1, field: nil, mentions: "unexpected header")
        assertError("", line: 1, field: nil, mentions: "empty file")
    }

    func testWrongColumnCount() {
        assertError(header + "2017-10-07 09:31:56,69.0,1,69.0\n", line: 2, field: nil, mentions: "found 4")
        assertError(
            header + "2017-10-07 09:31:56,69.0,1,69.0,a\n2017-10-07 09:31:56,69.0,1,69.0,a,b\n", line: 3, field: nil,
            mentions: "expected 5 comma-separated fields")
    }

    func testBadTimestamps() {
        for bad in [
            "2017-10-07", "2017/10/07 09:31:56", "2017-13-07 09:31:56", "2017-02-29 00:00:00", "2017-10-07 24:00:00",
            "2017-10-07 09:61:00", "yesterday",
        ] {
            assertError(header + "\(bad),69.0,1,69.0,a\n", line: 2, field: "timestamp", mentions: bad)
        }
    }

    func testBadNumbers() {
        assertError(header + "2017-10-07 09:31:56,abc,1,69.0,a\n", line: 2, field: "duration", mentions: "abc")
        assertError(header + "2017-10-07 09:31:56,nan,1,69.0,a\n", line: 2, field: "duration", mentions: "nan")
        assertError(header + "2017-10-07 09:31:56,-5.0,1,69.0,a\n", line: 2, field: "duration", mentions: "negative duration")
        assertError(header + "2017-10-07 09:31:56,5,0,0,a\n", line: 2, field: "num_gpus", mentions: "at least one GPU")
        assertError(header + "2017-10-07 09:31:56,5,1.5,7.5,a\n", line: 2, field: "num_gpus", mentions: "whole number")
        assertError(header + "2017-10-07 09:31:56,5,two,10,a\n", line: 2, field: "num_gpus", mentions: "two")
        assertError(header + "2017-10-07 09:31:56,5,-2,10,a\n", line: 2, field: "num_gpus", mentions: "negative GPU count")
        assertError(header + "2017-10-07 09:31:56,5,1,,a\n", line: 2, field: "gpu_time", mentions: "GPU-seconds")
        // The error names the first bad line, counting the header and blank lines.
        assertError(
            header + "2017-10-07 09:31:56,5,1,5,a\n\n2017-10-07 09:31:56,5,1,5,a\n2017-10-07 09:31:56,5,1,-1,a\n",
            line: 5, field: "gpu_time", mentions: "negative GPU time")
    }

    // MARK: - Timestamps and windows

    func testTimestamps() {
        XCTAssertEqual(PhillyTrace.parseTimestamp("1970-01-01 00:00:00"), 0)
        XCTAssertEqual(PhillyTrace.parseTimestamp("2017-10-09 07:00:00"), 1_507_532_400)
        XCTAssertEqual(PhillyTrace.parseTimestamp("2017-10-09T07:00:00"), 1_507_532_400)
        XCTAssertEqual(PhillyTrace.parseTimestamp("2016-02-29 23:59:59"), 1_456_790_399)
        XCTAssertNil(PhillyTrace.parseTimestamp("2017-10-09 07:00"))
        XCTAssertNil(PhillyTrace.parseTimestamp("2017-04-31 00:00:00"))
        for text in ["2017-10-09 07:00:00", "2016-02-29 23:59:59", "2000-01-01 00:00:00", "1969-12-31 23:59:59"] {
            XCTAssertEqual(PhillyTrace.formatTimestamp(PhillyTrace.parseTimestamp(text)!), text)
        }
    }

    func testWindowSelectsJobsInTimeOrder() throws {
        let trace = try PhillyTrace(parsing: phillyFixtureCSV)
        let start = PhillyTrace.parseTimestamp("2017-10-07 07:00:00")!
        let jobs = trace.jobs(in: PhillyWindow(start: start, seconds: 2 * 3600))
        XCTAssertEqual(jobs.count, 22)
        XCTAssertEqual(jobs.map { $0.submitTime - start }.prefix(4), [115, 715, 1043, 1043])
        XCTAssertEqual(jobs.map(\.line).prefix(4), [33, 31, 25, 28])  // ties keep file order
        XCTAssertEqual(jobs.last?.line, 7)
        XCTAssertTrue(jobs.allSatisfy { $0.submitTime >= start && $0.submitTime < start + 7200 })
        // The end is exclusive: a window ending exactly at 07:01:55 leaves that job out.
        XCTAssertEqual(trace.jobs(in: PhillyWindow(start: start, seconds: 115)).count, 0)
        XCTAssertEqual(trace.jobs(in: PhillyWindow(start: start, seconds: 116)).count, 1)
    }

    func testBusiestWindow() throws {
        let trace = try PhillyTrace(parsing: phillyFixtureCSV)
        let window = try XCTUnwrap(trace.busiestWindow(seconds: 3600))
        XCTAssertEqual(PhillyTrace.formatTimestamp(window.start), "2017-10-07 06:51:55")
        XCTAssertEqual(trace.jobs(in: window).count, 12)
        XCTAssertNil(PhillyTrace(jobs: []).busiestWindow(seconds: 3600))
    }
}
