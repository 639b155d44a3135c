import ArgumentParser

struct Sim: PlannedCommand {
    static let plannedName = "sim"
    static let plannedIssue = 3
    static let configuration = CommandConfiguration(
        commandName: "sim", abstract: "Replay a trace in the simulator under a scheduling policy (not built yet: issue #3)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
