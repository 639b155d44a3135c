import ArgumentParser

struct Submit: PlannedCommand {
    static let plannedName = "submit"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit a job or replay a trace through the gateway (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
