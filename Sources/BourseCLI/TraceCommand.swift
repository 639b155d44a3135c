import ArgumentParser
import BourseWorkload
import Foundation

/// `bourse trace ...`: make job traces in Gavel's format for the simulator.
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Generate synthetic traces or derive them from the Philly log, in Gavel's trace format.",
        discussion: """
            A trace is one job per line, 10 tab-separated fields as in Gavel: job type, command, \
            working directory, steps argument, needs data dir, total steps, scale factor (GPUs), \
            priority weight, SLO, arrival time in seconds. Job types and throughputs come from the \
            throughput table (default: the Gavel table shipped in data/gavel-throughputs.json); \
            total steps = duration * the job type's throughput on one V100 at its scale factor.

            Examples:
              bourse trace generate --jobs 80 --inter-arrival 1800 -o my-80.trace
              bourse trace from-philly --log philly.csv --busiest --hours 6 -o p6.trace
              bourse sim --trace my-80.trace --policy gavel-las \\
                  --cluster cluster-configs/gavel-4-4-4.yaml
            """,
        subcommands: [Generate.self, FromPhilly.self]
    )
}

extension TraceCommand {
    /// Options both subcommands share.
    struct Common: ParsableArguments {
        @Option(help: "Seed of the random choices; the same seed gives the same trace.")
        var seed: UInt64 = 0

        @Option(
            help: ArgumentHelp(
                "Throughput table in Gavel's JSON format (default: the shipped data/gavel-throughputs.json).",
                valueName: "file"))
        var throughputs: String?

        @Option(
            name: .shortAndLong,
            help: ArgumentHelp("Write the trace to this file (default: standard output).", valueName: "file"))
        var output: String?
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "generate",
            abstract: "Generate a seeded synthetic trace like Gavel's generator.",
            discussion: """
                Each job picks a job type of the table uniformly. Data-parallel types (those with \
                more than one scale factor) get 1, 2, 4 or 8 GPUs from --multi-gpu-mix; the others \
                run on 1 GPU. Each job lasts a duration drawn from --duration-hours on one V100 at \
                its scale factor. Arrivals are a Poisson process (first job at 0) or all at 0.

                Traces shaped like Gavel's dev traces (same settings, other random draws):
                  bourse trace generate --jobs 80 --inter-arrival 1800 -o multi-80.trace
                  bourse trace generate --jobs 80 --inter-arrival 1800 \\
                      --multi-gpu-mix 1 -o single-80.trace
                  bourse trace generate --jobs 120 --static --seed 7 -o static-120.trace

                A one-line summary (jobs, GPU mix, arrival span) goes to standard error.
                """
        )

        @Option(help: "Number of jobs.")
        var jobs: Int

        @Option(
            name: .customLong("inter-arrival"),
            help: ArgumentHelp("Mean time between arrivals in seconds (Poisson arrivals).", valueName: "seconds"))
        var interArrival: Double?

        @Flag(name: .customLong("static"), help: "All jobs arrive at time 0 (instead of --inter-arrival).")
        var allAtZero = false

        @Option(
            name: .customLong("multi-gpu-mix"),
            help: ArgumentHelp(
                "Fractions of data-parallel jobs on 1, 2, 4[, 8] GPUs, summing to 1; \"1\" = single-GPU only.",
                valueName: "fractions"))
        var multiGPUMix: String = "0.7,0.1,0.2"

        @Option(
            name: .customLong("duration-hours"),
            help: ArgumentHelp(
                "Job duration on a V100 in hours: LOW-HIGH in whole hours draws from LOW, ..., HIGH like Gavel; "
                    + "fractional bounds (0.5-2) draw uniformly; one number fixes it.",
                valueName: "range"))
        var durationHours: String = "1-4"

        @OptionGroup var common: Common

        func validate() throws {
            guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs).") }
            switch (interArrival, allAtZero) {
            case (nil, false):
                throw ValidationError(
                    "Give --inter-arrival SECONDS (Poisson arrivals) or --static (all jobs at time 0).")
            case (.some, true):
                throw ValidationError("--inter-arrival and --static exclude each other.")
            case (.some(let mean), false) where !(mean > 0 && mean.isFinite):
                throw ValidationError("--inter-arrival must be a positive number of seconds, got \(mean).")
            default: break
            }
        }

        func run() throws {
            let spec = SyntheticTraceSpec(
                jobs: jobs,
                arrivals: interArrival.map { .poisson(meanInterArrival: $0) } ?? .allAtZero,
                scaleMix: try ScaleMix(parsing: multiGPUMix),
                durations: try DurationHours(parsing: durationHours),
                seed: common.seed)
            let types = try TraceIO.jobTypes(tablePath: common.throughputs)
            let trace = try TraceGenerator.synthetic(spec, jobTypes: types)
            try TraceIO.write(trace, to: common.output)
            let arrivals = interArrival.map { "mean inter-arrival \(TraceIO.decimal($0)) s" } ?? "static"
            TraceIO.note(
                "bourse trace generate: wrote \(TraceSummary(jobs: trace)) [seed \(common.seed), \(arrivals), "
                    + "durations \(spec.durations), mix \(spec.scaleMix)]\(TraceIO.destination(common.output))")
        }
    }

    struct FromPhilly: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "from-philly",
            abstract: "Cut a time window of the Philly job log into a trace (seeded).",
            discussion: """
                Jobs submitted in the window become trace jobs: arrival = submission time - window \
                start; GPUs = the log's num_gpus, where a count the table lacks (12, 16, 32, ...) \
                becomes the largest scale factor below it (8 with Gavel's table; the summary says how \
                many); each job gets a job type drawn (seeded) among those that run at that scale \
                factor, and total steps so that it lasts on V100s as long as it ran in the log.

                The log (philly.csv, 82k jobs, 2017-09-04 to 2017-12-22) is not shipped with Bourse: \
                pass it with --log. It is Microsoft's Philly trace (CC-BY 4.0) as processed by the \
                AdaptDL project (github.com/petuum/adaptdl, simulator/traces/philly.csv).

                Examples:
                  bourse trace from-philly --log philly.csv \\
                      --start "2017-10-09 07:00:00" --hours 6 -o p.trace
                  bourse trace from-philly --log philly.csv --offset-hours 720 \\
                      --hours 24 --max-jobs 500 -o day31.trace
                  bourse trace from-philly --log philly.csv --busiest --hours 2 \\
                      --seed 3 -o busy.trace
                """
        )

        @Option(help: ArgumentHelp("The Philly CSV (timestamp,duration,num_gpus,gpu_time,cluster).", valueName: "file"))
        var log: String?

        @Option(
            help: ArgumentHelp(
                "Window start as a UTC time \"YYYY-MM-DD HH:MM:SS\" (the log's time zone).", valueName: "time"))
        var start: String?

        @Option(
            name: .customLong("offset-hours"),
            help: ArgumentHelp("Window start in hours after the log's first submission.", valueName: "hours"))
        var offsetHours: Double?

        @Flag(help: "Start the window where it holds the most submissions.")
        var busiest = false

        @Option(help: ArgumentHelp("Window length in hours.", valueName: "hours"))
        var hours: Double

        @Option(
            name: .customLong("max-jobs"),
            help: ArgumentHelp("Keep at most this many jobs (the earliest of the window).", valueName: "n"))
        var maxJobs: Int?

        @OptionGroup var common: Common

        func validate() throws {
            guard log != nil else {
                throw ValidationError(
                    "--log FILE is required: the Philly log is not shipped with Bourse. Get philly.csv from the "
                        + "AdaptDL project (github.com/petuum/adaptdl, simulator/traces/philly.csv).")
            }
            let chosen = [start != nil, offsetHours != nil, busiest].filter { $0 }.count
            guard chosen == 1 else {
                throw ValidationError(
                    chosen == 0
                        ? "Choose the window start: --start \"YYYY-MM-DD HH:MM:SS\", --offset-hours H or --busiest."
                        : "--start, --offset-hours and --busiest exclude each other.")
            }
            if let start, PhillyTrace.parseTimestamp(start) == nil {
                throw ValidationError("--start: expected a UTC time \"YYYY-MM-DD HH:MM:SS\", got \"\(start)\".")
            }
            if let offsetHours, !(offsetHours >= 0 && offsetHours <= 1_000_000) {
                throw ValidationError("--offset-hours must be between 0 and 1000000, got \(offsetHours).")
            }
            guard hours > 0 && hours <= 1_000_000 else {
                throw ValidationError("--hours must be a positive number of hours (at most 1000000), got \(hours).")
            }
            if let maxJobs, maxJobs < 1 { throw ValidationError("--max-jobs must be at least 1, got \(maxJobs).") }
        }

        func run() throws {
            let types = try TraceIO.jobTypes(tablePath: common.throughputs)
            let clock = ContinuousClock()
            let begin = clock.now
            let log = try PhillyTrace(contentsOf: self.log!)
            let parseTime = clock.now - begin
            guard let first = log.earliestSubmitTime, let last = log.latestSubmitTime else {
                throw TraceGeneratorError("\(self.log!): the log has no jobs")
            }
            let seconds = hours * 3600
            let window: PhillyWindow
            if let start {
                window = PhillyWindow(start: PhillyTrace.parseTimestamp(start)!, seconds: seconds)
            } else if let offsetHours {
                window = PhillyWindow(start: first + Int64((offsetHours * 3600).rounded()), seconds: seconds)
            } else {
                window = log.busiestWindow(seconds: seconds)!
            }
            let result = try TraceGenerator.fromPhilly(
                log, window: window, maxJobs: maxJobs, jobTypes: types, seed: common.seed)
            guard !result.jobs.isEmpty else {
                throw TraceGeneratorError(
                    "no job of \(self.log!) was submitted in \(window.description) (the log spans "
                        + "\(PhillyTrace.formatTimestamp(first)) to \(PhillyTrace.formatTimestamp(last)))")
            }
            try TraceIO.write(result.jobs, to: common.output)
            var notes = [
                "window \(window.description)", "seed \(common.seed)",
                "read \(log.jobs.count) log jobs in \(TraceIO.milliseconds(parseTime)) ms",
            ]
            if result.droppedByLimit > 0 { notes.append("\(result.droppedByLimit) later jobs left out by --max-jobs") }
            if !result.scaleAdjustments.isEmpty { notes.append("capped to the table's scale factors: \(result.adjustmentSummary)") }
            TraceIO.note(
                "bourse trace from-philly: wrote \(TraceSummary(jobs: result.jobs)) [\(notes.joined(separator: "; "))]"
                    + TraceIO.destination(common.output))
        }
    }
}

/// A failure of `bourse trace` outside the libraries' own errors.
private struct TraceCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reading the table, writing traces and messages for `bourse trace`.
private enum TraceIO {
    /// The shipped table: data/gavel-throughputs.json of the working directory or of the source
    /// tree this binary was built from.
    static func defaultTablePath() throws -> String {
        let relative = "data/gavel-throughputs.json"
        let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates = [relative, sourceRoot.appendingPathComponent(relative).path]
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) { return found }
        throw TraceCommandError(
            "cannot find the shipped throughput table \(relative) (looked in the working directory and in "
                + "\(sourceRoot.path)); pass one with --throughputs FILE")
    }

    /// Job types of the table with their V100 throughputs per scale factor.
    static func jobTypes(tablePath: String?) throws -> [JobTypeInfo] {
        let path = try tablePath ?? defaultTablePath()
        return try JobTypeInfo.all(in: ThroughputTable.load(path: path), referenceGPU: "v100", source: path)
    }

    static func write(_ jobs: [TraceJob], to path: String?) throws {
        let data = Data(GavelTrace.format(jobs: jobs).utf8)
        if let path {
            do {
                try data.write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw TraceCommandError("cannot write \(path): \(error.localizedDescription)")
            }
        } else {
            FileHandle.standardOutput.write(data)
        }
    }

    /// Whole numbers without a decimal point, others in full precision.
    static func decimal(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : "\(x)"
    }

    static func milliseconds(_ d: Duration) -> String {
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return String(format: "%.0f", ms)
    }

    static func destination(_ path: String?) -> String { path.map { " to \($0)" } ?? "" }

    static func note(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
