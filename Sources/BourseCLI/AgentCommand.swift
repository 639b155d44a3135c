import ArgumentParser

struct Agent: PlannedCommand {
    static let plannedName = "agent"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run a node agent (data plane) (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
