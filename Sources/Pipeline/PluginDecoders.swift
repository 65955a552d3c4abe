import Core
import Decoding
import Replication

/// pgoutput: messages → assembler (relation cache, streamed and prepared transactions).
struct PgOutputTransactionDecoder: TransactionDecoder {
    var decoder: PgOutputDecoder
    var assembler: PgOutputAssembler

    init(protocolVersion: Int, spill: SpillSettings, baseTypes: BaseTypes) {
        decoder = PgOutputDecoder(protoVersion: protocolVersion)
        assembler = PgOutputAssembler(spill: spill, baseTypes: baseTypes)
    }

    mutating func consume(_ payload: [UInt8], at lsn: LSN) throws -> [Transaction] {
        let message = try decoder.decode(payload)
        guard case .transaction(var transaction, let messages)? = try assembler.consume(message, at: lsn) else { return [] }
        transaction.messages = messages.filter { LogicalMessage.isChangeRelays(prefix: $0.prefix) }
            .map { LogicalMessage(lsn: $0.lsn, prefix: $0.prefix, content: Array($0.content)) }
        return [transaction]
    }

    /// Streamed transactions that have not committed do not count: their commit lies past
    /// any keepalive that arrives before it, and the slot keeps their start. Two-phase
    /// decoding is never requested, so no prepared transaction can be pending.
    var hasOpenTransactions: Bool { assembler.isTransactionOpen }

    static func options(_ settings: SlotReader.Settings) -> [(String, String)] {
        // Messages carry the timers' ticks (`LogicalMessage`) inside their transactions.
        // pgoutput reads the names as SQL identifiers (unquoted ones folded to lower case, commas
        // separating names): quoted, the configured name is the publication's name as written.
        var options = [("proto_version", "\(settings.protocolVersion)"), ("publication_names", quoteIdentifier(settings.publication)),
                       ("messages", "true")]
        if settings.streaming && settings.protocolVersion >= 2 { options.append(("streaming", "true")) }
        if settings.binary { options.append(("binary", "true")) }
        return options
    }
}

/// wal2json format 2: one JSON record per message. It knows no publications and names
/// leaf partitions: `Wal2JsonCatalog` routes each change as pgoutput would report it.
struct Wal2JsonTransactionDecoder: TransactionDecoder {
    var decoder: Wal2JsonDecoder
    let catalog: Wal2JsonCatalog
    /// Set for a stream from a database not in UTF-8: its records come in its encoding.
    private let recoder: ServerEncodingRecoder?

    /// `recoding`: the records are wal2json's bytes as the walsender sends them, in the
    /// database's encoding; the peek functions' rows are text the server converted already.
    init(catalog: Wal2JsonCatalog, spill: SpillSettings, recoding: Bool, baseTypes: BaseTypes) throws {
        decoder = Wal2JsonDecoder(router: { table, lsn, xid, history, seen in
            catalog.route(table, at: lsn, xid: xid, history: history, seen: seen)
        },
                                  history: catalog.history, spill: spill, baseTypes: baseTypes)
        self.catalog = catalog
        recoder = recoding ? try ServerEncodingRecoder(serverEncoding: catalog.serverEncoding) : nil
    }

    mutating func consume(_ payload: [UInt8], at lsn: LSN) throws -> [Transaction] {
        let record = try recoder?.utf8(payload) ?? payload
        let transaction = try decoder.decode(record[...], at: lsn)
        if let failure = catalog.takeFailure() { throw failure }
        // A transaction with nothing published and no message of ChangeRelay's is not passed
        // on, as pgoutput (since 15) sends none. wal2json sends every table's, the committer's
        // own checkpoint write among them: planned, each gave a checkpoint of its own, which
        // was the next such transaction, hundreds a second on an idle stream. The walsender's
        // keepalive, answered once nothing is pending, moves the slot past them.
        guard let transaction, transaction.changes.count > 0 || !transaction.messages.isEmpty else { return [] }
        return [transaction]
    }

    var hasOpenTransactions: Bool { decoder.isInTransaction }

    /// Types by oid only (`include-types` off): wal2json 2.5 writes a type's name unescaped when
    /// it starts with a quote (`"type":"Billing".state`, a type in a schema that needs quoting
    /// and is not on the search path), which no JSON parser reads, so one column of such a type
    /// in any table, published or not, stopped the stream at that record for good. The
    /// decoder never read the names.
    static func options(_ settings: SlotReader.Settings) -> [(String, String)] {
        [("format-version", "2"), ("include-xids", "1"), ("include-timestamp", "1"), ("include-lsn", "1"),
         ("include-types", "0"), ("include-type-oids", "1"), ("include-pk", "1")]
    }
}

extension SlotReader.Settings {
    /// A decoder for the plugin, new for each stream: a relation cache and an open
    /// transaction belong to the stream that sent them. The dry run of a replay decodes the
    /// peek functions' rows with the same ones (`fromStream` false: text the server has
    /// converted to the session's UTF-8 already).
    func makeDecoder(fromStream: Bool) throws -> any TransactionDecoder {
        // Domains render as their base types, through either plugin.
        let baseTypes = DomainLookup(url: databaseURL).baseTypes
        switch plugin {
        case .pgoutput: return PgOutputTransactionDecoder(protocolVersion: protocolVersion, spill: spill, baseTypes: baseTypes)
        case .wal2json: return try Wal2JsonTransactionDecoder(catalog: try Wal2JsonCatalog(url: databaseURL, publication: publication),
                                                              spill: spill, recoding: fromStream, baseTypes: baseTypes)
        }
    }

    /// The plugin's options: START_REPLICATION's, and the same for the peek functions.
    var pluginOptions: [(String, String)] {
        switch plugin {
        case .pgoutput: PgOutputTransactionDecoder.options(self)
        case .wal2json: Wal2JsonTransactionDecoder.options(self)
        }
    }
}
