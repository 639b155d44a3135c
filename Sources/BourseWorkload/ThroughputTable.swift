import BourseModel
import Foundation

/// A job type of the throughput table: a model (with its batch size in the name, e.g.
/// "ResNet-18 (batch size 32)") and a scale factor (number of GPUs / workers).
public struct JobTypeKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var model: String
    public var scaleFactor: Int

    public init(model: String, scaleFactor: Int) {
        self.model = model
        self.scaleFactor = scaleFactor
    }

    /// Parses a key as Gavel writes it in its JSON table: `('ResNet-18 (batch size 32)', 4)`.
    /// Returns nil when the text is not of that form.
    public init?(tableKey text: String) {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard s.hasPrefix("('"), s.hasSuffix(")") else { return nil }
        let inner = s.dropFirst(2).dropLast()  // MODEL', SCALE
        guard let sep = inner.range(of: "',", options: .backwards) else { return nil }
        let model = String(inner[inner.startIndex..<sep.lowerBound])
        let scaleText = inner[sep.upperBound...].trimmingCharacters(in: .whitespaces)
        guard !model.isEmpty, let scale = Int(scaleText), scale >= 1 else { return nil }
        self.model = model
        self.scaleFactor = scale
    }

    /// The key as Gavel writes it: `('MODEL', SCALE)`.
    public var tableKey: String { "('\(model)', \(scaleFactor))" }
    public var description: String { tableKey }

    public static func < (a: JobTypeKey, b: JobTypeKey) -> Bool {
        (a.model, a.scaleFactor) < (b.model, b.scaleFactor)
    }
}

/// A malformed throughput table, naming the file and what is wrong.
public struct ThroughputTableError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "\(source): \(message)" }
}

/// Measured training throughputs (steps per second) of job types on worker types, as in Gavel's
/// `simulation_throughputs.json` (see `data/README.md`).
///
/// Worker types are the GPU types (`v100`, `p100`, `k80`, ...) and their `*_unconsolidated`
/// variants (the same multi-GPU job with its workers spread over several servers). The pairwise
/// space-sharing entries of Gavel's table are read and ignored. A throughput of 0 means the job
/// type cannot run on that worker type.
public struct ThroughputTable: Sendable, Equatable {
    public static let unconsolidatedSuffix = "_unconsolidated"

    /// worker type -> job type -> isolated steps per second.
    public private(set) var entries: [String: [JobTypeKey: Double]]

    public init(entries: [String: [JobTypeKey: Double]]) {
        self.entries = entries
    }

    /// All worker types of the table, sorted by name.
    public var workerTypes: [String] { entries.keys.sorted() }

    /// The GPU types (worker types without the `_unconsolidated` suffix), sorted by name.
    public var gpuTypes: [String] {
        entries.keys.filter { !$0.hasSuffix(Self.unconsolidatedSuffix) }.sorted()
    }

    /// Every job type that appears on at least one GPU type, sorted.
    public var jobTypes: [JobTypeKey] {
        var keys = Set<JobTypeKey>()
        for type in gpuTypes { keys.formUnion(entries[type, default: [:]].keys) }
        return keys.sorted()
    }

    /// Every model name of the table, sorted.
    public var models: [String] { Array(Set(jobTypes.map(\.model))).sorted() }

    /// The scale factors the table has for `model` (on any GPU type), ascending.
    public func scaleFactors(model: String) -> [Int] {
        Array(Set(jobTypes.filter { $0.model == model }.map(\.scaleFactor))).sorted()
    }

    /// The name of the unconsolidated variant of a GPU type.
    public static func unconsolidatedName(of gpuType: String) -> String {
        gpuType + unconsolidatedSuffix
    }

    /// The raw table entry, or nil when the table has no entry for that pair.
    public func throughput(_ key: JobTypeKey, workerType: String) -> Double? {
        entries[workerType]?[key]
    }

    /// Steps per second of `key` on `gpuType`; `consolidated == false` picks the
    /// `*_unconsolidated` entry for multi-GPU jobs whose workers sit on different servers (a
    /// 1-GPU job is the same either way). A missing entry reads as 0 (cannot run).
    public func throughput(_ key: JobTypeKey, gpuType: String, consolidated: Bool) -> Double {
        if !consolidated && key.scaleFactor > 1 {
            return entries[Self.unconsolidatedName(of: gpuType)]?[key] ?? 0
        }
        return entries[gpuType]?[key] ?? 0
    }

    // MARK: Reading

    /// Reads a table from a JSON file in Gavel's format.
    public static func load(path: String) throws -> ThroughputTable {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ThroughputTableError(source: path, message: "cannot read the file (\(error.localizedDescription))")
        }
        return try parse(data: data, source: path)
    }

    /// Parses a table from JSON text in Gavel's format; `source` names it in errors.
    public static func parse(data: Data, source: String = "<throughputs>") throws -> ThroughputTable {
        func fail(_ message: String) -> ThroughputTableError { ThroughputTableError(source: source, message: message) }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw fail("not valid JSON (\(error.localizedDescription))")
        }
        guard let byWorker = root as? [String: Any] else {
            throw fail("the top level must be an object keyed by worker type (e.g. \"v100\")")
        }
        guard !byWorker.isEmpty else { throw fail("the table has no worker types") }
        var entries: [String: [JobTypeKey: Double]] = [:]
        for workerType in byWorker.keys.sorted() {
            guard !workerType.isEmpty else { throw fail("a worker type name is empty") }
            guard let byJob = byWorker[workerType] as? [String: Any] else {
                throw fail("worker type '\(workerType)': expected an object keyed by job type")
            }
            var row: [JobTypeKey: Double] = [:]
            for jobText in byJob.keys.sorted() {
                guard let key = JobTypeKey(tableKey: jobText) else {
                    throw fail(
                        "worker type '\(workerType)': job type key \"\(jobText)\" is not of the form ('MODEL', SCALE)")
                }
                guard let cell = byJob[jobText] as? [String: Any] else {
                    throw fail("worker type '\(workerType)', job type \(jobText): expected an object with a \"null\" entry")
                }
                guard let isolated = cell["null"] else {
                    throw fail("worker type '\(workerType)', job type \(jobText): missing the \"null\" (isolated) throughput")
                }
                guard let value = number(isolated), value.isFinite, value >= 0 else {
                    throw fail(
                        "worker type '\(workerType)', job type \(jobText): the \"null\" throughput must be a number >= 0, got \(isolated)")
                }
                row[key] = value
            }
            entries[workerType] = row
        }
        let table = ThroughputTable(entries: entries)
        if table.gpuTypes.isEmpty {
            throw fail("the table has only *_unconsolidated worker types; it needs at least one GPU type")
        }
        return table
    }

    private static func number(_ value: Any) -> Double? {
        if let n = value as? NSNumber { return n.doubleValue }
        return value as? Double
    }

    // MARK: Validation

    /// Checks that every GPU type of `cluster` is a GPU type of this table.
    public func validate(cluster: ClusterConfig) throws {
        let known = Set(gpuTypes)
        var names = cluster.gpuTypes.map(\.name)
        for type in cluster.gpuCounts.keys.sorted() where !names.contains(type) { names.append(type) }
        for name in names where !known.contains(name) {
            throw ThroughputTableError(
                source: "cluster '\(cluster.name)'",
                message: "GPU type '\(name)' is not in the throughput table (it has: \(gpuTypes.joined(separator: ", ")))")
        }
    }

    /// Checks that `key` has an entry on at least one GPU type; returns a message naming the
    /// problem (unknown model, or a scale factor the table lacks for that model) or nil.
    public func problem(with key: JobTypeKey) -> String? {
        let scales = scaleFactors(model: key.model)
        if scales.isEmpty {
            return "unknown job type '\(key.model)': not in the throughput table"
        }
        if !scales.contains(key.scaleFactor) {
            let list = scales.map(String.init).joined(separator: ", ")
            return "scale factor \(key.scaleFactor) is not in the throughput table for '\(key.model)' (it has \(list))"
        }
        return nil
    }
}
