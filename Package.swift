// swift-tools-version:6.0
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "chaperone",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "chaperone-proxy", targets: ["chaperone-proxy"]),
        .executable(name: "chaperone-mock-upstream", targets: ["chaperone-mock-upstream"]),
        .executable(name: "chaperonectl", targets: ["chaperonectl"]),
        .executable(name: "chaperone-injector", targets: ["chaperone-injector"]),
        .executable(name: "chaperone-collector", targets: ["chaperone-collector"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .target(
            name: "ChaperoneCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneMasking",
            dependencies: [
                "ChaperoneCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneControl",
            dependencies: [
                "ChaperoneCore",
                "ChaperoneMasking",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneLLM",
            dependencies: [
                "ChaperoneCore",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneProxy",
            dependencies: [
                "ChaperoneCore",
                "ChaperoneGzip",
                "ChaperoneLLM",
                "ChaperoneMasking",
                "ChaperoneMetrics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneMockUpstream",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneKubernetes",
            dependencies: [
                "ChaperoneCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneMetrics",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneAdmin",
            dependencies: [
                "ChaperoneCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChaperoneInjector",
            dependencies: serviceDependencies + [
                "ChaperoneMasking",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-injector",
            dependencies: [
                "ChaperoneInjector",
                "ChaperoneCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(name: "CChaperoneZlib", path: "Sources/CChaperoneZlib"),
        .target(name: "ChaperoneGzip", dependencies: ["CChaperoneZlib"], swiftSettings: swiftSettings),
        .target(
            name: "ChaperoneCollector",
            dependencies: serviceDependencies + [
                "ChaperoneGzip",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-collector",
            dependencies: [
                "ChaperoneCollector",
                "ChaperoneCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-proxy",
            dependencies: [
                "ChaperoneProxy",
                "ChaperoneMasking",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-mock-upstream",
            dependencies: [
                "ChaperoneMockUpstream",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperonectl",
            dependencies: ["ChaperoneControl", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-spool-bench",
            dependencies: ["ChaperoneProxy", "ChaperoneCore", .product(name: "Logging", package: "swift-log")],
            path: "bench/spool/Sources",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "chaperone-masking-bench",
            dependencies: ["ChaperoneMasking"],
            path: "bench/masking/Sources",
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ChaperoneMaskingTests", dependencies: ["ChaperoneMasking", "ChaperoneCore"], swiftSettings: swiftSettings),
        .testTarget(name: "ChaperoneInjectorTests", dependencies: ["ChaperoneInjector", "ChaperoneCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ChaperoneCollectorTests",
            dependencies: [
                "ChaperoneCollector",
                "ChaperoneGzip",
                "CChaperoneZlib",
                "ChaperoneCore",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ChaperoneCoreTests", dependencies: ["ChaperoneCore"], swiftSettings: swiftSettings),
        .testTarget(name: "ChaperoneLLMTests", dependencies: ["ChaperoneLLM"], swiftSettings: swiftSettings),
        .testTarget(
            name: "ChaperoneProxyTests",
            dependencies: [
                "ChaperoneProxy",
                "ChaperoneLLM",
                "ChaperoneCore",
                "ChaperoneGzip",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

/// What the two in-cluster services (injector and collector) both build on: HTTP server and
/// client, TLS, the Kubernetes API, admin endpoints, metrics and lifecycle.
var serviceDependencies: [Target.Dependency] { [
    "ChaperoneCore",
    "ChaperoneAdmin",
    "ChaperoneMetrics",
    "ChaperoneKubernetes",
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "HummingbirdTLS", package: "hummingbird"),
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOHTTP1", package: "swift-nio"),
    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    .product(name: "NIOFoundationCompat", package: "swift-nio"),
    .product(name: "NIOSSL", package: "swift-nio-ssl"),
    .product(name: "Crypto", package: "swift-crypto"),
    .product(name: "AsyncHTTPClient", package: "async-http-client"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "Prometheus", package: "swift-prometheus"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
    .product(name: "UnixSignals", package: "swift-service-lifecycle"),
] }
