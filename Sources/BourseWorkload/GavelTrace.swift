import Foundation

/// A malformed line of a trace (Gavel's format) or of the Philly log, naming the file, the
/// 1-based line number and the field.
public struct TraceError: Error, CustomStringConvertible, Equatable {
    public var file: String
    /// 1-based line number; 0 when the problem is not tied to a line.
    public var line: Int
    /// The field's name as in the file's format (e.g. "total_steps", "duration"), or nil when the
    /// whole line (or file) is at fault.
    public var field: String?
    public var message: String

    public init(file: String, line: Int, field: String?, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var where_ = file
        if line > 0 { where_ += ":\(line)" }
        if let field { where_ += " (field \(field))" }
        return "\(where_): \(message)"
    }
}

/// Gavel's trace format: one job per line, 10 tab-separated fields
///
///     job_type  command  working_directory  num_steps_arg  needs_data_dir  total_steps
///     scale_factor  priority_weight  SLO  arrival_time_s
///
/// Lines are in arrival order (Gavel numbers jobs by line). Blank lines are skipped.
public enum GavelTrace {
    /// Field names in order, as used in error messages.
    public static let fieldNames = [
        "job_type", "command", "working_directory", "num_steps_arg", "needs_data_dir", "total_steps",
        "scale_factor", "priority_weight", "SLO", "arrival_time_s",
    ]

    /// Parses a trace. With a `table`, also checks every job's type and scale factor against it.
    /// Errors name the line and field: wrong field count, non-numeric numbers, negative arrival,
    /// zero or negative steps, arrivals out of order, unknown job type, scale factor not in the
    /// table for that model.
    public static func parse(text: String, file: String = "<trace>", table: ThroughputTable? = nil) throws
        -> [TraceJob]
    {
        var jobs: [TraceJob] = []
        var lineNumber = 0
        var previousArrival = -Double.infinity
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(rawLine)
            if line.hasSuffix("\r") { line = line.dropLast() }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            func fail(_ field: Int?, _ message: String) -> TraceError {
                TraceError(file: file, line: lineNumber, field: field.map { fieldNames[$0] }, message: message)
            }
            guard fields.count == fieldNames.count else {
                throw fail(
                    nil,
                    "expected \(fieldNames.count) tab-separated fields (\(fieldNames.joined(separator: ", "))), found \(fields.count)"
                )
            }
            func integer(_ i: Int) throws -> Int {
                let text = fields[i].trimmingCharacters(in: .whitespaces)
                guard let value = Int(text) else { throw fail(i, "'\(fields[i])' is not an integer") }
                return value
            }
            func real(_ i: Int) throws -> Double {
                let text = fields[i].trimmingCharacters(in: .whitespaces)
                guard let value = Double(text), value.isFinite else {
                    throw fail(i, "'\(fields[i])' is not a finite number")
                }
                return value
            }
            let jobType = fields[0].trimmingCharacters(in: .whitespaces)
            guard !jobType.isEmpty else { throw fail(0, "the job type is empty") }
            let needsDataDir = try integer(4)
            let totalSteps = try integer(5)
            guard totalSteps > 0 else { throw fail(5, "total_steps must be > 0, got \(totalSteps)") }
            let scaleFactor = try integer(6)
            guard scaleFactor >= 1 else { throw fail(6, "scale_factor must be >= 1, got \(scaleFactor)") }
            let weight = try real(7)
            guard weight > 0 else { throw fail(7, "priority_weight must be > 0, got \(fields[7])") }
            let slo = try real(8)
            let arrival = try real(9)
            guard arrival >= 0 else { throw fail(9, "arrival time must be >= 0, got \(fields[9])") }
            guard arrival >= previousArrival else {
                throw fail(
                    9,
                    "arrival time \(fields[9]) is earlier than the previous job's (\(format(number: previousArrival))); lines must be in arrival order"
                )
            }
            previousArrival = arrival
            if let table, let problem = table.problem(with: JobTypeKey(model: jobType, scaleFactor: scaleFactor)) {
                let field = table.scaleFactors(model: jobType).isEmpty ? 0 : 6
                throw fail(field, problem)
            }
            jobs.append(
                TraceJob(
                    jobType: jobType, command: fields[1], workingDirectory: fields[2], numStepsArg: fields[3],
                    needsDataDir: needsDataDir != 0, totalSteps: totalSteps, scaleFactor: scaleFactor,
                    priorityWeight: weight, slo: slo, arrivalTime: arrival))
        }
        return jobs
    }

    /// Reads and parses a trace file (see `parse(text:file:table:)`).
    public static func load(path: String, table: ThroughputTable? = nil) throws -> [TraceJob] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw TraceError(file: path, line: 0, field: nil, message: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(text: text, file: path, table: table)
    }

    /// Writes jobs in Gavel's format, one line each, ending with a newline. Tabs and newlines
    /// inside text fields are replaced by spaces so the result always parses back.
    public static func format(jobs: [TraceJob]) -> String {
        var out = ""
        for job in jobs {
            let fields = [
                clean(job.jobType), clean(job.command), clean(job.workingDirectory), clean(job.numStepsArg),
                job.needsDataDir ? "1" : "0", String(job.totalSteps), String(job.scaleFactor),
                format(number: job.priorityWeight), String(format: "%.6f", job.slo), format(number: job.arrivalTime),
            ]
            out += fields.joined(separator: "\t")
            out += "\n"
        }
        return out
    }

    /// Integral values without a fraction ("259"), others in the shortest form that reads back
    /// exactly ("259.5").
    static func format(number value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
            return String(Int64(value))
        }
        return "\(value)"
    }

    private static func clean(_ s: String) -> String {
        String(s.map { $0 == "\t" || $0 == "\n" || $0 == "\r" ? " " : $0 })
    }
}
