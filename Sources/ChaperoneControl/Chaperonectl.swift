public import ArgumentParser

/// The operator's command line. Each subcommand is its own type in this module; the executable
/// only calls `main()`.
public struct Chaperonectl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "chaperonectl",
        abstract: "Operate Chaperone: decide held requests, search and replay audited agent sessions, follow the live trail, verify the tamper-evident log, try masking policies.",
        subcommands: [
            ApprovalsCommand.self, EventsCommand.self, SessionsCommand.self, ReplayCommand.self, TailCommand.self, VerifyCommand.self, MaskCommand.self,
        ]
    )

    public init() {}
}
