import ArgumentParser

struct Up: PlannedCommand {
    static let plannedName = "up"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Start gateway, shards and agents of a cluster config as local processes (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
