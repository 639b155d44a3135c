import ArgumentParser

struct Status: PlannedCommand {
    static let plannedName = "status"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show one job's state (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
