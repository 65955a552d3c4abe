import Core
import Decoding
import Replication

/// Reads a slot without consuming it, for a replay's `--dry-run`: the peek function of the
/// plugin (`pg_logical_slot_peek_binary_changes` for pgoutput, `pg_logical_slot_peek_changes`
/// for wal2json's text) with the options the live stream passes, through a cursor fetched a
/// thousand rows at a time, so the client holds one piece at a time however long the range
/// (the server collects the function's rows first, in its own temporary files). The rows
/// go to the same decoders as the stream's messages. The slot's confirmed position does not
/// move, and the session runs the plugin's output functions with the walsender's pinned
/// settings, so values read as the stream would send them.
public struct SlotPeek {
    public let settings: SlotReader.Settings
    /// Transactions whose commit ends past this are not read.
    public let end: LSN

    public init(_ settings: SlotReader.Settings, end: LSN) {
        self.settings = settings
        self.end = end
    }

    static let fetchSize = 1000

    /// Hands each transaction the slot holds up to `end`, in commit order; stops early when
    /// `stop` is asked (between fetches).
    public func run(until stop: StopSignal, handle: (Transaction) throws -> Void) throws {
        guard let slot = settings.slot else { preconditionFailure("a peek reads a named slot") }
        let connection = try PostgresConnection(url: settings.databaseURL, parameters: [("options", pinnedSessionOptions)])
        var decoder = try settings.makeDecoder(fromStream: false)
        let function = settings.plugin == .pgoutput ? "pg_logical_slot_peek_binary_changes" : "pg_logical_slot_peek_changes"
        let options = settings.pluginOptions.flatMap { [quoteLiteral($0.0), quoteLiteral($0.1)] }
        try connection.execute("BEGIN")
        defer { _ = try? connection.execute("ROLLBACK") }
        try connection.execute("""
            DECLARE changerelay_peek NO SCROLL CURSOR FOR
            SELECT lsn::text, data FROM \(function)(\(quoteLiteral(slot)), \(quoteLiteral(end.description))::pg_lsn, NULL\
            \(options.map { ", " + $0 }.joined()))
            """)
        while !stop.isRequested {
            let rows = try connection.execute("FETCH \(Self.fetchSize) FROM changerelay_peek").rows
            for row in rows {
                guard let lsn = row[0].flatMap({ LSN($0) }), let data = row[1] else { continue }
                let payload = settings.plugin == .pgoutput ? try Self.bytes(ofHex: data) : Array(data.utf8)
                for transaction in try decoder.consume(payload, at: lsn) where transaction.endLSN <= end {
                    try handle(transaction)
                }
            }
            if rows.count < Self.fetchSize { return }
        }
    }

    struct MalformedBytea: Error, CustomStringConvertible {
        var description: String { "the peek function returned a bytea that is not hex (\\x…)" }
    }

    /// A `bytea` in its hex text form, `\x0a1b…`.
    static func bytes(ofHex text: String) throws -> [UInt8] {
        let digits = Array(text.utf8)
        guard digits.count >= 2, digits[0] == UInt8(ascii: "\\"), digits[1] == UInt8(ascii: "x"), digits.count % 2 == 0 else {
            throw MalformedBytea()
        }
        func value(_ digit: UInt8) throws -> UInt8 {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: throw MalformedBytea()
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(digits.count / 2 - 1)
        var index = 2
        while index < digits.count {
            bytes.append(try value(digits[index]) << 4 | value(digits[index + 1]))
            index += 2
        }
        return bytes
    }
}
