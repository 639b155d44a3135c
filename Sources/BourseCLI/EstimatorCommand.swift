import ArgumentParser

struct EstimatorCommand: PlannedCommand {
    static let plannedName = "estimator"
    static let plannedIssue = 4
    static let configuration = CommandConfiguration(
        commandName: "estimator", abstract: "Evaluate the throughput estimator (not built yet: issue #4)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
