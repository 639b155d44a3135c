import ArgumentParser

struct TraceCommand: PlannedCommand {
    static let plannedName = "trace"
    static let plannedIssue = 3
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Generate synthetic traces or derive them from the Philly log (not built yet: issue #3)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
