import ArgumentParser

struct Chaos: PlannedCommand {
    static let plannedName = "chaos"
    static let plannedIssue = 7
    static let configuration = CommandConfiguration(
        commandName: "chaos", abstract: "Run scripted failure scenarios and audit invariants (not built yet: issue #7)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
