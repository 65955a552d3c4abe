import Core
import Foundation
import Hummingbird
import Logging
import Replication
import StateStore

/// What each `AdminEndpoint` answers. Every answer is built here, errors included (a JSON
/// body with `error`, and `parameter` for a bad one), so nothing reaches Hummingbird's
/// default error page and no database error turns into a 500 without a reason.
struct AdminRoutes: Sendable {
    private let settings: AdminServer.Settings
    private let state: BlockingDatabase
    private let source: BlockingDatabase
    private let readiness: ReadinessProbe
    private let metrics: MetricsExport
    private let gauges: ScrapedGauges
    /// Counting walks the rows counted: a backlog's (scrapes) or the whole table's
    /// (`/api/status`). Polled every second, each count is read again only this often.
    private let unfinishedCounts = RecentValue<[AdminReports.DeliveryCount]>(maxAge: .seconds(15))
    private let allCounts = RecentValue<[AdminReports.DeliveryCount]>(maxAge: .seconds(30))
    private let isStreaming: @Sendable () -> Bool
    private let streamFailure: @Sendable () -> PostgresError?
    private let logger: Logger

    init(_ settings: AdminServer.Settings, metrics: MetricsExport, isStreaming: @escaping @Sendable () -> Bool,
         streamFailure: @escaping @Sendable () -> PostgresError?, logger: Logger) {
        self.streamFailure = streamFailure
        self.settings = settings
        state = BlockingDatabase(url: settings.stateURL, name: "state")
        source = BlockingDatabase(url: settings.sourceURL, name: "source")
        // Its own connection: a probe must not wait behind a slow dashboard or scrape query
        // and call a healthy database unready.
        readiness = ReadinessProbe(state: BlockingDatabase(url: settings.stateURL, name: "readiness"), logger: logger)
        self.metrics = metrics
        gauges = ScrapedGauges(metrics, handlers: settings.handlers)
        self.isStreaming = isStreaming
        self.logger = logger
    }

    func respond(_ endpoint: AdminEndpoint, request: Request, id: String?) async -> Response {
        if let refusal = CrossSiteGuard(hasToken: settings.admin.token != nil).refusal(
            for: endpoint, authority: request.head.authority, origin: request.headers[.origin],
            fetchSite: request.headers.first { $0.name.canonicalName == "sec-fetch-site" }?.value) {
            return Self.json(.forbidden, AdminReports.Problem(error: refusal))
        }
        if !endpoint.isOpen, let token = settings.admin.token, !token.accepts(authorization: request.headers[.authorization]) {
            var response = Self.json(.unauthorized, AdminReports.Problem(error: "unauthorized"))
            response.headers[.wwwAuthenticate] = "Bearer"
            return response
        }
        do {
            switch endpoint {
            case .dashboard: return Self.dashboard()
            case .healthz:
                return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            case .readyz: return await ready()
            case .metrics: return await scrape()
            case .status: return try await status()
            case .deliveries:
                let query = try DeliveryQuery(parameters: request.uri.queryParameters.map { (String($0.key), String($0.value)) })
                let entries = try await state.run { db throws(PostgresError) in
                    try DeliveryListing.newest(status: query.status, handler: query.handler, limit: query.limit,
                                               logs: settings.deliveryLogs, on: db)
                }
                return Self.json(.ok, entries.map(AdminReports.Delivery.init))
            case .retryDelivery: return try await retry(id)
            case .backfills:
                let entries = try await state.run { db throws(PostgresError) in try BackfillRequests.list(on: db) }
                return Self.json(.ok, entries.map(AdminReports.Backfill.init))
            case .schedules: return try await schedules()
            case .activity:
                let query = try ActivityQuery(parameters: request.uri.queryParameters.map { (String($0.key), String($0.value)) })
                let body = try await state.run { db throws(PostgresError) in try ActivityQueries.newest(limit: query.limit, on: db) }
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: body + "\n")))
            }
        } catch let error as BadParameter {
            return Self.json(.badRequest, AdminReports.Problem(error: error.description, parameter: error.parameter))
        } catch {
            logger.warning("admin request failed", metadata: ["endpoint": "\(endpoint.path)", "error": "\(error)"])
            return Self.json(.serviceUnavailable, AdminReports.Problem(error: "the state database cannot be read: \(error)"))
        }
    }

    /// The page forbids itself every resource but its own origin's API (the content security
    /// policy), so it cannot load anything from the network even by mistake.
    private static func dashboard() -> Response {
        Response(status: .ok, headers: [
            .contentType: "text/html; charset=utf-8",
            .contentSecurityPolicy: "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                + "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            .cacheControl: "no-cache",
        ], body: .init(byteBuffer: ByteBuffer(string: DashboardPage.html)))
    }

    private func ready() async -> Response {
        if let problem = await readiness.problem() {
            return Self.json(.serviceUnavailable, AdminReports.Readiness(reason: problem))
        }
        // Standing by is waiting for the slot, not for a source that refuses the stream.
        if let failure = streamFailure() {
            return Self.json(.serviceUnavailable, AdminReports.Readiness(
                reason: "the source cannot be streamed: " + ReadinessProbe.kind(of: failure)))
        }
        return Self.json(.ok, AdminReports.Readiness(role: role))
    }

    private var role: String { isStreaming() ? "active" : "standby" }

    /// How long a scrape waits for each database read: well inside Prometheus' own scrape
    /// timeout (10 s by default), so a database that stops answering leaves its gauges as
    /// they were and the counters still arrive.
    static let scrapePatience: Duration = .seconds(3)

    /// Sets the scraped gauges, then emits the registry. A database that cannot be read leaves
    /// its gauges at their last values rather than failing the scrape: the counters are still
    /// worth having. The lag is read from the source whatever the state database does (a stuck
    /// state database is when its alert matters), from the slot alone when the checkpoint
    /// cannot be read, and is NaN, not a stale figure, when the source cannot be read.
    private func scrape() async -> Response {
        let slot = settings.slot
        gauges.update(streaming: isStreaming())
        var checkpoint: LSN?
        do {
            let (position, buffers, backfills) = try await state.run(within: Self.scrapePatience) { db throws(PostgresError) in
                (try SlotCheckpoint(slot: slot).read(on: db), try StateQueries.buffersOpen(on: db),
                 try StateQueries.backfillsRunningByTable(slot: slot, on: db))
            }
            checkpoint = position
            gauges.update(backfillsRunning: backfills)
            let counts = try await unfinishedCounts.value {
                try await state.run(within: Self.scrapePatience) { db throws(PostgresError) in
                    try StateQueries.unfinishedDeliveryCounts(on: db)
                }
            }
            gauges.update(checkpoint: position.value, counts: counts, buffersOpen: buffers)
        } catch {
            logger.debug("metrics scrape without the state database's figures", metadata: ["error": "\(error)"])
        }
        do {
            let positions = try await source.run(within: Self.scrapePatience) { db throws(PostgresError) in
                try StateQueries.sourcePositions(slot: slot, on: db)
            }
            gauges.update(lagBytes: positions.map { StateQueries.lagBytes(checkpoint: checkpoint ?? LSN(0), source: $0) })
        } catch {
            gauges.update(lagBytes: nil)
            logger.debug("metrics scrape without the source's position", metadata: ["error": "\(error)"])
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(bytes: metrics.emit())))
    }

    private func status() async throws -> Response {
        let slot = settings.slot
        let (checkpoint, backfills) = try await state.run { db throws(PostgresError) in
            (try SlotCheckpoint(slot: slot).read(on: db), try StateQueries.backfillsRunning(slot: slot, on: db))
        }
        let counts = try await allCounts.value {
            try await state.run { db throws(PostgresError) in try StateQueries.deliveryCounts(on: db) }
        }
        let positions = try? await source.run { db throws(PostgresError) in try StateQueries.sourcePositions(slot: slot, on: db) }
        return Self.json(.ok, AdminReports.Status(
            role: role, slot: slot, checkpointLSN: checkpoint.description, serverWALEnd: positions?.walEnd.description,
            lagBytes: positions.map { StateQueries.lagBytes(checkpoint: checkpoint, source: $0) },
            deliveries: counts, backfillsRunning: backfills))
    }

    /// Re-queues one failed or dead delivery through `DeliveryRequeue`; 404 for an unknown
    /// id, 409 for a delivery in any other status.
    private func retry(_ text: String?) async throws -> Response {
        guard let id = text.flatMap({ Int64($0) }), id > 0 else { throw BadParameter("id", "must be a delivery id (a positive integer)") }
        let logs = settings.deliveryLogs
        let (requeued, status) = try await state.run { db throws(PostgresError) in
            let requeued = try DeliveryRequeue.requeue(.ids([id]), logs: logs, on: db)
            return (requeued, requeued == 1 ? DeliveryStatus.pending.rawValue : try StateQueries.deliveryStatus(id: id, on: db))
        }
        guard let status else { return Self.json(.notFound, AdminReports.Problem(error: "no delivery \(id)")) }
        guard requeued == 1 else {
            return Self.json(.conflict, AdminReports.Problem(
                error: "delivery \(id) is \(status); only failed or dead deliveries are re-queued"))
        }
        allCounts.forget()
        unfinishedCounts.forget()
        logger.notice("delivery re-queued through the admin API", metadata: ["delivery": "\(id)"])
        return Self.json(.ok, AdminReports.Retried(id: id, status: status))
    }

    private func schedules() async throws -> Response {
        let lastRuns = try await state.run { db throws(PostgresError) in try ScheduleRuns.lastRuns(on: db) }
        let now = Date()
        return Self.json(.ok, settings.schedules.map { job in
            let last = lastRuns[job.name]
            return AdminReports.Schedule(
                name: job.name, cron: job.cron.description, lastStartedAt: last.map { AdminReports.utc($0.startedAt) },
                lastFinishedAt: last?.finishedAt.map(AdminReports.utc), lastRows: last?.rows, lastError: last?.error,
                nextRunAt: AdminReports.utc(job.cron.next(after: now)))
        })
    }

    static func json(_ status: HTTPResponse.Status, _ value: some Encodable) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: AdminReports.json(value) + "\n")))
    }
}
