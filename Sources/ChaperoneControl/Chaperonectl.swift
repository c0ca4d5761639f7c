public import ArgumentParser

/// The operator's command line. Each subcommand is its own type in this module; the executable
/// only calls `main()`.
public struct Chaperonectl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "chaperonectl",
        abstract: "Operate Chaperone: search and replay audited agent sessions, follow the live trail, verify the tamper-evident log, try masking policies.",
        subcommands: [EventsCommand.self, SessionsCommand.self, ReplayCommand.self, TailCommand.self, VerifyCommand.self, MaskCommand.self]
    )

    public init() {}
}

extension Chaperonectl {
    /// Parses the command line and runs the chosen subcommand, awaiting the asynchronous ones.
    /// (Called from the executable; spelled out because overload resolution there picks
    /// ParsableCommand's synchronous `main()`.)
    public static func runFromCommandLine() async {
        do {
            var command = try Self.parseAsRoot()
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            Self.exit(withError: error)
        }
    }
}
