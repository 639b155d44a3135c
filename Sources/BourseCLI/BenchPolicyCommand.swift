import ArgumentParser

// Placeholder until Bourse's policy lands (issue #4); replaced by the policy's benchmark.
struct BenchPolicy: PlannedCommand {
    static let plannedName = "bench policy"
    static let plannedIssue = 4
    static let configuration = CommandConfiguration(
        commandName: "policy", abstract: "Decision time of one scheduling round (not built yet: issue #4)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
