// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ChangeRelay",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "changerelay", targets: ["changerelay"]),
        .executable(name: "DecoderBench", targets: ["DecoderBench"]),
        .executable(name: "BenchReceiver", targets: ["BenchReceiver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // No default traits: nothing here uses swift-configuration or full Foundation through Hummingbird.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // Positions, timestamps, calendar, durations, backoff, threads, query rows: what every
        // other module may use, depending on nothing.
        .target(name: "Core"),
        .target(name: "Replication", dependencies: [
            "CLibPQ", "Core",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Decoding", dependencies: ["Core"]),
        // What handlers plan and the dispatcher executes: deliveries, rows, retry policies, log-row descriptions.
        .target(name: "PlannedEffects", dependencies: ["Core", "Decoding", .product(name: "Crypto", package: "swift-crypto")]),
        // Cron expressions and the scheduler's rules: pure, so the configuration can check an expression.
        .target(name: "Scheduling", dependencies: ["Core"]),
        // Named RelayConfiguration (its folder stays Configuration): Hummingbird's package graph holds
        // swift-configuration, whose `Configuration` target would clash with this one.
        .target(name: "RelayConfiguration", dependencies: ["Scheduling", .product(name: "Logging", package: "swift-log")],
                path: "Sources/Configuration"),
        .target(name: "Handlers", dependencies: [
            "RelayConfiguration", "Core", "Decoding", "PlannedEffects",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // Every statement on the service's own tables (changerelay.*): checkpoints, the deliveries
        // the planner copies in and dispatchers claim, record, release, list and re-queue, and the
        // channel that wakes dispatchers. Log-row SQL comes from the handlers, as DeliveryLogs.
        .target(name: "StateStore", dependencies: [
            "Core", "Decoding", "PlannedEffects", "Replication",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Backfill's pure parts: watermarks, the windows that drop rows a live change made
        // stale, the chunk query, the check of an operator's WHERE.
        .target(name: "Backfill", dependencies: ["Core", "Decoding"]),
        .target(name: "Pipeline", dependencies: [
            "Backfill", "Core", "Replication", "Decoding", "RelayConfiguration", "PlannedEffects", "Handlers", "StateStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(name: "Schema", dependencies: ["Replication", "RelayConfiguration"]),
        .target(name: "Delivery", dependencies: [
            "CCurl", "Core", "Decoding", "Handlers", "PlannedEffects", "Replication", "StateStore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        // The admin HTTP server: health, readiness, Prometheus metrics and the JSON API over the state store.
        .target(name: "Admin", dependencies: [
            "Core", "PlannedEffects", "Replication", "Scheduling", "StateStore",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        // Configuration → handlers, stream, committer, dispatcher, periodic jobs: one service group for `run` and `dev`.
        .target(name: "ServiceAssembly", dependencies: [
            "Admin", "Core", "RelayConfiguration", "Replication", "Decoding", "PlannedEffects", "Handlers", "Pipeline", "Delivery",
            "Schema", "Scheduling", "StateStore",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),
        .target(name: "LocalReceiver", dependencies: ["Core"]),
        // `log.format = "json"`: a swift-log handler writing one JSON object per line with the project's JSON writer.
        .target(name: "LogFormat", dependencies: ["Core", "Decoding", .product(name: "Logging", package: "swift-log")]),
        .target(name: "EmbeddedPostgres", dependencies: [
            "Replication",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "changerelay", dependencies: [
            "Admin", "Backfill", "Core", "Replication", "Decoding", "RelayConfiguration", "Schema", "EmbeddedPostgres", "Pipeline", "PlannedEffects",
            "Handlers", "Delivery", "StateStore", "LocalReceiver", "LogFormat", "ServiceAssembly", "Scheduling",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "DecoderBench", dependencies: ["Core", "Decoding", "Replication"],
                          path: "Benchmarks/DecoderBench"),
        .executableTarget(name: "BenchReceiver", dependencies: ["LocalReceiver"], path: "Benchmarks/BenchReceiver"),
        // Helpers shared by test targets (a seedable generator); never linked into a product.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "DecodingTests", dependencies: ["Core", "Decoding", "TestSupport"]),
        .testTarget(name: "ReplicationTests", dependencies: ["Core", "Replication", "EmbeddedPostgres"]),
        .testTarget(name: "ConfigurationTests", dependencies: ["RelayConfiguration", "Scheduling"]),
        .testTarget(name: "LogFormatTests", dependencies: ["LogFormat", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "SchedulingTests", dependencies: ["Scheduling"]),
        .testTarget(name: "BackfillTests", dependencies: ["Backfill", "Core", "Decoding"]),
        .testTarget(name: "PipelineTests", dependencies: [
            "Core", "Decoding", "EmbeddedPostgres", "Handlers", "Pipeline", "PlannedEffects", "Replication", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "DeliveryTests", dependencies: [
            "Core", "Delivery", "PlannedEffects", "Replication", "StateStore", "TestSupport",
        ]),
        .testTarget(name: "StateStoreTests", dependencies: [
            "Core", "Decoding", "EmbeddedPostgres", "Handlers", "PlannedEffects", "Replication", "StateStore", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "HandlersTests", dependencies: [
            "RelayConfiguration", "Core", "Handlers", "Decoding", "PlannedEffects",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "MetricsTestKit", package: "swift-metrics"),
        ]),
        .testTarget(name: "ServiceAssemblyTests", dependencies: [
            "RelayConfiguration", "Core", "EmbeddedPostgres", "Handlers", "Replication", "Scheduling", "ServiceAssembly", "StateStore",
        ]),
        .testTarget(name: "DeliveryHTTPTests", dependencies: [
            "Core", "Delivery", "EmbeddedPostgres", "LocalReceiver", "Replication", "TestSupport",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "AdminTests", dependencies: ["Admin", "StateStore"]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "Replication", "Decoding", "EmbeddedPostgres", "LocalReceiver",
        ]),
    ]
)
