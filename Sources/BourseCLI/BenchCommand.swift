import ArgumentParser

struct Bench: PlannedCommand {
    static let plannedName = "bench"
    static let plannedIssue = 4
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Benchmarks: policy decision time, simulator speed, transport (not built yet: issue #4)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
