import BourseWorkload
import Foundation

/// Where the workers of a multi-GPU job sit: packed into one server (consolidated) or spread over
/// several servers (unconsolidated, slower communication). A 1-worker job is always consolidated.
public enum Placement: String, Sendable, Hashable, CaseIterable, Comparable {
    case consolidated
    case unconsolidated

    public static func < (a: Placement, b: Placement) -> Bool { a.rawValue < b.rawValue }
}

/// A hardware configuration of the estimator's tensor: GPU type x worker count x placement.
///
/// The placement of a 1-worker configuration is always `.consolidated` (placement does not matter
/// for one GPU), so `Configuration(gpuType: "v100", workers: 1, placement: .unconsolidated)` equals
/// the consolidated one.
public struct Configuration: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let gpuType: String
    public let workers: Int
    public let placement: Placement

    public init(gpuType: String, workers: Int, placement: Placement = .consolidated) {
        self.gpuType = gpuType
        self.workers = workers
        self.placement = workers <= 1 ? .consolidated : placement
    }

    public var description: String {
        workers <= 1 ? "\(gpuType) x1" : "\(gpuType) x\(workers) \(placement.rawValue)"
    }

    public static func < (a: Configuration, b: Configuration) -> Bool {
        (a.gpuType, a.workers, a.placement) < (b.gpuType, b.workers, b.placement)
    }
}

/// What the estimator reads from a job type's name (the throughput table's model key, e.g.
/// "ResNet-18 (batch size 32)"): its model family ("ResNet-18") and per-worker batch size (32).
/// Names without a batch size ("A3C") are their own family with batch size nil (counted as 1).
public struct JobTypeFeatures: Sendable, Hashable {
    public var family: String
    public var batchSize: Int?

    public init(jobType: String) {
        let marker = " (batch size "
        if jobType.hasSuffix(")"), let open = jobType.range(of: marker, options: .backwards),
            let batch = Int(jobType[open.upperBound..<jobType.index(before: jobType.endIndex)]), batch > 0
        {
            family = String(jobType[..<open.lowerBound])
            batchSize = batch
        } else {
            family = jobType
            batchSize = nil
        }
    }

    /// Samples one worker processes per step (the batch size, 1 when unknown).
    public var samplesPerStepPerWorker: Double { Double(batchSize ?? 1) }
}

/// Bad input to the estimator.
public enum EstimatorError: Error, Equatable, CustomStringConvertible {
    case emptyJobType
    case emptyGPUType
    case invalidWorkers(Int)
    case invalidThroughput(Double)
    case invalidWeight(Double)
    case unknownJobType(String)
    case unknownGPUType(String)
    case invalidEvaluation(String)

    public var description: String {
        switch self {
        case .emptyJobType: return "the job type name is empty"
        case .emptyGPUType: return "the GPU type name is empty"
        case .invalidWorkers(let n): return "the worker count must be >= 1, got \(n)"
        case .invalidThroughput(let x): return "a throughput must be a finite number > 0 (samples/s), got \(x)"
        case .invalidWeight(let w): return "an observation weight must be a finite number > 0, got \(w)"
        case .unknownJobType(let name): return "unknown job type '\(name)': never observed or registered"
        case .unknownGPUType(let name): return "unknown GPU type '\(name)': no throughput observed on it"
        case .invalidEvaluation(let message): return message
        }
    }
}

/// An estimate of one (job type, configuration) cell.
public struct Estimate: Sendable, Hashable {
    /// Estimated throughput of the whole job in samples per second.
    public var samplesPerSecond: Double
    /// Posterior standard deviation of log(samples/s): roughly the relative uncertainty (0.1 = 10 %).
    public var logStandardDeviation: Double
    /// Total observation weight on this very cell (0 when the value is inferred from other cells).
    public var observedWeight: Double

    public var isObserved: Bool { observedWeight > 0 }
}

/// One observed throughput to feed the estimator.
public struct ThroughputObservation: Sendable, Hashable {
    public var jobType: String
    public var configuration: Configuration
    public var samplesPerSecond: Double
    public var weight: Double

    public init(jobType: String, configuration: Configuration, samplesPerSecond: Double, weight: Double = 1) {
        self.jobType = jobType
        self.configuration = configuration
        self.samplesPerSecond = samplesPerSecond
        self.weight = weight
    }
}

/// One existing (non-zero) entry of a Gavel throughput table, as a cell of the estimator's tensor.
public struct TableCell: Sendable, Hashable {
    /// The table's worker type (e.g. `v100_unconsolidated`).
    public var workerType: String
    /// The table's job type key (model and scale factor).
    public var key: JobTypeKey
    public var configuration: Configuration
    /// Isolated throughput in samples/s (steps/s * batch size * workers).
    public var samplesPerSecond: Double

    /// The estimator's job type (the model name with its batch size).
    public var jobType: String { key.model }

    /// Every entry of `table` with a throughput > 0, in a fixed order (worker type, then job type).
    /// A 1-worker job appears once per worker type, so its `*_unconsolidated` entry maps to the
    /// same configuration as its consolidated one.
    public static func all(in table: ThroughputTable) -> [TableCell] {
        var cells: [TableCell] = []
        for workerType in table.workerTypes {
            let unconsolidated = workerType.hasSuffix(ThroughputTable.unconsolidatedSuffix)
            let gpu = unconsolidated
                ? String(workerType.dropLast(ThroughputTable.unconsolidatedSuffix.count)) : workerType
            guard let row = table.entries[workerType] else { continue }
            for key in row.keys.sorted() {
                let steps = row[key] ?? 0
                guard steps > 0, steps.isFinite, key.scaleFactor >= 1 else { continue }
                let features = JobTypeFeatures(jobType: key.model)
                let samples = steps * features.samplesPerStepPerWorker * Double(key.scaleFactor)
                cells.append(
                    TableCell(
                        workerType: workerType, key: key,
                        configuration: Configuration(
                            gpuType: gpu, workers: key.scaleFactor,
                            placement: unconsolidated ? .unconsolidated : .consolidated),
                        samplesPerSecond: samples))
            }
        }
        return cells
    }
}
