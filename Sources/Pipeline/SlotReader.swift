import RelayConfiguration
import Core
import Decoding
import Logging
import Replication
#if canImport(Glibc)
import Glibc
#endif

/// Turns one output plugin's messages into committed transactions.
protocol TransactionDecoder {
    /// Feeds one XLogData payload; returns the transactions it completed, in commit order.
    mutating func consume(_ payload: [UInt8], at lsn: LSN) throws -> [Transaction]
    /// True between a transaction's Begin and its Commit: the walsender has read past the
    /// commit already, so a keepalive's WAL end must not be acknowledged then.
    var hasOpenTransactions: Bool { get }
    /// START_REPLICATION options for this plugin.
    static func options(_ settings: SlotReader.Settings) -> [(String, String)]
}

/// Reads a slot and hands every committed transaction, in commit order, to a
/// handler; acknowledges each one only after the handler returned. Reconnects with
/// backoff when the connection drops (a persistent slot re-sends from its confirmed
/// position). Runs on the calling thread, which it blocks: give it a thread of its own.
public final class SlotReader {
    public struct Settings: Sendable {
        public var databaseURL: String
        public var plugin: Config.Plugin
        /// A persistent slot's name; nil for a temporary slot that lives as long as the connection.
        public var slot: String?
        public var publication: String
        public var startLSN: LSN
        public var statusInterval: Duration
        /// pgoutput protocol version: 1, 2 (streaming of large transactions) or 3.
        public var protocolVersion: Int
        public var streaming: Bool
        public var binary: Bool
        /// Large transactions are held in files past this much memory.
        public var spill: SpillSettings
        /// How often to write a heartbeat message into the source's WAL; nil for never.
        public var heartbeatInterval: Duration?
        /// A slot another process streams is waited for (a standby `run`); otherwise that is
        /// an error (`PostgresError.isSlotInUse`), for a reader that must not wait (a replay).
        public var standsByWhileSlotInUse: Bool

        public init(databaseURL: String, plugin: Config.Plugin, slot: String?, publication: String,
                    startLSN: LSN = .zero, statusInterval: Duration = .seconds(10), protocolVersion: Int = 2,
                    streaming: Bool = true, binary: Bool = false, spill: SpillSettings = .default,
                    heartbeatInterval: Duration? = nil, standsByWhileSlotInUse: Bool = true) {
            self.standsByWhileSlotInUse = standsByWhileSlotInUse
            self.databaseURL = databaseURL
            self.plugin = plugin
            self.slot = slot
            self.publication = publication
            self.startLSN = startLSN
            self.statusInterval = statusInterval
            self.protocolVersion = protocolVersion
            self.streaming = streaming
            self.binary = binary
            self.spill = spill
            self.heartbeatInterval = heartbeatInterval
        }
    }

    public enum Control: Sendable {
        case proceed
        /// Stop after acknowledging this transaction.
        case stop
        /// Stop without acknowledging it: it was only partly handled, so the slot sends it again.
        case stopUnacknowledged
    }

    /// A handler that makes each transaction durable before it returns (tail, dev).
    struct ClosureSink: TransactionSink {
        let handle: (Transaction) throws -> Control

        func accept(_ transaction: Transaction) throws -> SinkProgress {
            switch try handle(transaction) {
            case .proceed: .proceed(durableThrough: transaction.endLSN)
            case .stop: .stop(durableThrough: transaction.endLSN)
            case .stopUnacknowledged: .stop(durableThrough: nil)
            }
        }
    }

    let settings: Settings
    let logger: Logger
    private var backoff = Backoff()
    /// How often a standby asks for the slot: the most a takeover waits after the slot is freed.
    static let standbyPoll: Duration = .milliseconds(500)
    private let heartbeat: Heartbeat?

    public init(_ settings: Settings, logger: Logger) {
        self.settings = settings
        self.logger = logger
        heartbeat = settings.heartbeatInterval.map { Heartbeat(url: settings.databaseURL, interval: $0, logger: logger) }
    }

    /// Streams until `handle` says stop or `stop` is asked. `handle` must make the
    /// transaction durable before it returns: its end LSN is acknowledged right after.
    /// `onStreaming` runs each time a stream has started (after every reconnect).
    public func run(until stop: StopSignal, onStreaming: () -> Void = {},
                    handle: (Transaction) throws -> Control) throws {
        try withoutActuallyEscaping(handle) { handle in
            var sink = ClosureSink(handle: handle)
            try run(into: &sink, until: stop, onStreaming: onStreaming)
        }
    }

    /// Streams into a sink that may hold transactions back (batching): the slot is
    /// acknowledged only as far as the sink says everything is durable.
    /// When `stop` is asked, the batch in hand is committed and acknowledged before it returns.
    /// `onStreamEnded` runs each time a stream that had started ends, however it ended;
    /// `onRetrying` each time the source refused or dropped the stream and it is tried again
    /// (with nil while another instance holds the slot: standing by is no failure).
    public func run(into sink: inout some TransactionSink, until stop: StopSignal, onStreaming: () -> Void = {},
                    onStreamEnded: () -> Void = {}, onRetrying: (PostgresError?) -> Void = { _ in }) throws {
        var resumeFrom = max(settings.startLSN, sink.durablePosition)
        var standingBy = false
        while !stop.isRequested {
            do {
                let stopped = try stream(from: resumeFrom, until: stop, onStreaming: onStreaming, onStreamEnded: onStreamEnded,
                                         sink: &sink, acknowledged: &resumeFrom)
                standingBy = false
                if stopped { return }
            } catch let error as PostgresError where settings.slot != nil && error.isSlotInUse {
                guard settings.standsByWhileSlotInUse else { throw error }
                // Another instance streams the slot: this one is its standby, and asks again at
                // a steady pace (not a growing backoff) so that it takes over within seconds.
                onRetrying(nil)
                if !standingBy {
                    logger.notice("the slot is in use by another instance; standing by until it is free", metadata: [
                        "slot": "\(settings.slot ?? "")", "poll_ms": "\(Self.standbyPoll.wholeMilliseconds)",
                    ])
                    standingBy = true
                }
                stop.sleep(for: Self.standbyPoll)
            } catch let error as PostgresError where settings.slot != nil && error.isRetryable {
                onRetrying(error)
                let delay = backoff.nextDelay()
                let what: Logger.Message = error.sqlState?.hasPrefix("40") == true
                    ? "the state database rolled the batch back (a deadlock or a serialization failure); reading again from the checkpoint"
                    : "replication connection failed; reconnecting"
                logger.warning(what, metadata: [
                    "error": "\(error)", "retry_in_ms": "\(delay.wholeMilliseconds)",
                    "resume_lsn": "\(resumeFrom)",
                ])
                stop.sleep(for: delay)
            }
        }
    }

    /// One connection's worth of streaming. Returns true when asked to stop.
    private func stream(from start: LSN, until stop: StopSignal, onStreaming: () -> Void, onStreamEnded: () -> Void = {},
                        sink: inout some TransactionSink, acknowledged: inout LSN) throws -> Bool {
        try requirePublishedTables()
        let connection = try ReplicationConnection(url: settings.databaseURL)
        let slot: String
        if let configured = settings.slot {
            slot = configured
        } else {
            slot = "changerelay_tail_\(getpid())"
            _ = try connection.createSlot(slot, plugin: settings.plugin.rawValue, temporary: true)
        }
        var decoder = try settings.makeDecoder(fromStream: true)
        let stream = try connection.startReplication(slot: slot, from: start, options: settings.pluginOptions,
                                                     statusInterval: settings.statusInterval)
        backoff.reset()
        try sink.streamStarted()
        logger.info("streaming", metadata: ["slot": "\(slot)", "plugin": "\(settings.plugin)", "from": "\(start)",
                                            "server": "\(stream.endpoint)"])
        onStreaming()
        defer { onStreamEnded() }
        do {
            return try pump(stream, decoder: &decoder, until: stop, sink: &sink, acknowledged: &acknowledged)
        } catch {
            // What the sink held back is sent again after the reconnect; tell the server what is durable.
            sink.discardPending()
            try? stream.sendStatus()
            throw error
        }
    }

    private func pump(_ stream: ReplicationStream, decoder: inout any TransactionDecoder, until stop: StopSignal,
                      sink: inout some TransactionSink, acknowledged: inout LSN) throws -> Bool {
        var acknowledgement = Acknowledgement(confirmed: acknowledged)
        defer { acknowledged = acknowledgement.confirmed }
        func acknowledge(_ durable: LSN?) {
            if let lsn = acknowledgement.durable(through: durable) { stream.acknowledge(lsn) }
        }
        while true {
            heartbeat?.beatIfDue()
            if stop.isRequested {
                acknowledge(try sink.flush())
                try? stream.finish()
                return true
            }
            guard let event = try stream.next(timeout: Acknowledgement.readTimeout(batchPending: sink.hasPending)) else {
                if stream.isFinished {
                    throw PostgresError(.connectionLost, "the server ended the replication stream", endpoint: stream.endpoint)
                }
                acknowledge(try sink.flush())
                continue
            }
            switch event {
            case .data(let messageStart, _, _, let payload):
                let transactions: [Transaction]
                do {
                    transactions = try decoder.consume(payload, at: messageStart)
                } catch let lost as PostgresError where lost.isRetryable {
                    // wal2json's catalog lookups: the connection failed, not the message, so
                    // the stream is retried like any lost connection (the transaction is read again).
                    throw lost
                } catch {
                    // Nothing past the last durable transaction is acknowledged: a restart re-reads from there.
                    throw SlotReaderError.undecodable(plugin: settings.plugin, lsn: messageStart,
                                                        acknowledged: acknowledgement.confirmed, reason: "\(error)")
                }
                for transaction in transactions {
                    switch try sink.accept(transaction) {
                    case .proceed(let durable):
                        acknowledge(durable)
                    case .stop(let durable):
                        acknowledge(durable)
                        try? stream.finish()
                        return true
                    }
                }
                acknowledge(try sink.tick())
            case .keepalive(let walEnd, _, _):
                // A sink that stops here makes its batch durable first, so the WAL end is confirmed too.
                let caughtUp = !decoder.hasOpenTransactions && sink.caughtUp(through: walEnd)
                if caughtUp { acknowledge(try sink.flush()) }
                if let lsn = acknowledgement.keepalive(walEnd: walEnd, transactionOpen: decoder.hasOpenTransactions,
                                                       batchPending: sink.hasPending) {
                    stream.acknowledge(lsn)
                }
                if caughtUp {
                    try? stream.finish()
                    return true
                }
            }
        }
    }

    /// Asked on a connection of its own, never the walsender's: a catalog query there caches
    /// today's publication in that backend, and pgoutput then decides the stream by it instead
    /// of by the publication of each change's time (a publication dropped and created again
    /// since made every earlier change look unpublished, and a `publish_via_partition_root`
    /// set since moved earlier changes under the root).
    private func requirePublishedTables() throws {
        let connection = try PostgresConnection(url: settings.databaseURL)
        let rows = try connection.execute(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = \(quoteLiteral(settings.publication)) LIMIT 1").rows
        guard !rows.isEmpty else { throw SlotReaderError.emptyPublication(settings.publication) }
    }
}

public enum SlotReaderError: Error, CustomStringConvertible {
    case emptyPublication(String)
    case undecodable(plugin: Config.Plugin, lsn: LSN, acknowledged: LSN, reason: String)

    public var description: String {
        switch self {
        case .emptyPublication(let name):
            "publication \(name) does not exist or has no tables; run changerelay setup"
        case .undecodable(let plugin, let lsn, let acknowledged, let reason):
            "cannot decode the \(plugin) message at LSN \(lsn): \(reason); "
                + "nothing past \(acknowledged) was acknowledged, so a restart reads it again"
        }
    }
}

extension PostgresError {
    /// `object_in_use`: START_REPLICATION on a slot another walsender holds.
    public var isSlotInUse: Bool {
        if case .queryFailed(sqlState: "55006"?) = kind { return true }
        return false
    }

    /// Lost connections and server restarts are worth retrying; a rejected statement is not.
    var isRetryable: Bool {
        switch kind {
        case .connectionFailed, .connectionLost: true
        // Class 40 is a deadlock or a serialization failure: the server rolled the batch back
        // to break a tie with another writer, and planned again from the checkpoint it passes.
        case .queryFailed(let state):
            state == "55006" || state?.hasPrefix("57P") == true || state?.hasPrefix("08") == true
                || state?.hasPrefix("40") == true
        case .protocolViolation: false
        }
    }
}
