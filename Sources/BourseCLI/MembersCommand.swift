import ArgumentParser

struct Members: PlannedCommand {
    static let plannedName = "members"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "members", abstract: "List cluster members as gossip sees them (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
