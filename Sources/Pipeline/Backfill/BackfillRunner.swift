import Backfill
import Core
import Decoding
import Foundation
import Logging
import Replication
import StateStore

/// Reads backfills' chunks on the source, one request at a time in the order they were made,
/// while the stream of this instance runs (only the slot's holder backfills). For each chunk:
/// register it with the stream, write the low watermark, wait for every transaction that
/// held an xid then to end, SELECT the chunk, leave its rows for the stream, write the high
/// watermark. The stream does the rest at the high watermark (`BackfillWatermarks`), and
/// the chunk's progress is committed with its effects, so this loop keeps no state a crash
/// could lose: it starts again from the committed cursor.
public final class BackfillRunner {
    public struct Settings: Sendable {
        public var sourceURL: String
        public var stateURL: String
        public var publication: String
        /// The slot the service reads: only requests recorded for it are this runner's.
        public var slot: String

        public init(sourceURL: String, stateURL: String, publication: String, slot: String) {
            self.sourceURL = sourceURL
            self.stateURL = stateURL
            self.publication = publication
            self.slot = slot
        }
    }

    private let settings: Settings
    private let exchange: ChunkExchange
    private let logger: Logger
    /// Names this process's chunks: watermarks of an earlier run are strangers to it.
    private let run = String(UUID().uuidString.prefix(8)).lowercased()
    private var source: PostgresConnection?
    private var state: PostgresConnection?
    private var backoff = Backoff(initial: .milliseconds(200), cap: .seconds(10))
    /// Counts the times work on a request (re)started. A chunk read again after a failure gets
    /// a token of its own: a watermark of the failed try (committed though its answer was lost)
    /// must not close the new try's window.
    private var attempts = 0

    public init(_ settings: Settings, exchange: ChunkExchange, logger: Logger) {
        self.settings = settings
        self.exchange = exchange
        self.logger = logger
    }

    /// How long a transaction older than a low watermark may hold a chunk up before the log says which one.
    static let patienceBeforeWarning: Duration = .seconds(10)

    public func run(until stop: StopSignal) {
        while !stop.isRequested {
            do {
                guard exchange.streamState.isStreaming else {
                    exchange.waitForRelease(timeout: .milliseconds(500), unless: stop)
                    continue
                }
                let state = try stateConnection()
                guard let request = try BackfillRequests.next(slot: settings.slot, on: state) else {
                    _ = try state.waitForNotifications(wakeDescriptors: [stop.descriptor], timeout: .seconds(5))
                    continue
                }
                try work(on: request, until: stop)
                backoff.reset()
            } catch {
                source = nil
                state = nil
                let delay = backoff.nextDelay()
                logger.warning("backfill interrupted; trying again", metadata: [
                    "error": "\(error)", "retry_in_ms": "\(delay.wholeMilliseconds)",
                ])
                _ = stop.sleep(for: delay)
            }
        }
    }

    /// Works on one request until it is finished, cancelled or failed, the stream restarts
    /// (then the caller comes back with the committed state), or stop is asked.
    private func work(on request: BackfillRequests.Entry, until stop: StopSignal) throws {
        let state = try stateConnection()
        let generation = exchange.streamState.generation
        // Chunks read before are handled (or dropped by a restart) before the committed cursor is trusted.
        while exchange.pending(backfill: request.id) > 0, exchange.streamState.generation == generation, !stop.isRequested {
            exchange.waitForRelease(timeout: .milliseconds(200), unless: stop)
        }
        guard exchange.streamState.generation == generation, !stop.isRequested,
              let current = try BackfillRequests.entry(id: request.id, on: state), !current.status.isFinished,
              try BackfillRequests.start(request.id, on: state) else { return }
        var metadata: Logger.Metadata = ["backfill": "\(request.id)", "table": "\(request.qualifiedTable)"]
        logger.info(current.chunksDone == 0 ? "backfill started" : "backfill resumed", metadata: metadata.merging([
            "chunk_size": "\(request.chunkSize)", "chunks_done": "\(current.chunksDone)", "rows_done": "\(current.rowsDone)",
        ]) { $1 })
        var cursor = current.cursor
        var high = current.highKey
        var chunk = current.chunksDone
        attempts += 1
        let epoch = run + "." + String(attempts)
        let catalog = BackfillCatalog(connection: try sourceConnection(), publication: settings.publication)
        while !stop.isRequested {
            guard exchange.streamState == (true, generation) else { return }
            if try BackfillRequests.entry(id: request.id, on: state)?.status != .running {
                logger.info("backfill stopped: it was cancelled", metadata: metadata)
                return
            }
            // One chunk at a time: the last one is committed before the next is read.
            while exchange.pending(backfill: request.id) > 0,
                  !stop.isRequested, exchange.streamState.generation == generation {
                exchange.waitForRelease(timeout: .seconds(1), unless: stop)
            }
            guard !stop.isRequested, exchange.streamState.generation == generation else { return }
            let table: BackfillTable
            do {
                table = try catalog.table(named: quoteIdentifier(request.schema) + "." + quoteIdentifier(request.table))
            } catch let refusal as BackfillRefusal {
                try fail(request, reason: refusal.description, metadata: metadata)
                return
            }
            if high == nil {
                guard let found = try highestKey(of: table, for: request, until: stop, metadata: metadata) else { return }
                high = try BackfillRequests.bound(request.id, highKey: found, on: state)
            }
            chunk += 1
            metadata["chunk"] = "\(chunk)"
            let token = ChunkToken(run: epoch, backfill: request.id, chunk: chunk)
            exchange.register(token, table: table)
            let read: (rows: [[String?]], isLast: Bool)
            var renderingChanged: [String] = []
            do {
                try emit(Watermark(.low, token))
                try waitForOlderTransactions(quoteIdentifier(request.schema) + "." + quoteIdentifier(request.table),
                                             until: stop, metadata: metadata)
                let query = ChunkQuery(table: table, where: request.whereClause, after: cursor, through: high,
                                       limit: request.chunkSize)
                let result = try readWithWhere(query.sql, query.parameters, until: stop)
                renderingChanged = result.changedSettings
                read = (result.found.rows, result.found.rows.count < request.chunkSize)
            } catch _ where stop.isRequested {
                exchange.release([token])
                endChunkTransaction()
                return
            } catch let error as PostgresError where error.sqlState != nil && !error.isRetryable {
                exchange.release([token])
                endChunkTransaction()
                try fail(request, reason: "chunk \(chunk) cannot be read: \(error.message)", metadata: metadata)
                return
            } catch {
                exchange.release([token])
                endChunkTransaction()
                throw error
            }
            guard renderingChanged.isEmpty else {
                exchange.release([token])
                try fail(request, reason: "its --where changed \(renderingChanged.joined(separator: ", ")) (set_config), which "
                         + "decide how values are written as text: chunk \(chunk)'s rows would not be written as the stream "
                         + "writes them, and would match none of its changes", metadata: metadata)
                return
            }
            let next = ChunkQuery.cursor(after: read.rows, table: table) ?? cursor ?? []
            guard exchange.fill(token, rows: read.rows.map(table.row), cursor: next, isLast: read.isLast) else { return }
            do {
                try emit(Watermark(.high, token))
            } catch {
                exchange.release([token])
                throw error
            }
            logger.debug("backfill chunk read", metadata: metadata.merging(["rows": "\(read.rows.count)"]) { $1 })
            cursor = next
            if read.isLast {
                while exchange.pending(backfill: request.id) > 0, !stop.isRequested,
                      exchange.streamState.generation == generation {
                    exchange.waitForRelease(timeout: .seconds(1), unless: stop)
                }
                if let finished = try BackfillRequests.entry(id: request.id, on: state), finished.status == .done {
                    logger.info("backfill done", metadata: [
                        "backfill": "\(request.id)", "table": "\(request.qualifiedTable)", "rows": "\(finished.rowsDone)",
                        "superseded": "\(finished.rowsSuperseded)", "chunks": "\(finished.chunksDone)",
                    ])
                }
                return
            }
        }
    }

    /// The settings that decide how a value is written as text: a chunk's rows must be
    /// written as the stream writes them, or their keys match none of its changes.
    private static func renderingSettings(on db: PostgresConnection) throws(PostgresError) -> [String: String] {
        var settings: [String: String] = [:]
        for row in try db.query("""
            SELECT name, setting FROM pg_settings
            WHERE name IN ('TimeZone', 'DateStyle', 'IntervalStyle', 'extra_float_digits', 'bytea_output',
                           'lc_monetary', 'search_path', 'xmlbinary', 'xmloption', 'standard_conforming_strings',
                           'client_encoding')
            """, []).rows {
            if let name = row[0] { settings[name] = row[1] ?? "" }
        }
        return settings
    }

    /// Where a backfill ends, read once, before its first chunk: the highest key of the rows
    /// that exist now (empty when none match). Those inserted later reach the handlers
    /// through the stream. Nil when the server refuses the query (the request is failed) or
    /// when stop is asked: it runs the `--where` as a chunk does, and may scan as long, so it
    /// is cancelled the same way and read again at the next start.
    private func highestKey(of table: BackfillTable, for request: BackfillRequests.Entry,
                            until stop: StopSignal, metadata: Logger.Metadata) throws -> [String]? {
        let found: QueryResult
        let changed: [String]
        do {
            // Checked as a chunk is: the key is written as text, and a float key written with
            // fewer digits would bound the backfill below its last row.
            (found, changed) = try readWithWhere(ChunkQuery.highestKey(table: table, where: request.whereClause), [],
                                                 until: stop)
        } catch {
            endChunkTransaction()
            guard !stop.isRequested else { return nil }
            guard error.sqlState != nil, !error.isRetryable else { throw error }
            try fail(request, reason: "its highest key cannot be read: \(error.message)", metadata: metadata)
            return nil
        }
        guard changed.isEmpty else {
            try fail(request, reason: "its --where changed \(changed.joined(separator: ", ")) (set_config), which decide how "
                     + "values are written as text: its highest key would not be written as the stream writes it", metadata: metadata)
            return nil
        }
        return found.rows.first.map { $0.compactMap { $0 } } ?? []
    }

    /// Runs a statement holding the request's `--where`, which runs in this session and may
    /// call set_config(). The session's own settings (`sessionOptions`, its start's) come back
    /// first, so no request renders its rows other than the stream does; the statement runs in
    /// a transaction with the settings read after it, and `changedSettings` names those that
    /// decide how a value is written and differ (a set_config local to the transaction or
    /// not): its rows were written otherwise than the stream writes them. Cancelled when the
    /// service stops: a slow `--where` held up shutdown for as long as it ran.
    private func readWithWhere(_ sql: String, _ parameters: [String?], until stop: StopSignal)
        throws(PostgresError) -> (found: QueryResult, changedSettings: [String])
    {
        let db = try sourceConnection()
        try db.execute("RESET ALL")
        let before = try Self.renderingSettings(on: db)
        try db.execute("BEGIN")
        let found = try db.query(sql, parameters, cancelledWhenReadable: stop.descriptor)
        let after = try Self.renderingSettings(on: db)
        try db.execute("COMMIT")
        return (found, after.filter { before[$0.key] != $0.value }.keys.sorted())
    }

    /// Writes a watermark into the source's WAL, in a transaction of its own.
    private func emit(_ watermark: Watermark) throws {
        _ = try sourceConnection().query("SELECT pg_logical_emit_message(true, $1, $2)", [watermark.prefix, watermark.content])
    }

    /// Waits until every transaction that held an xid and a lock on the table (or one of its
    /// partitions) when the low watermark committed has ended. One whose commit record is in
    /// the WAL before the watermark can still be invisible to a snapshot taken now (a backend
    /// leaves the running set after writing its commit record, and lets its locks go after
    /// that); the stream handles it before the watermark, so it is not among the window's
    /// changes, and the chunk would hand on the older row. Only writers of the table count: a
    /// transaction that wrote it holds its lock to the end, and one that had not yet touched
    /// it can write it only after the watermark, where the window sees it. Waiting for every
    /// transaction on the cluster held a backfill behind any long one, in any database (a
    /// second service's claim over a large backlog slowed one from 180 chunks/s to 1).
    /// Prepared transactions of this database count whatever they locked. Only `pg_locks`
    /// is read (each transaction holds its own xid's lock): `pg_stat_activity` hides other
    /// roles' xids from a role without `pg_read_all_stats`, which would wait for none.
    private func waitForOlderTransactions(_ table: String, until stop: StopSignal, metadata: Logger.Metadata) throws {
        let source = try sourceConnection()
        let running = try source.query("""
            SELECT coalesce(array_agg(x)::text, '{}') AS xids FROM pg_snapshot_xip(pg_current_snapshot()) x
            WHERE (x::text::bigint % 4294967296)::text IN (
                SELECT x.transactionid::text FROM pg_locks x JOIN pg_locks l ON l.pid = x.pid
                WHERE x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
                  AND l.locktype = 'relation' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                  AND l.relation IN (SELECT $1::regclass UNION SELECT relid FROM pg_partition_tree($1::regclass))
                UNION ALL
                SELECT transaction::text FROM pg_prepared_xacts WHERE database = current_database())
            """, [table]).value("xids") ?? "{}"
        guard running != "{}" else { return }
        let clock = ContinuousClock()
        let started = clock.now
        var warned = started
        var pause = Duration.microseconds(200)
        while !stop.isRequested {
            let left = try source.query("""
                SELECT count(*) AS left, string_agg(x::text || coalesce(' (pid ' || a.pid || ')', ''), ', ') AS which
                FROM unnest($1::xid8[]) x LEFT JOIN pg_stat_activity a ON a.backend_xid::text = (x::text::bigint % 4294967296)::text
                WHERE pg_xact_status(x) = 'in progress'
                """, [running])
            guard let count = left.value("left"), count != "0" else { return }
            if clock.now - warned > Self.patienceBeforeWarning {
                warned = clock.now
                logger.warning("a backfill chunk waits for transactions older than its low watermark to end", metadata:
                    metadata.merging(["transactions": "\(left.value("which") ?? "?")",
                                      "waited_s": "\((clock.now - started).wholeMilliseconds / 1000)"]) { $1 })
            }
            _ = stop.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(50))
        }
    }

    private func fail(_ request: BackfillRequests.Entry, reason: String, metadata: Logger.Metadata) throws {
        logger.error("backfill failed", metadata: metadata.merging(["reason": "\(reason)"]) { $1 })
        try BackfillRequests.fail(request.id, error: reason, on: stateConnection())
    }

    /// The settings of a session that reads chunks or checks a `--where`: the ones the
    /// stream's walsender renders values with (a backfilled row's text must be the text the
    /// stream would have sent), and standard strings, as `WhereClause.check` reads them.
    public static let sessionOptions = pinnedSessionOptions + " -c standard_conforming_strings=on"

    /// Ends a chunk's transaction that failed or was cancelled, so the session's next
    /// statement is not refused as part of it; a connection that is gone is dropped.
    private func endChunkTransaction() {
        do throws(PostgresError) { try source?.execute("ROLLBACK") } catch { source = nil }
    }

    /// The source, with `sessionOptions`.
    private func sourceConnection() throws(PostgresError) -> PostgresConnection {
        if let source { return source }
        let connection = try PostgresConnection(url: settings.sourceURL, parameters: [
            ("options", Self.sessionOptions), ("application_name", "changerelay backfill"),
        ])
        source = connection
        return connection
    }

    private func stateConnection() throws(PostgresError) -> PostgresConnection {
        if let state { return state }
        let connection = try PostgresConnection(url: settings.stateURL)
        try BackfillRequests.listen(on: connection)
        state = connection
        return connection
    }
}
