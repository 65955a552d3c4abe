import CLibPQ
import Core

/// The walsender renders text values with its own session settings; pinning them
/// makes every value's text independent of the server's configuration (a database whose
/// `bytea_output` is `escape` would otherwise send `\000` where the stream expects `\x00`).
public let pinnedSessionOptions =
    "-c datestyle=ISO -c intervalstyle=postgres -c extra_float_digits=3 -c TimeZone=UTC -c bytea_output=hex"

/// A `replication=database` connection: replication commands plus simple SQL.
/// The server ends a second START_REPLICATION on the same connection at once, so
/// a connection starts at most one stream (`startReplication` consumes it).
public struct ReplicationConnection: ~Copyable {
    public let connection: PostgresConnection

    public init(url: String, applicationName: String = "changerelay") throws(PostgresError) {
        connection = try PostgresConnection(url: url, parameters: [
            ("replication", "database"),
            ("options", pinnedSessionOptions),
            ("application_name", applicationName),
        ])
    }

    public struct SystemIdentity: Sendable {
        public var systemID: String
        public var timeline: Int
        public var walPosition: LSN
        public var database: String?
    }

    public func identifySystem() throws(PostgresError) -> SystemIdentity {
        let result = try connection.execute("IDENTIFY_SYSTEM")
        guard let position = result.value("xlogpos").flatMap({ LSN($0) }) else {
            throw PostgresError(.protocolViolation, "IDENTIFY_SYSTEM returned no xlogpos", endpoint: connection.endpoint)
        }
        return SystemIdentity(
            systemID: result.value("systemid") ?? "",
            timeline: result.value("timeline").flatMap { Int($0) } ?? 0,
            walPosition: position,
            database: result.value("dbname"))
    }

    public enum SnapshotAction: String, Sendable {
        /// Export a snapshot other connections can import while this one stays idle.
        case export
        /// Use the snapshot in this connection's current REPEATABLE READ transaction.
        case use
        /// No snapshot (fastest).
        case nothing
    }

    public struct CreatedSlot: Sendable {
        public var name: String
        public var consistentPoint: LSN
        public var snapshotName: String?
    }

    public func createSlot(
        _ name: String, plugin: String, temporary: Bool = false, snapshot: SnapshotAction = .nothing,
        twoPhase: Bool = false
    ) throws(PostgresError) -> CreatedSlot {
        var options = ["SNAPSHOT '\(snapshot.rawValue)'"]
        if twoPhase { options.append("TWO_PHASE") }
        let sql = "CREATE_REPLICATION_SLOT \(quoteIdentifier(name))\(temporary ? " TEMPORARY" : "") LOGICAL "
            + "\(quoteIdentifier(plugin)) (\(options.joined(separator: ", ")))"
        let result = try connection.execute(sql)
        guard let point = result.value("consistent_point").flatMap({ LSN($0) }) else {
            throw PostgresError(.protocolViolation, "CREATE_REPLICATION_SLOT returned no consistent_point",
                                endpoint: connection.endpoint, statement: sql)
        }
        return CreatedSlot(name: result.value("slot_name") ?? name, consistentPoint: point,
                           snapshotName: result.value("snapshot_name"))
    }

    /// Starts streaming. The stream owns the connection from here on.
    public consuming func startReplication(
        slot: String, from start: LSN = .zero, options: [(String, String)],
        statusInterval: Duration = .seconds(10)
    ) throws(PostgresError) -> ReplicationStream {
        var sql = "START_REPLICATION SLOT \(quoteIdentifier(slot)) LOGICAL \(start)"
        if !options.isEmpty {
            sql += " (" + options.map { "\(quoteIdentifier($0.0)) \(quoteLiteral($0.1))" }.joined(separator: ", ") + ")"
        }
        let handle = connection.handle
        guard let result = PQexec(handle, sql) else { throw connection.failure(statement: sql) }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else {
            throw connection.resultError(result, statement: sql)
        }
        return ReplicationStream(connection: connection, startedAt: start, statusInterval: statusInterval)
    }
}
