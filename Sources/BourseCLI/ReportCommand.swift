import ArgumentParser

struct Report: PlannedCommand {
    static let plannedName = "report"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "report", abstract: "Metrics of a live cluster, computed from the gateway's store (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
