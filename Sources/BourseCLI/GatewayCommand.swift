import ArgumentParser

struct Gateway: PlannedCommand {
    static let plannedName = "gateway"
    static let plannedIssue = 5
    static let configuration = CommandConfiguration(
        commandName: "gateway", abstract: "Run the gateway process (durable job store, client API) (not built yet: issue #5)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
