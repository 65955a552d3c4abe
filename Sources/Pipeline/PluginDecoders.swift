import Decoding
import Replication

/// pgoutput: messages → assembler (relation cache, streamed and prepared transactions).
struct PgOutputTransactionDecoder: TransactionDecoder {
    var decoder: PgOutputDecoder
    var assembler = PgOutputAssembler()

    init(protocolVersion: Int) {
        decoder = PgOutputDecoder(protoVersion: protocolVersion)
    }

    mutating func consume(_ payload: [UInt8], at lsn: LSN) throws -> [Transaction] {
        let message = try decoder.decode(payload)
        guard case .transaction(let transaction, _)? = try assembler.consume(message, at: lsn) else { return [] }
        return [transaction]
    }

    /// Two-phase decoding is never requested, so prepared transactions cannot be pending here.
    var hasOpenTransactions: Bool { assembler.isTransactionOpen }

    static func options(_ settings: ChangeStream.Settings, tables: [QualifiedTable]) -> [(String, String)] {
        var options = [("proto_version", "\(settings.protocolVersion)"), ("publication_names", settings.publication)]
        if settings.streaming && settings.protocolVersion >= 2 { options.append(("streaming", "true")) }
        if settings.binary { options.append(("binary", "true")) }
        return options
    }
}

/// wal2json format 2: one JSON record per message. It knows no publications, so the
/// publication's tables are passed as `add-tables` to read the same set as pgoutput.
struct Wal2JsonTransactionDecoder: TransactionDecoder {
    var decoder: Wal2JsonDecoder

    init(columns: TableColumns) {
        decoder = Wal2JsonDecoder(knownColumns: { schema, table in columns.columns(schema: schema, table: table) })
    }

    mutating func consume(_ payload: [UInt8], at lsn: LSN) throws -> [Transaction] {
        try decoder.decode(payload[...], at: lsn).map { [$0] } ?? []
    }

    var hasOpenTransactions: Bool { decoder.isInTransaction }

    static func options(_ settings: ChangeStream.Settings, tables: [QualifiedTable]) -> [(String, String)] {
        [
            ("format-version", "2"), ("include-xids", "1"), ("include-timestamp", "1"), ("include-lsn", "1"),
            ("include-type-oids", "1"), ("include-pk", "1"),
            // wal2json's table list escapes '.' and ',' in names with a backslash.
            ("add-tables", tables.map { escape($0.schema) + "." + escape($0.table) }.joined(separator: ",")),
        ]
    }

    private static func escape(_ part: String) -> String {
        var escaped = ""
        for character in part {
            if character == "." || character == "," || character == "\\" || character == " " { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
