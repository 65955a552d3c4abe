import Core
import Foundation
import Hummingbird
import Logging
import PlannedEffects
import Replication
import ServiceLifecycle
import StateStore

/// The admin HTTP server (Hummingbird): health, readiness, Prometheus metrics, the JSON API
/// of `AdminEndpoint` and the dashboard page over it, one service of the `run`/`dev` group. It shuts down with the
/// group; every database read runs off the cooperative pool (`BlockingDatabase`).
public struct AdminServer: Service, CustomStringConvertible {
    public struct Settings: Sendable {
        public var admin: AdminSettings
        public var stateURL: String
        public var sourceURL: String
        public var slot: String
        /// The logs a re-queue puts back (`DeliveryRequeue`).
        public var deliveryLogs: Set<DeliveryLog>
        /// The configured handlers: each has a `changerelay_deliveries_pending` series from the
        /// first scrape, 0 until it has a backlog.
        public var handlers: [String]
        public var schedules: [AdminSchedule]

        public init(admin: AdminSettings, stateURL: String, sourceURL: String, slot: String,
                    deliveryLogs: Set<DeliveryLog>, handlers: [String] = [], schedules: [AdminSchedule]) {
            self.admin = admin
            self.stateURL = stateURL
            self.sourceURL = sourceURL
            self.slot = slot
            self.deliveryLogs = deliveryLogs
            self.handlers = handlers
            self.schedules = schedules
        }
    }

    public let description = "admin server"
    private let settings: Settings
    private let metrics: MetricsExport
    private let isStreaming: @Sendable () -> Bool
    private let logger: Logger

    /// `isStreaming` tells whether this instance streams the slot now (`/readyz` says active) or not (standby).
    public init(_ settings: Settings, metrics: MetricsExport, isStreaming: @escaping @Sendable () -> Bool, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.isStreaming = isStreaming
        self.logger = logger
    }

    public func run() async throws {
        let routes = AdminRoutes(settings, metrics: metrics, isStreaming: isStreaming, logger: logger)
        let router = Router()
        for endpoint in AdminEndpoint.allCases {
            let path = RouterPath(endpoint.path.replacingOccurrences(of: "{id}", with: ":id"))
            router.on(path, method: endpoint.method == "POST" ? .post : .get) { request, context in
                await routes.respond(endpoint, request: request, id: context.parameters.get("id"))
            }
        }
        let listen = settings.admin.listen
        let logger = logger
        let application = Application(
            router: router,
            // A client that opens a connection and sends nothing holds a descriptor, which the
            // service shares with its deliveries and database connections: idle ones are closed.
            server: .http1(configuration: .init(idleTimeout: .seconds(30))),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "changerelay"),
            onServerRunning: { channel in
                let bound = channel.localAddress.flatMap { address in
                    address.ipAddress.map { ListenAddress(host: $0, port: address.port ?? listen.port).description }
                } ?? listen.description
                logger.info("admin server listening", metadata: [
                    "address": "\(bound)", "token": "\(settings.admin.token == nil ? "none" : "required")",
                ])
            },
            logger: logger)
        try await application.run()
    }
}
