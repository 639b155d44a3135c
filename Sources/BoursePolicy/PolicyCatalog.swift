import BourseLP

/// The policies `bourse sim` and the shards know by name.
public enum PolicyCatalog {
    public struct Entry: Sendable, Hashable {
        /// Command-line name.
        public var name: String
        /// Gavel's name for the policy.
        public var gavelName: String
        /// One line for `--help`.
        public var summary: String
    }

    public static let entries: [Entry] = [
        Entry(
            name: "fifo", gavelName: "fifo_perf",
            summary: "first come, first served, on the fastest GPU type with room"),
        Entry(
            name: "gavel-las", gavelName: "max_min_fairness_perf",
            summary: "max-min fairness of throughput relative to an equal share"),
        Entry(
            name: "gavel-ftf", gavelName: "finish_time_fairness_perf",
            summary: "minimise the worst JCT / (JCT alone on 1/N of the cluster)"),
        Entry(
            name: "gavel-maxsum", gavelName: "max_sum_throughput_perf",
            summary: "maximise the total throughput of all jobs (no fairness)"),
        Entry(
            name: "gavel-makespan", gavelName: "min_total_duration_perf",
            summary: "minimise the time until all active jobs finish (makespan)"),
        Entry(
            name: "oef", gavelName: "-",
            summary: "OEF: max normalised throughput, envy-free + sharing incentive across tenants (LP)"),
        Entry(
            name: "oef-nc", gavelName: "-",
            summary: "OEF non-cooperative: same GPU-type mix for every tenant (strategy-proof)"),
    ]

    /// The Gavel allocation policies (`make` builds them).
    public static var names: [String] { entries.map(\.name) }

    /// Bourse's own round planners (not allocation policies: `BourseRoundPlanner` plans whole
    /// rounds itself).
    public static let plannerEntries: [Entry] = [
        Entry(
            name: "bourse", gavelName: "-",
            summary: "elastic, heterogeneity-aware: prices + matching per round"),
        Entry(
            name: "bourse-fixed", gavelName: "-",
            summary: "bourse, worker counts pinned to the trace's scale factor"),
    ]

    /// Round planners after Hops (SoCC'24) (`HopsLRFPlanner`).
    public static let hopsEntries: [Entry] = [
        Entry(
            name: "hops-lrf", gavelName: "-",
            summary: "Hops: latency-ratio priority, service window, placement IP, fragment filling"),
    ]

    /// True for the Hops planners.
    public static func isHops(_ name: String) -> Bool { hopsEntries.contains { $0.name == name } }

    /// Every policy name `bourse sim` accepts: the allocation policies, then the round planners.
    public static var allEntries: [Entry] { entries + plannerEntries + hopsEntries }
    public static var allNames: [String] { allEntries.map(\.name) }

    /// True for Bourse's own planners.
    public static func isBourse(_ name: String) -> Bool { plannerEntries.contains { $0.name == name } }

    /// A fresh policy by command-line name (Gavel's names are accepted too).
    public static func make(_ name: String, lpMethod: LPMethod = .interiorPoint) throws -> any AllocationPolicy {
        switch name {
        case "fifo", "fifo_perf": return FIFOPolicy()
        case "gavel-las", "max_min_fairness_perf": return MaxMinFairnessPolicy(lpMethod: lpMethod)
        case "gavel-ftf", "finish_time_fairness_perf": return FinishTimeFairnessPolicy(lpMethod: lpMethod)
        case "gavel-maxsum", "max_sum_throughput_perf": return MaxSumThroughputPolicy(lpMethod: lpMethod)
        case "gavel-makespan", "min_total_duration_perf": return MinTotalDurationPolicy(lpMethod: lpMethod)
        case "oef": return OEFPolicy(mode: .cooperative, lpMethod: lpMethod)
        case "oef-nc": return OEFPolicy(mode: .nonCooperative, lpMethod: lpMethod)
        default:
            throw PolicyError("unknown policy '\(name)'; known policies: \(names.joined(separator: ", "))")
        }
    }
}
