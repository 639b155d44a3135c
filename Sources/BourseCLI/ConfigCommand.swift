import ArgumentParser

struct ConfigCommand: PlannedCommand {
    static let plannedName = "config"
    static let plannedIssue = 2
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validate and summarise cluster configs (not built yet: issue #2)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
