import ArgumentParser

struct Shard: PlannedCommand {
    static let plannedName = "shard"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "shard", abstract: "Run the scheduler shard of one rack (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
