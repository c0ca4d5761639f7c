public import ArgumentParser

/// The operator's command line. Each subcommand is its own type in this module; the executable
/// only calls `main()`.
public struct Chaperonectl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "chaperonectl",
        abstract: "Operate Chaperone: try masking policies on real text (more subcommands arrive with the collector).",
        subcommands: [MaskCommand.self]
    )

    public init() {}
}
