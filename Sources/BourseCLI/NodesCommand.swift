import ArgumentParser

struct Nodes: PlannedCommand {
    static let plannedName = "nodes"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "nodes", abstract: "List nodes and their GPUs (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
