import ArgumentParser
import ChaperoneMockUpstream
import Foundation
import NIOCore
import NIOPosix

@main
struct MockUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaperone-mock-upstream",
        abstract: "A local mock of the OpenAI and Anthropic APIs, streaming included, for demos, tests and benchmarks.",
        discussion: """
            Serves POST /v1/chat/completions, /v1/responses, /v1/embeddings (OpenAI) and
            POST /v1/messages (Anthropic), streamed or not, and GET /v1/models. Model names pick
            behaviours: mock-error-500, mock-error-429 (provider-shaped errors), mock-slow (a long
            stream); a request with tools gets a tool call. Prints its address on stdout.
            """
    )

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on (0 picks a free one).") var port = 18080
    @Option(help: "Delay before each streamed event, in milliseconds.") var chunkDelayMs: Int64 = 2
    @Option(help: "Require this API key (Bearer, x-api-key or api-key); others get 401.") var expectKey: String?
    @Option(help: "Append one JSON line per exchange (headers received, body hashes) to this file.") var record: String?
    @Option(help: "Event loop threads.") var threads = 1
    @Option(help: "PEM certificate chain: serve HTTPS (with --tls-key).") var tlsCert: String?
    @Option(help: "PEM private key for --tls-cert.") var tlsKey: String?

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, self.threads))
        let server = MockUpstreamServer(
            host: self.host, port: self.port, chunkDelayMilliseconds: self.chunkDelayMs,
            expectedKey: self.expectKey, recordFile: self.record,
            tls: try self.tlsPaths()
        )
        let channel = try await server.start(group: group)
        // Unbuffered, so a parent reading our stdout through a pipe sees the line at once.
        let scheme = self.tlsCert == nil ? "http" : "https"
        let line = "chaperone-mock-upstream listening on \(scheme)://\(self.host):\(channel.localAddress?.port ?? self.port)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        try await channel.closeFuture.get()
    }

    func tlsPaths() throws -> (certificateChain: String, privateKey: String)? {
        switch (self.tlsCert, self.tlsKey) {
        case (nil, nil): return nil
        case (let cert?, let key?): return (cert, key)
        default: throw ValidationError("--tls-cert and --tls-key go together")
        }
    }
}
