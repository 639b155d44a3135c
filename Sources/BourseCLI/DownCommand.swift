import ArgumentParser

struct Down: PlannedCommand {
    static let plannedName = "down"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Stop the processes started by 'bourse up' (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
