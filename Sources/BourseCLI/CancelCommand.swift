import ArgumentParser

struct Cancel: PlannedCommand {
    static let plannedName = "cancel"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a job (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
