import ArgumentParser

struct Wire: PlannedCommand {
    static let plannedName = "wire"
    static let plannedIssue = 2
    static let configuration = CommandConfiguration(
        commandName: "wire", abstract: "Diagnostics: send and receive Bourse frames over NNG (not built yet: issue #2)")
    @Argument(parsing: .captureForPassthrough, help: .hidden) var rest: [String] = []
}
