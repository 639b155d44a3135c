import ArgumentParser

struct Jobs: PlannedCommand {
    static let plannedName = "jobs"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "jobs", abstract: "List jobs known to the gateway (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
