import ArgumentParser

/// Thrown by subcommands that are part of the command tree but not built yet, so users see the
/// plan rather than a silent no-op.
struct NotBuiltYet: Error, CustomStringConvertible {
    var command: String
    var issue: Int
    var description: String {
        "`bourse \(command)` is not built yet (tracked in issue #\(issue)). See README.md for what works today."
    }
}

/// A subcommand that exists in the tree but only explains that it is not built yet.
protocol PlannedCommand: ParsableCommand {
    static var plannedName: String { get }
    static var plannedIssue: Int { get }
}

extension PlannedCommand {
    func run() throws { throw NotBuiltYet(command: Self.plannedName, issue: Self.plannedIssue) }
}
