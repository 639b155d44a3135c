import Foundation

/// One job of Microsoft's Philly GPU-cluster log (2017), in the CSV processed by the AdaptDL
/// project: `timestamp,duration,num_gpus,gpu_time,cluster`.
public struct PhillyJob: Sendable, Hashable {
    /// 1-based line number in the CSV (the header is line 1); kept for messages and stable order.
    public var line: Int
    /// Submission time in seconds since the Unix epoch (the log's timestamps are UTC).
    public var submitTime: Int64
    /// Run time in seconds.
    public var duration: Double
    /// GPUs requested.
    public var numGPUs: Int
    /// duration * num_gpus, as recorded in the log (not checked against the other two).
    public var gpuTime: Double
    /// Virtual-cluster id, e.g. "6214e9".
    public var cluster: String

    public init(line: Int, submitTime: Int64, duration: Double, numGPUs: Int, gpuTime: Double, cluster: String) {
        self.line = line
        self.submitTime = submitTime
        self.duration = duration
        self.numGPUs = numGPUs
        self.gpuTime = gpuTime
        self.cluster = cluster
    }

    /// The submission time as "YYYY-MM-DD HH:MM:SS" (UTC), as written in the log.
    public var timestamp: String { PhillyTrace.formatTimestamp(submitTime) }
}

/// A span of the log's submission times: [start, start + seconds).
public struct PhillyWindow: Sendable, Hashable {
    /// Seconds since the Unix epoch (UTC).
    public var start: Int64
    public var seconds: Double

    public init(start: Int64, seconds: Double) {
        self.start = start
        self.seconds = seconds
    }

    public func contains(_ time: Int64) -> Bool {
        time >= start && Double(time - start) < seconds
    }

    public var description: String {
        "\(PhillyTrace.formatTimestamp(start)) + \(TraceFormatting.decimal(seconds / 3600)) h"
    }
}

/// Reader for the Philly job log (see `../shared/data/philly/README.md`).
///
///     let trace = try PhillyTrace(contentsOf: "philly.csv")
///     let window = trace.busiestWindow(seconds: 6 * 3600)!
///     let jobs = trace.jobs(in: window)   // sorted by submission time
///
/// The first line must be the header `timestamp,duration,num_gpus,gpu_time,cluster`; blank lines
/// are skipped; every error names the line and the column. Timestamps are parsed by hand (no
/// DateFormatter), so the full 82k-line log reads in a few tens of milliseconds in release.
public struct PhillyTrace: Sendable {
    public static let columns = ["timestamp", "duration", "num_gpus", "gpu_time", "cluster"]

    /// Jobs in file order (the log is not sorted by time).
    public var jobs: [PhillyJob]

    public init(jobs: [PhillyJob]) { self.jobs = jobs }

    /// Parses CSV text; `source` names it in errors.
    public init(parsing text: String, source: String = "<input>") throws(TraceError) {
        var text = text
        var result: Result<[PhillyJob], TraceError> = .success([])
        text.withUTF8 { buffer in
            result = Result { () throws(TraceError) in try Self.parse(buffer, source: source) }
        }
        jobs = try result.get()
    }

    /// Reads and parses a CSV file.
    public init(contentsOf path: String) throws(TraceError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TraceError(file: path, line: 0, field: nil, message: "cannot read the file (\(error.localizedDescription))")
        }
        var result: Result<[PhillyJob], TraceError> = .success([])
        data.withUnsafeBytes { raw in
            let buffer = raw.bindMemory(to: UInt8.self)
            result = Result { () throws(TraceError) in try Self.parse(buffer, source: path) }
        }
        jobs = try result.get()
    }

    /// Earliest submission time in the log, nil if it is empty.
    public var earliestSubmitTime: Int64? { jobs.lazy.map(\.submitTime).min() }
    /// Latest submission time in the log, nil if it is empty.
    public var latestSubmitTime: Int64? { jobs.lazy.map(\.submitTime).max() }

    /// Jobs submitted inside the window, ordered by submission time (ties: file order).
    public func jobs(in window: PhillyWindow) -> [PhillyJob] {
        jobs.filter { window.contains($0.submitTime) }.sorted { ($0.submitTime, $0.line) < ($1.submitTime, $1.line) }
    }

    /// The window of the given length holding the most submissions; it starts at a job's
    /// submission time (the earliest such window on ties). Nil if the log is empty.
    public func busiestWindow(seconds: Double) -> PhillyWindow? {
        let times = jobs.map(\.submitTime).sorted()
        guard !times.isEmpty else { return nil }
        var best = (count: 0, start: times[0])
        var hi = 0
        for lo in times.indices {
            if lo > 0 && times[lo] == times[lo - 1] { continue }  // same start, fewer jobs
            if hi < lo { hi = lo }
            while hi < times.count && Double(times[hi] - times[lo]) < seconds { hi += 1 }
            if hi - lo > best.count { best = (hi - lo, times[lo]) }
        }
        return PhillyWindow(start: best.start, seconds: seconds)
    }

    // MARK: - Timestamps

    /// Parses "YYYY-MM-DD HH:MM:SS" (UTC; a 'T' separator is accepted too) into seconds since the
    /// Unix epoch; nil if malformed or out of range.
    public static func parseTimestamp(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { parseTimestamp(bytes: $0[...]) }
    }

    /// "YYYY-MM-DD HH:MM:SS" (UTC) for seconds since the Unix epoch.
    public static func formatTimestamp(_ epoch: Int64) -> String {
        let days = epoch >= 0 ? epoch / 86_400 : (epoch - 86_399) / 86_400
        let secs = epoch - days * 86_400
        let (y, m, d) = civilFromDays(days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var year = "\(y)"
        while year.count < 4 { year = "0" + year }
        return "\(year)-\(two(m))-\(two(d)) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))"
    }

    static func parseTimestamp(bytes: Slice<UnsafeBufferPointer<UInt8>>) -> Int64? {
        guard bytes.count == 19 else { return nil }
        let b = bytes.startIndex
        func digits(_ from: Int, _ count: Int) -> Int64? {
            var v: Int64 = 0
            for i in from..<(from + count) {
                let c = bytes[b + i]
                guard c >= 0x30 && c <= 0x39 else { return nil }
                v = v * 10 + Int64(c - 0x30)
            }
            return v
        }
        guard bytes[b + 4] == UInt8(ascii: "-"), bytes[b + 7] == UInt8(ascii: "-"),
            bytes[b + 10] == UInt8(ascii: " ") || bytes[b + 10] == UInt8(ascii: "T"),
            bytes[b + 13] == UInt8(ascii: ":"), bytes[b + 16] == UInt8(ascii: ":"),
            let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
            let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysInMonth(year, month),
            hour < 24, minute < 60, second < 60
        else { return nil }
        return daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
    }

    private static func isLeap(_ y: Int64) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    private static func daysInMonth(_ y: Int64, _ m: Int64) -> Int64 {
        switch m {
        case 2: return isLeap(y) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    private static func daysFromCivil(_ y0: Int64, _ m: Int64, _ d: Int64) -> Int64 {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    // MARK: - CSV

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>, source: String) throws(TraceError) -> [PhillyJob] {
        var jobs: [PhillyJob] = []
        jobs.reserveCapacity(buffer.count / 40)
        var lineNumber = 0
        var pos = 0
        // Skip a UTF-8 byte-order mark.
        if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { pos = 3 }
        var sawHeader = false
        var fieldStarts = [Int](repeating: 0, count: 5)
        var fieldEnds = [Int](repeating: 0, count: 5)

        while pos < buffer.count {
            lineNumber += 1
            var end = pos
            while end < buffer.count && buffer[end] != UInt8(ascii: "\n") { end += 1 }
            let next = end + 1
            var lineEnd = end
            if lineEnd > pos && buffer[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
            defer { pos = next }

            // Blank (or whitespace-only) lines are skipped, wherever they are.
            var blank = true
            for i in pos..<lineEnd where buffer[i] != UInt8(ascii: " ") && buffer[i] != UInt8(ascii: "\t") {
                blank = false
                break
            }
            if blank { continue }

            // Split on commas (the log has no quoted fields).
            var count = 0
            var start = pos
            for i in pos...lineEnd where i == lineEnd || buffer[i] == UInt8(ascii: ",") {
                if count < 5 {
                    fieldStarts[count] = start
                    fieldEnds[count] = i
                }
                count += 1
                start = i + 1
            }
            func field(_ k: Int) -> Slice<UnsafeBufferPointer<UInt8>> {
                trim(buffer[fieldStarts[k]..<fieldEnds[k]])
            }

            if !sawHeader {
                sawHeader = true
                let names = (0..<min(count, 5)).map { String(decoding: field($0), as: UTF8.self).lowercased() }
                if count == 5 && names == columns { continue }
                if parseTimestamp(bytes: field(0)) != nil {
                    throw TraceError(
                        file: source, line: lineNumber, field: nil,
                        message: "missing header: the first line must be `\(columns.joined(separator: ","))`, found a data row")
                }
                let found = String(decoding: buffer[pos..<lineEnd], as: UTF8.self)
                throw TraceError(
                    file: source, line: lineNumber, field: nil,
                    message: "unexpected header: expected `\(columns.joined(separator: ","))`, found `\(clip(found))`")
            }

            guard count == 5 else {
                throw TraceError(
                    file: source, line: lineNumber, field: nil,
                    message: "expected 5 comma-separated fields (\(columns.joined(separator: ","))), found \(count)")
            }

            func fail(_ k: Int, _ message: String) -> TraceError {
                TraceError(file: source, line: lineNumber, field: columns[k], message: message)
            }
            func text(_ k: Int) -> String { String(decoding: field(k), as: UTF8.self) }

            guard let submitTime = parseTimestamp(bytes: field(0)) else {
                throw fail(0, "expected a UTC time \"YYYY-MM-DD HH:MM:SS\", found \"\(clip(text(0)))\"")
            }
            guard let duration = Double(text(1)), duration.isFinite else {
                throw fail(1, "expected a number of seconds, found \"\(clip(text(1)))\"")
            }
            guard duration >= 0 else { throw fail(1, "negative duration \(text(1)) s") }
            guard let gpus = Double(text(2)), gpus.isFinite else {
                throw fail(2, "expected a whole number of GPUs, found \"\(clip(text(2)))\"")
            }
            guard gpus == gpus.rounded(), gpus <= 1_000_000 else {
                throw fail(2, "expected a whole number of GPUs, found \"\(clip(text(2)))\"")
            }
            guard gpus >= 1 else {
                throw fail(2, gpus == 0 ? "a job needs at least one GPU, found 0" : "negative GPU count \(text(2))")
            }
            guard let gpuTime = Double(text(3)), gpuTime.isFinite else {
                throw fail(3, "expected a number of GPU-seconds, found \"\(clip(text(3)))\"")
            }
            guard gpuTime >= 0 else { throw fail(3, "negative GPU time \(text(3))") }

            jobs.append(
                PhillyJob(
                    line: lineNumber, submitTime: submitTime, duration: duration, numGPUs: Int(gpus),
                    gpuTime: gpuTime, cluster: text(4)))
        }
        if !sawHeader {
            throw TraceError(
                file: source, line: max(lineNumber, 1), field: nil,
                message: "empty file: expected the header `\(columns.joined(separator: ","))`")
        }
        return jobs
    }

    private static func trim(_ s: Slice<UnsafeBufferPointer<UInt8>>) -> Slice<UnsafeBufferPointer<UInt8>> {
        var lo = s.startIndex
        var hi = s.endIndex
        while lo < hi && (s[lo] == UInt8(ascii: " ") || s[lo] == UInt8(ascii: "\t")) { lo += 1 }
        while hi > lo && (s[hi - 1] == UInt8(ascii: " ") || s[hi - 1] == UInt8(ascii: "\t")) { hi -= 1 }
        return s[lo..<hi]
    }

    private static func clip(_ s: String) -> String {
        s.count <= 40 ? s : String(s.prefix(40)) + "…"
    }
}

/// Number formatting for trace messages and summaries.
enum TraceFormatting {
    /// "1", "1.5", "0.25": up to three decimals, without trailing zeros.
    static func decimal(_ x: Double) -> String {
        if x == x.rounded() && abs(x) < 1e15 { return String(Int64(x)) }
        var s = String(format: "%.3f", x)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
