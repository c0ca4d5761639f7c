import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// `chaperone-proxy wait-ready`: polls the admin `/readyz` until it answers 200. A classic
/// (non-native) sidecar runs it as its postStart hook, so the kubelet starts the agent's
/// container only once the proxy accepts traffic.
public enum ReadinessWait {
    /// True when `/readyz` answered 200 before `timeout`.
    public static func wait(host: String, port: Int, timeout: Duration, interval: Duration = .milliseconds(200)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(timeout: .init(connect: .seconds(1), read: .seconds(1))))
        let url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)/readyz"
        var ready = false
        while !ready, ContinuousClock.now < deadline {
            if let response = try? await client.execute(HTTPClientRequest(url: url), timeout: .seconds(1)), response.status.code == 200 {
                ready = true
            } else {
                try? await Task.sleep(for: interval)
            }
        }
        try? await client.shutdown()
        return ready
    }
}
