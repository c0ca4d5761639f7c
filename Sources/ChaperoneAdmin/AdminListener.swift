public import ChaperoneCore
import Hummingbird
public import Logging
import NIOCore
public import Prometheus
public import ServiceLifecycle

/// The plain-HTTP admin listener of the Hummingbird-based binaries (injector, collector):
/// `/healthz` (the process answers), `/readyz` (from `Readiness`) and `/metrics` (Prometheus
/// text from `registry`).
public enum AdminListener {
    public static func service(
        address: ProxyConfiguration.ListenAddress, readiness: Readiness, registry: PrometheusCollectorRegistry, logger: Logger
    ) -> some Service {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let ready = readiness.isReady
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: ready ? "ready\n" : "not ready\n")))
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
        return Application(
            router: router,
            configuration: .init(address: .hostname(address.host, port: address.port)),
            onServerRunning: { channel in
                logger.info("listener.started", metadata: ["listener": "admin", "address": "\(channel.localAddress?.description ?? "")"])
            },
            logger: logger
        )
    }
}
