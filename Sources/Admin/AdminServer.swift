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
    private let streamFailure: @Sendable () -> PostgresError?
    private let logger: Logger

    /// `isStreaming` tells whether this instance streams the slot now (`/readyz` says active) or not (standby);
    /// `streamFailure` why it does not when it should (the source refuses or drops the stream: `/readyz` 503).
    public init(_ settings: Settings, metrics: MetricsExport, isStreaming: @escaping @Sendable () -> Bool,
                streamFailure: @escaping @Sendable () -> PostgresError? = { nil }, logger: Logger) {
        self.settings = settings
        self.metrics = metrics
        self.isStreaming = isStreaming
        self.streamFailure = streamFailure
        self.logger = logger
    }

    /// Open admin connections at most: probes, scrapes and a few dashboards need a handful.
    static let maximumConnections = 128

    /// The methods answered 405 on a path that allows another.
    private static let otherMethods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options, .trace]

    public func run() async throws {
        let routes = AdminRoutes(settings, metrics: metrics, isStreaming: isStreaming, streamFailure: streamFailure, logger: logger)
        let router = Router()
        for endpoint in AdminEndpoint.allCases {
            let path = RouterPath(endpoint.path.replacingOccurrences(of: "{id}", with: ":id"))
            let method: HTTPRequest.Method = endpoint.method == "POST" ? .post : .get
            router.on(path, method: method) { request, context in
                await routes.respond(endpoint, request: request, id: context.parameters.get("id"))
            }
            // HEAD is GET without the body (RFC 9110 asks every general-purpose server for it).
            if method == .get {
                router.on(path, method: .head) { request, context in
                    let full = await routes.respond(endpoint, request: request, id: context.parameters.get("id"))
                    return Response(status: full.status, headers: full.headers)
                }
            }
            // Another method on a path the server has: 405 naming the one it allows, not 404.
            let allowed = method == .get ? "GET, HEAD" : "POST"
            for other in Self.otherMethods where other != method && !(method == .get && other == .head) {
                router.on(path, method: other) { _, _ in
                    var response = AdminRoutes.json(.methodNotAllowed, AdminReports.Problem(
                        error: "\(endpoint.path) allows \(allowed) only"))
                    response.headers[.allow] = allowed
                    return response
                }
            }
        }
        let listen = settings.admin.listen
        let logger = logger
        let application = Application(
            router: router,
            // A client that opens a connection and sends nothing holds a descriptor, which the
            // service shares with its deliveries and database connections, and one of the
            // connections below: idle ones are closed soon, or a handful of silent clients
            // would keep the liveness probe waiting past its timeout (the kubelet's is 3 s).
            // Every client of this server (probes, Prometheus, the dashboard, curl) sends its
            // request at once, and one that reconnects for its next request loses nothing.
            server: .http1(configuration: .init(idleTimeout: .seconds(2))),
            // Past this many open connections the server accepts no more until one closes: the
            // others wait in the kernel's backlog, holding none of the process's descriptors. A
            // flood of connections otherwise used up every descriptor the process has, and the
            // runtime (libdispatch) stops the process when it cannot open one.
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "changerelay",
                                 availableConnectionsDelegate: .maximum(Self.maximumConnections, logger: logger)),
            onServerRunning: { channel in
                let bound = channel.localAddress.flatMap { address in
                    address.ipAddress.map { ListenAddress(host: $0, port: address.port ?? listen.port).description }
                } ?? listen.description
                logger.info("admin server listening", metadata: [
                    "address": "\(bound)", "token": "\(settings.admin.token == nil ? "none" : "required")",
                ])
            },
            logger: logger)
        do {
            try await application.run()
        } catch {
            throw AdminSettingsError.serverFailed(listen: listen.description, reason: "\(error)")
        }
    }
}
