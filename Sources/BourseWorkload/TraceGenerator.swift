import Foundation

/// What the trace generators need to know about one job type (a model with its batch size, e.g.
/// "ResNet-18 (batch size 32)"): the scale factors it can run at and its isolated throughput at
/// each on the reference GPU (V100 in Gavel's table), plus the launch fields of Gavel's format.
public struct JobTypeInfo: Sendable, Hashable {
    /// Job-type key of the throughput table without the scale factor.
    public var model: String
    /// Isolated steps per second on the reference GPU, by scale factor (number of GPUs).
    public var referenceStepsPerSecond: [Int: Double]
    public var command: String
    public var workingDirectory: String
    public var numStepsArg: String
    public var needsDataDir: Bool

    /// Launch fields default to those of Gavel's job table for the known model families
    /// (`GavelJobCommands`), or neutral placeholders for other models.
    public init(
        model: String, referenceStepsPerSecond: [Int: Double], command: String? = nil,
        workingDirectory: String? = nil, numStepsArg: String? = nil, needsDataDir: Bool? = nil
    ) {
        let known = GavelJobCommands.launch(for: model)
        self.model = model
        self.referenceStepsPerSecond = referenceStepsPerSecond
        self.command = command ?? known.command
        self.workingDirectory = workingDirectory ?? known.workingDirectory
        self.numStepsArg = numStepsArg ?? known.numStepsArg
        self.needsDataDir = needsDataDir ?? known.needsDataDir
    }

    /// Scale factors with a positive throughput, ascending.
    public var scaleFactors: [Int] {
        referenceStepsPerSecond.filter { $0.value > 0 && $0.value.isFinite }.keys.sorted()
    }

    /// Data-parallel models run at more than one scale factor.
    public var isDataParallel: Bool { scaleFactors.contains { $0 > 1 } }

    /// A job of this type lasting `seconds` on the reference GPU at `scaleFactor` workers.
    func job(seconds: Double, scaleFactor: Int, arrivalTime: Double) -> TraceJob {
        let rate = referenceStepsPerSecond[scaleFactor] ?? 0
        let steps = max(1, Int((seconds * rate).rounded()))
        return TraceJob(
            jobType: model, command: command, workingDirectory: workingDirectory, numStepsArg: numStepsArg,
            needsDataDir: needsDataDir, totalSteps: steps, scaleFactor: scaleFactor, priorityWeight: 1, slo: -1,
            arrivalTime: arrivalTime)
    }
}

extension JobTypeInfo {
    /// Every model of `table` with its throughputs on `referenceGPU` (Gavel: "v100"), at the scale
    /// factors where that throughput is positive; models without any are left out. `source` names
    /// the table in errors.
    public static func all(
        in table: ThroughputTable, referenceGPU: String = "v100", source: String = "<throughputs>"
    ) throws(ThroughputTableError) -> [JobTypeInfo] {
        guard table.gpuTypes.contains(referenceGPU) else {
            throw ThroughputTableError(
                source: source,
                message: "the table has no '\(referenceGPU)' worker type, the reference GPU for job durations "
                    + "(it has: \(table.gpuTypes.joined(separator: ", ")))")
        }
        var rates: [String: [Int: Double]] = [:]
        for (key, rate) in table.entries[referenceGPU, default: [:]] where rate > 0 && rate.isFinite {
            rates[key.model, default: [:]][key.scaleFactor] = rate
        }
        return rates.keys.sorted().map { JobTypeInfo(model: $0, referenceStepsPerSecond: rates[$0]!) }
    }
}

/// Launch fields of Gavel's job table (`scheduler/job_table.py`) by model family, as they appear
/// in Gavel's traces. Only the simulator-irrelevant columns of the trace come from here.
public enum GavelJobCommands {
    public struct Launch: Sendable, Hashable {
        public var command: String
        public var workingDirectory: String
        public var numStepsArg: String
        public var needsDataDir: Bool
    }

    /// The launch fields for a model key such as "LM (batch size 20)"; placeholders ("-") for a
    /// family Gavel does not have.
    public static func launch(for model: String) -> Launch {
        let (family, batch) = split(model)
        let b = batch ?? ""
        switch family {
        case "ResNet-18":
            return Launch(
                command: "python3 main.py --data_dir=%s/cifar10 --batch_size \(b)",
                workingDirectory: "image_classification/cifar10", numStepsArg: "--num_steps", needsDataDir: true)
        case "ResNet-50":
            return Launch(
                command: "python3 main.py -j 8 -a resnet50 -b \(b) %s/imagenet/",
                workingDirectory: "image_classification/imagenet", numStepsArg: "--num_minibatches", needsDataDir: true)
        case "Transformer":
            return Launch(
                command: "python3 train.py -data %s/translation/multi30k.atok.low.pt -batch_size \(b) -proj_share_weight",
                workingDirectory: "translation", numStepsArg: "-step", needsDataDir: true)
        case "LM":
            return Launch(
                command: "python main.py --cuda --data %s/wikitext2 --batch_size \(b)",
                workingDirectory: "language_modeling", numStepsArg: "--steps", needsDataDir: true)
        case "Recommendation":
            return Launch(
                command: "python3 train.py --data_dir %s/ml-20m/pro_sg/ --batch_size \(b)",
                workingDirectory: "recommendation", numStepsArg: "-n", needsDataDir: true)
        case "A3C":
            return Launch(
                command: "python3 main.py --env PongDeterministic-v4 --workers 4 --amsgrad True",
                workingDirectory: "rl", numStepsArg: "--max-steps", needsDataDir: false)
        case "CycleGAN":
            return Launch(
                command: "python3 cyclegan.py --dataset_path %s/monet2photo --decay_epoch 0",
                workingDirectory: "cyclegan", numStepsArg: "--n_steps", needsDataDir: true)
        default:
            return Launch(command: "-", workingDirectory: "-", numStepsArg: "--num_steps", needsDataDir: false)
        }
    }

    /// "LM (batch size 20)" -> ("LM", "20"); "A3C" -> ("A3C", nil).
    static func split(_ model: String) -> (String, String?) {
        guard model.hasSuffix(")"), let open = model.range(of: " (batch size ", options: .backwards) else {
            return (model, nil)
        }
        let batch = model[open.upperBound..<model.index(before: model.endIndex)]
        return (String(model[..<open.lowerBound]), String(batch))
    }
}

/// An invalid generator setting; the message says which option and why.
public struct TraceGeneratorError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Fractions of data-parallel jobs at scale factors 1, 2, 4, 8 (Gavel: 70/10/20 % at 1/2/4).
public struct ScaleMix: Sendable, Hashable, CustomStringConvertible {
    public static let scaleFactors = [1, 2, 4, 8]
    /// Gavel's mix for its multi-GPU traces.
    public static let gavel = ScaleMix(uncheckedFractions: [0.7, 0.1, 0.2])
    /// Every job on one GPU.
    public static let singleGPU = ScaleMix(uncheckedFractions: [1])

    /// Fractions for scale factors 1, 2, 4, 8 in order (missing trailing entries are 0).
    public private(set) var fractions: [Double]

    private init(uncheckedFractions: [Double]) { fractions = uncheckedFractions }

    /// Up to four non-negative fractions for scale factors 1, 2, 4, 8 summing to 1.
    public init(fractions: [Double]) throws(TraceGeneratorError) {
        guard (1...4).contains(fractions.count) else {
            throw TraceGeneratorError("multi-GPU mix: give 1 to 4 fractions (for 1, 2, 4, 8 GPUs), got \(fractions.count)")
        }
        for (i, f) in fractions.enumerated() where !(f >= 0 && f <= 1) {
            throw TraceGeneratorError(
                "multi-GPU mix: the fraction for \(Self.scaleFactors[i]) GPU(s) must be between 0 and 1, got \(f)")
        }
        let sum = fractions.reduce(0, +)
        guard abs(sum - 1) <= 1e-6 else {
            throw TraceGeneratorError(
                "multi-GPU mix: fractions must sum to 1, got \(TraceFormatting.decimal(sum)) (e.g. 0.7,0.1,0.2 for 1/2/4 GPUs)")
        }
        self.fractions = fractions
    }

    /// Parses "0.7,0.1,0.2" (scale factors 1, 2, 4[, 8]).
    public init(parsing text: String) throws(TraceGeneratorError) {
        var values: [Double] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let t = part.trimmingCharacters(in: .whitespaces)
            guard let v = Double(t) else {
                throw TraceGeneratorError("multi-GPU mix: \"\(t)\" is not a number (expected e.g. 0.7,0.1,0.2)")
            }
            values.append(v)
        }
        try self.init(fractions: values)
    }

    /// A scale factor drawn from the mix.
    func draw(_ u: Double) -> Int {
        var cumulative = 0.0
        for (i, f) in fractions.enumerated() where f > 0 {
            cumulative += f
            if u < cumulative { return Self.scaleFactors[i] }
        }
        // Rounding: the last scale factor with a positive fraction.
        let last = fractions.lastIndex { $0 > 0 } ?? 0
        return Self.scaleFactors[last]
    }

    public var description: String {
        fractions.map { TraceFormatting.decimal($0) }.joined(separator: ",")
    }
}

/// Job durations in hours on the reference GPU.
public enum DurationHours: Sendable, Hashable, CustomStringConvertible {
    /// Uniform over the whole hours of the range (Gavel: 1...4).
    case wholeHours(ClosedRange<Int>)
    /// Uniform over the real interval.
    case uniform(ClosedRange<Double>)

    /// "1-4": whole hours 1, 2, 3, 4 like Gavel; "0.5-2": uniform on [0.5, 2] h; "3": all 3 h.
    public init(parsing text: String) throws(TraceGeneratorError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard (1...2).contains(parts.count), let lo = Double(parts[0]), let hi = Double(parts.last!) else {
            throw TraceGeneratorError("duration range: expected HOURS or LOW-HIGH in hours (e.g. 1-4), got \"\(text)\"")
        }
        guard lo > 0, lo <= hi, hi.isFinite else {
            throw TraceGeneratorError("duration range: need 0 < LOW <= HIGH hours, got \"\(text)\"")
        }
        if lo == lo.rounded() && hi == hi.rounded() && hi < 1e6 {
            self = .wholeHours(Int(lo)...Int(hi))
        } else {
            self = .uniform(lo...hi)
        }
    }

    func draw(_ rng: inout SeededRandom) -> Double {
        switch self {
        case .wholeHours(let r): return Double(r.lowerBound + rng.nextInt(below: r.count))
        case .uniform(let r): return r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextUnitDouble()
        }
    }

    public var description: String {
        switch self {
        case .wholeHours(let r): return r.count == 1 ? "\(r.lowerBound) h" : "\(r.lowerBound)-\(r.upperBound) h (whole hours)"
        case .uniform(let r):
            return "\(TraceFormatting.decimal(r.lowerBound))-\(TraceFormatting.decimal(r.upperBound)) h (uniform)"
        }
    }
}

/// Settings of a synthetic trace (Gavel's generator: models uniform over the job types, scale
/// factors from `scaleMix` for data-parallel models, durations from `durations`, Poisson arrivals).
public struct SyntheticTraceSpec: Sendable, Hashable {
    public enum Arrivals: Sendable, Hashable {
        /// First job at 0, then exponential gaps with this mean in seconds.
        case poisson(meanInterArrival: Double)
        /// Every job at time 0.
        case allAtZero
    }

    public var jobs: Int
    public var arrivals: Arrivals
    public var scaleMix: ScaleMix
    public var durations: DurationHours
    public var seed: UInt64

    public init(
        jobs: Int, arrivals: Arrivals, scaleMix: ScaleMix = .gavel, durations: DurationHours = .wholeHours(1...4),
        seed: UInt64 = 0
    ) {
        self.jobs = jobs
        self.arrivals = arrivals
        self.scaleMix = scaleMix
        self.durations = durations
        self.seed = seed
    }
}

/// A trace cut from the Philly log, with what had to be adjusted on the way.
public struct PhillyConversion: Sendable {
    /// The Gavel-format jobs, in arrival order.
    public var jobs: [TraceJob]
    /// The log's jobs they came from, same order.
    public var sourceJobs: [PhillyJob]
    public var window: PhillyWindow
    /// Jobs of the window left out by `maxJobs` (the latest ones).
    public var droppedByLimit: Int
    /// GPU counts the table has no scale factor for, mapped to one it has: (from, to) -> jobs.
    public var scaleAdjustments: [ScaleAdjustment]

    public struct ScaleAdjustment: Sendable, Hashable {
        public var from: Int
        public var to: Int
        public var jobs: Int
    }

    /// "12 GPUs -> 8 (3 jobs), 16 GPUs -> 8 (40 jobs)", empty if nothing was adjusted.
    public var adjustmentSummary: String {
        scaleAdjustments.map { "\($0.from) GPUs -> \($0.to) (\($0.jobs) job\($0.jobs == 1 ? "" : "s"))" }
            .joined(separator: ", ")
    }
}

/// Seeded trace generators producing Gavel-format jobs (`TraceJob`). The same inputs and seed
/// always give the same jobs.
public enum TraceGenerator {
    /// A synthetic trace like Gavel's: each job picks a job type uniformly; a data-parallel type
    /// gets a scale factor from the mix (a model lacking that scale factor gets the largest one it
    /// has below it), others run on 1 GPU; a duration in hours on the reference GPU at that scale
    /// factor becomes total_steps = duration * throughput. Arrivals are whole seconds.
    ///
    /// Job types, scale factors, durations and arrivals use separate random streams of the seed,
    /// so changing the arrival rate leaves the job mix unchanged.
    public static func synthetic(_ spec: SyntheticTraceSpec, jobTypes: [JobTypeInfo]) throws(TraceGeneratorError) -> [TraceJob] {
        guard spec.jobs >= 0 else { throw TraceGeneratorError("number of jobs must be non-negative, got \(spec.jobs)") }
        let types = try usable(jobTypes)
        if case .poisson(let mean) = spec.arrivals, !(mean > 0 && mean.isFinite) {
            throw TraceGeneratorError("mean inter-arrival time must be a positive number of seconds, got \(mean)")
        }
        var typeRNG = SeededRandom(seed: streamSeed(spec.seed, 1))
        var scaleRNG = SeededRandom(seed: streamSeed(spec.seed, 2))
        var durationRNG = SeededRandom(seed: streamSeed(spec.seed, 3))
        var arrivalRNG = SeededRandom(seed: streamSeed(spec.seed, 4))

        var jobs: [TraceJob] = []
        jobs.reserveCapacity(spec.jobs)
        var clock = 0.0
        for i in 0..<spec.jobs {
            let type = typeRNG.pick(types)
            let u = scaleRNG.nextUnitDouble()  // drawn for every job so streams stay aligned
            let scale = type.isDataParallel ? nearestSupported(spec.scaleMix.draw(u), by: type) : 1
            let hours = spec.durations.draw(&durationRNG)
            if i > 0, case .poisson(let mean) = spec.arrivals {
                clock += arrivalRNG.nextExponential(mean: mean)
            }
            jobs.append(type.job(seconds: hours * 3600, scaleFactor: scale, arrivalTime: clock.rounded(.down)))
        }
        return jobs
    }

    /// Turns the Philly jobs submitted in `window` into a Gavel-format trace: arrival = submission
    /// time - window start; the GPU count becomes the scale factor (a count the table lacks, such
    /// as 12, 16 or 64, becomes the largest scale factor below it, e.g. 8: see
    /// `scaleAdjustments`); each job gets a job type drawn uniformly (seeded) from those that run
    /// at that scale factor; total_steps = duration * that type's throughput at that scale factor
    /// on the reference GPU, so the job lasts as long on reference GPUs as it ran in the log.
    /// `maxJobs` keeps the earliest jobs of the window.
    public static func fromPhilly(
        _ trace: PhillyTrace, window: PhillyWindow, maxJobs: Int? = nil, jobTypes: [JobTypeInfo], seed: UInt64
    ) throws(TraceGeneratorError) -> PhillyConversion {
        guard window.seconds > 0 else {
            throw TraceGeneratorError("window length must be positive, got \(window.seconds) s")
        }
        if let maxJobs, maxJobs < 1 { throw TraceGeneratorError("max jobs must be at least 1, got \(maxJobs)") }
        let types = try usable(jobTypes)
        let scales = Array(Set(types.flatMap(\.scaleFactors))).sorted()
        var byScale: [Int: [JobTypeInfo]] = [:]
        for s in scales { byScale[s] = types.filter { $0.scaleFactors.contains(s) } }

        var selected = trace.jobs(in: window)
        var dropped = 0
        if let maxJobs, selected.count > maxJobs {
            dropped = selected.count - maxJobs
            selected.removeLast(dropped)
        }

        var rng = SeededRandom(seed: streamSeed(seed, 5))
        var adjustments: [Int: (to: Int, jobs: Int)] = [:]
        var jobs: [TraceJob] = []
        jobs.reserveCapacity(selected.count)
        for source in selected {
            let scale = scales.last { $0 <= source.numGPUs } ?? scales[0]
            if scale != source.numGPUs { adjustments[source.numGPUs, default: (scale, 0)].jobs += 1 }
            let type = rng.pick(byScale[scale]!)
            jobs.append(
                type.job(seconds: source.duration, scaleFactor: scale, arrivalTime: Double(source.submitTime - window.start)))
        }
        return PhillyConversion(
            jobs: jobs, sourceJobs: selected, window: window, droppedByLimit: dropped,
            scaleAdjustments: adjustments.keys.sorted().map {
                .init(from: $0, to: adjustments[$0]!.to, jobs: adjustments[$0]!.jobs)
            })
    }

    /// Job types with at least one usable throughput, sorted by name (so the result does not
    /// depend on the order of a dictionary the caller built them from).
    private static func usable(_ jobTypes: [JobTypeInfo]) throws(TraceGeneratorError) -> [JobTypeInfo] {
        var seen = Set<String>()
        let types = jobTypes.filter { !$0.scaleFactors.isEmpty && seen.insert($0.model).inserted }
            .sorted { $0.model < $1.model }
        guard !types.isEmpty else {
            throw TraceGeneratorError("no job types with a positive throughput on the reference GPU")
        }
        return types
    }

    /// The largest scale factor of `type` not above `scale` (its smallest if none).
    private static func nearestSupported(_ scale: Int, by type: JobTypeInfo) -> Int {
        let factors = type.scaleFactors
        return factors.last { $0 <= scale } ?? factors[0]
    }

    /// Independent sub-seeds of one user seed.
    private static func streamSeed(_ seed: UInt64, _ stream: UInt64) -> UInt64 {
        var sm = SplitMix64(state: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        return sm.next()
    }
}

/// One line about a trace: job count, GPU mix, arrival span.
public struct TraceSummary: Sendable, Hashable, CustomStringConvertible {
    public var jobs: Int
    /// Jobs per scale factor.
    public var scaleCounts: [Int: Int]
    public var firstArrival: Double
    public var lastArrival: Double

    public init(jobs: [TraceJob]) {
        self.jobs = jobs.count
        scaleCounts = jobs.reduce(into: [:]) { $0[$1.scaleFactor, default: 0] += 1 }
        firstArrival = jobs.map(\.arrivalTime).min() ?? 0
        lastArrival = jobs.map(\.arrivalTime).max() ?? 0
    }

    /// e.g. "80 jobs; GPUs per job 1: 60 (75%), 2: 6 (8%), 4: 14 (18%); arrivals 0-41,277 s (11.5 h)"
    public var description: String {
        let mix = scaleCounts.keys.sorted().map { s in
            let n = scaleCounts[s]!
            let percent = Int((100 * Double(n) / Double(max(jobs, 1))).rounded())
            return "\(s): \(n) (\(percent == 0 ? "<1" : String(percent))%)"
        }.joined(separator: ", ")
        let span = lastArrival - firstArrival
        let arrivals =
            span == 0
            ? "all arrive at \(TraceFormatting.decimal(firstArrival)) s"
            : "arrivals \(TraceFormatting.decimal(firstArrival))-\(TraceFormatting.decimal(lastArrival)) s (\(TraceFormatting.decimal((span / 360).rounded() / 10)) h)"
        return "\(jobs) job\(jobs == 1 ? "" : "s"); GPUs per job \(mix.isEmpty ? "-" : mix); \(arrivals)"
    }
}
