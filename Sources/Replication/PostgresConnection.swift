#if canImport(Glibc)
import Glibc
#endif
import CLibPQ
import Core
import Logging

/// One libpq connection. libpq handles are not thread-safe: an instance is used by
/// one task or thread at a time, and closes its handle when released.
public final class PostgresConnection: @unchecked Sendable {
    let handle: OpaquePointer
    public let endpoint: String
    /// When each prepared statement was prepared, by name.
    private var preparedAt: [String: ContinuousClock.Instant] = [:]

    /// Connects with libpq. `url` is a conninfo string or `postgresql://` URI; `parameters`
    /// override what it says (e.g. `replication=database`).
    ///
    /// The session's client encoding is UTF-8 whatever the database's: everything read is
    /// decoded as UTF-8, and a session's default is the database's own encoding, so a LATIN1
    /// database's text (pgoutput's values included: the walsender converts them to the
    /// client's encoding) came back as bytes that are not UTF-8, shown as U+FFFD. But not for
    /// a SQL_ASCII database, whose bytes have no encoding to convert from: asked for UTF-8,
    /// the server checks them, and a walsender stopped for good at the first that were not;
    /// as they are, those read as U+FFFD.
    public init(url: String, parameters: [(String, String)] = []) throws(PostgresError) {
        try Self.checkReadable(url)
        let keywords = ["dbname", "connect_timeout", "fallback_application_name", "client_encoding"] + parameters.map(\.0)
        let values = [url, "10", "changerelay", "UTF8"] + parameters.map(\.1)
        let connection = Self.withCStrings(keywords) { keywordPointers in
            Self.withCStrings(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let connection else {
            throw PostgresError(.connectionFailed, "out of memory", endpoint: "?")
        }
        handle = connection
        endpoint = Self.describeEndpoint(connection)
        guard PQstatus(connection) == CONNECTION_OK else {
            throw PostgresError(.connectionFailed, Self.lastError(connection), endpoint: endpoint)
        }
        PQsetNoticeReceiver(connection, Self.noticeReceiver, nil)
        if PQparameterStatus(connection, "server_encoding").map({ String(cString: $0) }) == "SQL_ASCII",
           PQsetClientEncoding(connection, "SQL_ASCII") != 0 {
            throw PostgresError(.connectionFailed, Self.lastError(connection), endpoint: endpoint)
        }
    }

    deinit { PQfinish(handle) }

    /// Whether the session is inside a transaction block (one a statement opened and left
    /// open, or one that failed and waits for its ROLLBACK).
    public var isInTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE
    }

    /// Runs one or more statements with the simple-query protocol (the only one a
    /// replication connection accepts) and returns the last result's rows.
    @discardableResult
    public func execute(_ sql: String) throws(PostgresError) -> QueryResult {
        var last = QueryResult(columns: [], rows: [])
        guard PQsendQuery(handle, sql) == 1 else { throw failure(statement: sql) }
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                last = QueryResult(result)
            default:
                if firstError == nil { firstError = resultError(result, statement: sql) }
            }
        }
        if let firstError { throw firstError }
        return last
    }

    /// Runs one statement with text parameters (`$1`, `$2`, …), which keeps values out
    /// of the SQL text. Not available on replication connections.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?]) throws(PostgresError) -> QueryResult {
        let result = Self.withOptionalCStrings(parameters) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        guard let result else { throw failure(statement: sql) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK: return QueryResult(result)
        default: throw resultError(result, statement: sql)
        }
    }

    /// `query(_:_:)`, cancelled on the server when `descriptor` turns readable (a
    /// `StopSignal`'s): a statement that runs for minutes (a backfill's chunk under a slow
    /// `--where`) no longer holds up shutdown until it ends. Cancelled, it throws the
    /// server's error (SQLSTATE 57014); one that ends first returns as it would have. A
    /// statement is not sent once the descriptor is readable, and the cancel is asked again
    /// every `cancelRepeat` while the statement runs on: the server drops a cancel that
    /// reaches it before it has read the statement, which left a stop waiting a minute.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?], cancelledWhenReadable descriptor: Int32) throws(PostgresError) -> QueryResult {
        var stop = [pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)]
        guard poll(&stop, 1, 0) == 0 else {
            throw PostgresError(.queryFailed(sqlState: "57014"), "not sent: stop was asked", endpoint: endpoint, statement: sql)
        }
        let sent = Self.withOptionalCStrings(parameters) { pointers in
            PQsendQueryParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        guard sent == 1 else { throw failure(statement: sql) }
        var cancelled = false
        while PQisBusy(handle) == 1 {
            var descriptors = [pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)]
            if !cancelled { descriptors.append(pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)) }
            let ready = poll(&descriptors, nfds_t(descriptors.count), cancelled ? Int32(Self.cancelRepeat / .milliseconds(1)) : -1)
            if cancelled, ready == 0 {
                cancelRunningStatement()
                continue
            }
            if !cancelled, descriptors[1].revents != 0 {
                cancelRunningStatement()
                cancelled = true
            }
            guard PQconsumeInput(handle) == 1 else { throw failure(statement: sql) }
        }
        var outcome: Result<QueryResult, PostgresError> = .failure(failure(statement: sql))
        var first = true
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            guard first else { continue }
            first = false
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK: outcome = .success(QueryResult(result))
            default: outcome = .failure(resultError(result, statement: sql))
            }
        }
        return try outcome.get()
    }

    /// How often a cancel is asked again while the statement it was for still runs.
    static let cancelRepeat: Duration = .milliseconds(500)

    /// Asks the server to cancel what this connection runs, over a connection of its own
    /// (libpq's cancel request); nothing happens when nothing runs.
    private func cancelRunningStatement() {
        guard let request = PQgetCancel(handle) else { return }
        defer { PQfreeCancel(request) }
        var reason = [CChar](repeating: 0, count: 256)
        _ = PQcancel(request, &reason, Int32(reason.count))
    }

    /// How long a prepared statement's plan is kept. A table that grows from empty to a
    /// backlog of millions between two ANALYZEs would otherwise keep the plan made while it
    /// was empty (sequential scans, 0.5 s a look-up at 80 000 rows), so it is made again
    /// from the table as it is now; that costs one round trip an interval.
    public static let replanInterval: Duration = .seconds(10)

    /// Runs a statement that repeats, parsed and planned once per connection and again every
    /// `replanInterval`: `sql` is prepared under `name` on first use. Not available on
    /// replication connections.
    @discardableResult
    public func query(prepared name: String, _ sql: String, _ parameters: [String?]) throws(PostgresError) -> QueryResult {
        let now = ContinuousClock.now
        if let prepared = preparedAt[name], now - prepared >= Self.replanInterval {
            try execute("DEALLOCATE " + quoteIdentifier(name))
            preparedAt[name] = nil
        }
        if preparedAt[name] == nil {
            guard let result = PQprepare(handle, name, sql, Int32(parameters.count), nil) else { throw failure(statement: sql) }
            defer { PQclear(result) }
            guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw resultError(result, statement: sql) }
            preparedAt[name] = now
        }
        let result = Self.withOptionalCStrings(parameters) { pointers in
            PQexecPrepared(handle, name, Int32(parameters.count), pointers, nil, nil, 0)
        }
        guard let result else { throw failure(statement: sql) }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK: return QueryResult(result)
        default: throw resultError(result, statement: sql)
        }
    }

    /// Starts `COPY … FROM STDIN`: the fastest way to write many rows. Send them with
    /// `putCopyData` in COPY's text format, a piece at a time, and end with `endCopy`.
    public func beginCopy(_ sql: String) throws(PostgresError) {
        guard let start = PQexec(handle, sql) else { throw failure(statement: sql) }
        defer { PQclear(start) }
        guard PQresultStatus(start) == PGRES_COPY_IN else { throw resultError(start, statement: sql) }
    }

    public func putCopyData(_ data: [UInt8]) throws(PostgresError) {
        let sent = data.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1 else { throw failure(statement: "COPY data") }
    }

    /// Ends the COPY; throws what the server found wrong with the rows.
    public func endCopy() throws(PostgresError) {
        guard PQputCopyEnd(handle, nil) == 1 else { throw failure(statement: "COPY end") }
        var firstError: PostgresError?
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            if PQresultStatus(result) != PGRES_COMMAND_OK, firstError == nil {
                firstError = resultError(result, statement: "COPY")
            }
        }
        if let firstError { throw firstError }
    }

    /// Waits until a NOTIFY arrives on this connection (after LISTEN), one of
    /// `wakeDescriptors` becomes readable, or `timeout` passes. Returns the channels notified.
    public func waitForNotifications(wakeDescriptors: [Int32], timeout: Duration) throws(PostgresError) -> [String] {
        var channels = takeNotifications()
        guard channels.isEmpty else { return channels }
        var descriptors = [pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)]
        descriptors += wakeDescriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        // Rounded up: a wait for a due time must not end just before it.
        let milliseconds = Int32(clamping: max(0, (timeout.wholeMicroseconds + 999) / 1000))
        _ = poll(&descriptors, nfds_t(descriptors.count), milliseconds)
        guard PQconsumeInput(handle) == 1 else { throw failure(statement: nil) }
        channels = takeNotifications()
        return channels
    }

    private func takeNotifications() -> [String] {
        var channels: [String] = []
        while let notification = PQnotifies(handle) {
            channels.append(String(cString: notification.pointee.relname))
            PQfreemem(notification)
        }
        return channels
    }

    func failure(statement: String?) -> PostgresError {
        let kind: PostgresError.Kind = PQstatus(handle) == CONNECTION_OK ? .queryFailed(sqlState: nil) : .connectionLost
        return PostgresError(kind, Self.lastError(handle), endpoint: endpoint, statement: statement)
    }

    /// A field of an error or notice (`C` its SQLSTATE, `M` its message, `V` its severity).
    private static func field(_ code: Character, of result: OpaquePointer) -> String? {
        PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0).trimmingTrailingWhitespace }
    }

    private static let noticeLogger = Logger(label: "changerelay.postgres")

    /// Where the server's notices go: to the log, a WARNING as a warning and the rest
    /// (`NOTICE`, `INFO`: a scheduled job's `RAISE NOTICE`, "already exists, skipping") at
    /// debug. libpq's default printed each raw on standard error, between the log's records
    /// (breaking a JSON log's one object a line), and a job raising 20 000 flooded it.
    ///
    /// wal2json warns once a row for each UPDATE or DELETE of a table without a replica
    /// identity ("no tuple identifier for UPDATE in table ..."), a table the service never
    /// delivers: the server refuses those statements on a table a publication sends them
    /// from. They go to debug too, or one statement on such a table wrote a line a row.
    private static let noticeReceiver: PQnoticeReceiver = { _, result in
        guard let result else { return }
        let severity = field("V", of: result) ?? "NOTICE"
        let message = field("M", of: result) ?? ""
        let warns = severity == "WARNING" && !message.hasPrefix(wal2jsonRowWithoutIdentity)
        noticeLogger.log(level: warns ? .warning : .debug, "the server sent a notice", metadata: [
            "severity": "\(severity)", "message": "\(message)",
            "sqlstate": "\(field("C", of: result) ?? "")",
        ])
    }

    /// The start of wal2json's warning for a row without a replica identity.
    private static let wal2jsonRowWithoutIdentity = "no tuple identifier for "

    func resultError(_ result: OpaquePointer, statement: String?) -> PostgresError {
        func field(_ code: Character) -> String? { Self.field(code, of: result) }
        let state = field("C")
        let message: String
        if let primary = field("M") {
            message = ServerErrorText(severity: field("S"), sqlState: state, primary: primary, detail: field("D"),
                                      hint: field("H"), context: field("W")).rendered
        } else {
            message = PQresultErrorMessage(result).map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
                ?? Self.lastError(handle)
        }
        let kind: PostgresError.Kind = PQstatus(handle) == CONNECTION_OK ? .queryFailed(sqlState: state) : .connectionLost
        return PostgresError(kind, message.trimmingTrailingWhitespace, endpoint: endpoint, statement: statement)
    }

    /// Refuses a connection string libpq cannot read before it is used: libpq's own message
    /// for one quotes the part it stumbled on (a password with an unencoded `%`, a whole URL
    /// with a stray space or an unknown scheme), and a string it does not recognise as a URL
    /// or `key=value` list would be taken whole as a database name and printed back. Neither
    /// may reach a log, so the message keeps libpq's words without the quoted text.
    static func checkReadable(_ connectionString: String) throws(PostgresError) {
        var message: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(connectionString, &message) {
            PQconninfoFree(options)
            guard let misread = misplacedAtSign(connectionString) else { return }
            throw unreadable(misread)
        }
        let reason = message.map { String(cString: $0).trimmingTrailingWhitespace } ?? "out of memory"
        if let message { PQfreemem(message) }
        throw unreadable(withoutQuotedText(reason))
    }

    /// Why a URL libpq reads is still not the one meant: libpq ends the user-info at the first
    /// `@` or `/`, so a password with an unencoded `@` or `/` leaves the rest of it in the host
    /// or the database name, which every connection error prints. An `@` after the user-info
    /// (and before the parameters) is that, or a database name that must be encoded anyway.
    static func misplacedAtSign(_ connectionString: String) -> String? {
        guard let scheme = ["postgresql://", "postgres://"].first(where: connectionString.hasPrefix) else { return nil }
        var rest = connectionString.dropFirst(scheme.count).prefix(while: { $0 != "#" })
        guard let end = rest.firstIndex(where: { $0 == "@" || $0 == "/" }) else { return nil }
        if rest[end] == "/" {
            // No user-info as libpq reads it: an @ further on is a password's, cut at its `/`.
            return rest.contains("@") ? "an @ after a / (a / in the password, not encoded)" : nil
        }
        rest = rest[rest.index(after: end)...]
        guard rest.prefix(while: { $0 != "?" }).contains("@") else { return nil }
        return "an @ after the user name and password"
    }

    private static func unreadable(_ reason: String) -> PostgresError {
        PostgresError(.connectionFailed, """
            the connection string cannot be read (\(reason)): write it as \
            postgresql://user:password@host:port/database, with reserved characters in the user name \
            and password percent-encoded (% as %25, @ as %40, : as %3A, / as %2F), or as key=value pairs
            """, endpoint: "(unreadable connection string)")
    }

    /// `text` with every double-quoted part replaced by `"…"`.
    static func withoutQuotedText(_ text: String) -> String {
        var result = ""
        var quoted = false
        for character in text {
            if character == "\"" {
                if !quoted { result += "\"…\"" }
                quoted.toggle()
            } else if !quoted {
                result.append(character)
            }
        }
        return result
    }

    static func lastError(_ handle: OpaquePointer) -> String {
        PQerrorMessage(handle).map { String(cString: $0) }?.trimmingTrailingWhitespace ?? "unknown libpq error"
    }

    private static func describeEndpoint(_ handle: OpaquePointer) -> String {
        let host = PQhost(handle).map { String(cString: $0) } ?? "?"
        let port = PQport(handle).map { String(cString: $0) } ?? "?"
        let database = PQdb(handle).map { String(cString: $0) } ?? "?"
        return "\(host):\(port)/\(database)"
    }

    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        withOptionalCStrings(strings) { pointers in body(pointers + [nil]) }
    }

    private static func withOptionalCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        let copies = strings.map { $0.map { strdup($0)! } }
        defer { copies.forEach { free($0) } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }
}

extension QueryResult {
    init(_ result: OpaquePointer) {
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let rows = (0..<PQntuples(result)).map { row in
            (0..<columnCount).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
        self.init(columns: columns, rows: rows)
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
