import CLibPQ
import Core
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

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
///
/// A heartbeat thread sends the status update when the reader has not been back for a
/// status interval: a batch whose commit took longer than `wal_sender_timeout` (a 60 000-row
/// dual-write apply, 78 s in a review) left the server without a reply, and it ended the
/// walsender; each reconnect decoded again from the slot's restart point. Every use of the
/// connection holds `gate`, so the two threads never use libpq at once; the heartbeat only
/// takes it when it is free, so it never holds a reader up.
public final class ReplicationStream: @unchecked Sendable {
    private let connection: PostgresConnection
    private let gate = Mutex<Void>(())
    private let heartbeatStop = StopSignal()
    private let statusInterval: Duration
    private let clock = ContinuousClock()
    private var lastStatusSent: ContinuousClock.Instant
    private var received: LSN
    public private(set) var acknowledged: LSN
    private var finished = false

    /// `startedAt`, where the stream starts, is acknowledged from the first update: the
    /// caller starts there because everything before it is handled. Starting from zero, a
    /// reconnected stream told the server nothing new until its next batch was durable.
    init(connection: PostgresConnection, startedAt: LSN, statusInterval: Duration) {
        self.connection = connection
        self.statusInterval = statusInterval
        received = startedAt
        acknowledged = startedAt
        lastStatusSent = clock.now
        startHeartbeat()
    }

    deinit { heartbeatStop.request() }

    public var endpoint: String { connection.endpoint }

    /// The server ended the stream (CopyDone); `next` returns nil from then on.
    public var isFinished: Bool { gate.withLock { _ in finished } }

    /// Marks everything up to `lsn` as durably handled. Only ever moves forward:
    /// the slot's `confirmed_flush_lsn` follows it at the next status update.
    public func acknowledge(_ lsn: LSN) {
        gate.withLock { _ in if lsn > acknowledged { acknowledged = lsn } }
    }

    /// Waits up to `timeout` for the next event; nil when none arrived in time or the
    /// server ended the stream. Sends status updates when they are due.
    public func next(timeout: Duration) throws(PostgresError) -> ReplicationEvent? {
        try gate.withLock { _ throws(PostgresError) in try nextHoldingGate(timeout: timeout) }
    }

    /// Sends a standby status update now (e.g. right after a checkpoint commit).
    public func sendStatus(replyRequested: Bool = false) throws(PostgresError) {
        try gate.withLock { _ throws(PostgresError) in try sendStatusHoldingGate(replyRequested: replyRequested) }
    }

    /// Ends the stream cleanly: a last status update with the acknowledged position,
    /// CopyDone, then drains what the server still sends until it confirms.
    public func finish(timeout: Duration = .seconds(5)) throws(PostgresError) {
        heartbeatStop.request()
        try gate.withLock { _ throws(PostgresError) in try finishHoldingGate(timeout: timeout) }
    }

    /// Wakes every status interval and sends the update if it is due and the reader is away
    /// (the gate is free). It holds the stream weakly: the stream's end, or its `finish`,
    /// ends it.
    private func startHeartbeat() {
        let stop = heartbeatStop
        let interval = statusInterval
        startThread(detached: true) { [weak self] in
            while !stop.sleep(for: interval) {
                guard let stream = self else { return }
                _ = stream.gate.withLockIfAvailable { _ in
                    guard !stream.finished else { return }
                    try? stream.sendStatusIfDue()
                }
            }
        }
    }

    private func nextHoldingGate(timeout: Duration) throws(PostgresError) -> ReplicationEvent? {
        // Looked at before each event too: a stream whose data stays buffered reaches the
        // check before the wait only when its buffer runs dry.
        let start = clock.now
        try sendStatusIfDue(at: start)
        let deadline = start.advanced(by: timeout)
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

    private func sendStatusHoldingGate(replyRequested: Bool = false) throws(PostgresError) {
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

    private func finishHoldingGate(timeout: Duration) throws(PostgresError) {
        guard !finished else { return }
        try sendStatusHoldingGate()
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
            if replyRequested { try sendStatusHoldingGate() }
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

    private func sendStatusIfDue(at now: ContinuousClock.Instant? = nil) throws(PostgresError) {
        if (now ?? clock.now) - lastStatusSent >= statusInterval {
            try sendStatusHoldingGate()
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
