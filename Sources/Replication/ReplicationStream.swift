import CLibPQ
import Core
#if canImport(Glibc)
import Glibc
#endif

/// What the server sends inside the CopyBoth stream.
public enum ReplicationEvent: Sendable {
    /// One output-plugin message. `start` is the LSN the plugin wrote it at (0 for
    /// pgoutput Relation/Type messages, and not monotonic), so never derive progress from it.
    case data(start: LSN, end: LSN, serverTime: PostgresTimestamp, payload: [UInt8])
    /// The server's current WAL end. It asks for an immediate reply every
    /// `wal_sender_timeout / 2`; the stream answers that itself.
    case keepalive(walEnd: LSN, serverTime: PostgresTimestamp, replyRequested: Bool)
}

/// A running START_REPLICATION stream, read with `PQsocket` + `poll` and async
/// `PQgetCopyData`, so a wait can be bounded and status updates go out on time.
/// It blocks only the thread that calls `next`: run it on a thread of its own,
/// never on Swift's cooperative pool.
public final class ReplicationStream: @unchecked Sendable {
    private let connection: PostgresConnection
    private let statusInterval: Duration
    private let clock = ContinuousClock()
    private var lastStatusSent: ContinuousClock.Instant
    private var received: LSN
    public private(set) var acknowledged: LSN
    private var finished = false
    /// Events returned since the status was last looked at: a stream that always has data
    /// buffered never reached the check before the wait, and sent its position only when
    /// the server asked, so the slot fell behind the checkpoint for minutes at a time.
    private var eventsSinceStatusCheck = 0

    /// `startedAt`, where the stream starts, is acknowledged from the first update: the
    /// caller starts there because everything before it is handled. Starting from zero, a
    /// reconnected stream told the server nothing new until its next batch was durable.
    init(connection: PostgresConnection, startedAt: LSN, statusInterval: Duration) {
        self.connection = connection
        self.statusInterval = statusInterval
        received = startedAt
        acknowledged = startedAt
        lastStatusSent = clock.now
    }

    public var endpoint: String { connection.endpoint }

    /// The server ended the stream (CopyDone); `next` returns nil from then on.
    public var isFinished: Bool { finished }

    /// Marks everything up to `lsn` as durably handled. Only ever moves forward:
    /// the slot's `confirmed_flush_lsn` follows it at the next status update.
    public func acknowledge(_ lsn: LSN) {
        if lsn > acknowledged { acknowledged = lsn }
    }

    /// Waits up to `timeout` for the next event; nil when none arrived in time or the
    /// server ended the stream. Sends status updates when they are due.
    public func next(timeout: Duration) throws(PostgresError) -> ReplicationEvent? {
        eventsSinceStatusCheck += 1
        if eventsSinceStatusCheck >= 256 {
            eventsSinceStatusCheck = 0
            try sendStatusIfDue()
        }
        let deadline = clock.now.advanced(by: timeout)
        while true {
            if let event = try readBuffered() { return event }
            if finished { return nil }
            try sendStatusIfDue()
            let now = clock.now
            if now >= deadline { return nil }
            let untilStatus = lastStatusSent.advanced(by: statusInterval) - now
            try waitReadable(for: min(deadline - now, max(untilStatus, .milliseconds(1))))
            guard PQconsumeInput(connection.handle) == 1 else {
                throw PostgresError(.connectionLost, PostgresConnection.lastError(connection.handle),
                                    endpoint: connection.endpoint)
            }
        }
    }

    /// Sends a standby status update now (e.g. right after a checkpoint commit).
    public func sendStatus(replyRequested: Bool = false) throws(PostgresError) {
        var message = [UInt8](repeating: 0, count: 34)
        message[0] = UInt8(ascii: "r")
        let written = max(received, acknowledged)
        message.storeBigEndian(written.value, at: 1)
        message.storeBigEndian(acknowledged.value, at: 9)
        message.storeBigEndian(acknowledged.value, at: 17)
        message.storeBigEndian(UInt64(bitPattern: Self.now().microseconds), at: 25)
        message[33] = replyRequested ? 1 : 0
        let sent = message.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(connection.handle, $0.baseAddress, Int32($0.count)) }
        }
        guard sent == 1, PQflush(connection.handle) == 0 else {
            throw PostgresError(.connectionLost, PostgresConnection.lastError(connection.handle), endpoint: connection.endpoint)
        }
        lastStatusSent = clock.now
    }

    /// Ends the stream cleanly: a last status update with the acknowledged position,
    /// CopyDone, then drains what the server still sends until it confirms.
    public func finish(timeout: Duration = .seconds(5)) throws(PostgresError) {
        guard !finished else { return }
        try sendStatus()
        guard PQputCopyEnd(connection.handle, nil) == 1, PQflush(connection.handle) == 0 else {
            throw PostgresError(.connectionLost, PostgresConnection.lastError(connection.handle), endpoint: connection.endpoint)
        }
        let deadline = clock.now.advanced(by: timeout)
        while !finished, clock.now < deadline {
            if try readBuffered() == nil, !finished {
                try waitReadable(for: deadline - clock.now)
                _ = PQconsumeInput(connection.handle)
            }
        }
    }

    private func readBuffered() throws(PostgresError) -> ReplicationEvent? {
        var buffer: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(connection.handle, &buffer, 1)
        if length == 0 { return nil }
        if length == -1 {
            try drainResults()
            return nil
        }
        guard length > 0, let buffer else {
            throw PostgresError(.connectionLost, PostgresConnection.lastError(connection.handle), endpoint: connection.endpoint)
        }
        defer { PQfreemem(buffer) }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: Int(length))
        return try parse(bytes)
    }

    private func parse(_ bytes: UnsafeRawBufferPointer) throws(PostgresError) -> ReplicationEvent {
        switch bytes.first {
        case UInt8(ascii: "w") where bytes.count >= 25:
            let start = LSN(bytes.loadBigEndian(at: 1))
            let end = LSN(bytes.loadBigEndian(at: 9))
            if end > received { received = end }
            let time = PostgresTimestamp(microsecondsSince2000: Int64(bitPattern: bytes.loadBigEndian(at: 17)))
            return .data(start: start, end: end, serverTime: time, payload: Array(bytes[25...]))
        case UInt8(ascii: "k") where bytes.count >= 18:
            let walEnd = LSN(bytes.loadBigEndian(at: 1))
            if walEnd > received { received = walEnd }
            let time = PostgresTimestamp(microsecondsSince2000: Int64(bitPattern: bytes.loadBigEndian(at: 9)))
            let replyRequested = bytes[17] == 1
            if replyRequested { try sendStatus() }
            return .keepalive(walEnd: walEnd, serverTime: time, replyRequested: replyRequested)
        default:
            let kind = bytes.first.map { String(UnicodeScalar($0)) } ?? "empty"
            throw PostgresError(.protocolViolation, "unknown CopyData message '\(kind)' of \(bytes.count) bytes",
                                endpoint: connection.endpoint)
        }
    }

    /// After CopyDone from the server, collect the command's final results; an error
    /// result (slot dropped, walsender terminated) is reported, not swallowed.
    private func drainResults() throws(PostgresError) {
        finished = true
        var firstError: PostgresError?
        while let result = PQgetResult(connection.handle) {
            defer { PQclear(result) }
            let status = PQresultStatus(result)
            if status == PGRES_COPY_BOTH || status == PGRES_COPY_OUT || status == PGRES_COPY_IN {
                _ = PQputCopyEnd(connection.handle, nil)
                continue
            }
            if status != PGRES_COMMAND_OK, status != PGRES_TUPLES_OK, firstError == nil {
                firstError = connection.resultError(result, statement: nil)
            }
        }
        if let firstError { throw firstError }
    }

    private func sendStatusIfDue() throws(PostgresError) {
        if clock.now - lastStatusSent >= statusInterval {
            try sendStatus()
        }
    }

    private func waitReadable(for duration: Duration) throws(PostgresError) {
        let socket = PQsocket(connection.handle)
        guard socket >= 0 else {
            throw PostgresError(.connectionLost, "no socket", endpoint: connection.endpoint)
        }
        var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(clamping: max(0, duration.wholeMilliseconds))
        let ready = poll(&descriptor, 1, milliseconds)
        if ready < 0, errno != EINTR {
            throw PostgresError(.connectionLost, "poll failed: errno \(errno)", endpoint: connection.endpoint)
        }
    }

    static func now() -> PostgresTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return PostgresTimestamp(unixMicroseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }
}

extension UnsafeRawBufferPointer {
    func loadBigEndian(at offset: Int) -> UInt64 {
        UInt64(bigEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}

extension [UInt8] {
    mutating func storeBigEndian(_ value: UInt64, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value.bigEndian, toByteOffset: offset, as: UInt64.self) }
    }
}
