import Core
import Decoding

/// Where a change sits in the source: the commit LSN of its transaction and its index in
/// that transaction. Every key and id ChangeRelay derives from a change (a delivery's
/// idempotency key, a staged row's key, the name behind a stable UUID) is built from it by
/// `key(handler:suffix:)`, so a crash, a replay or a backfill of the same change gets the
/// same ones.
///
/// A backfilled row is not a change: it is named by what it is (backfill, table, primary
/// key) instead, so the same backfill handles a row under one key however often its chunk
/// is read again.
public struct ChangePosition: Sendable, Hashable {
    public var commitLSN: LSN
    public var index: Int
    /// Set for a row a backfill read.
    public var backfilledRow: BackfilledRow?

    public init(commitLSN: LSN, index: Int, backfilledRow: BackfilledRow? = nil) {
        self.commitLSN = commitLSN
        self.index = index
        self.backfilledRow = backfilledRow
    }

    /// `handler:commitLSN:index`, or `handler:backfill:<id>:<schema.table>:<key>` for a
    /// backfilled row; then `:suffix` when there is one (`echo:1/200:0:echo`). Keys are
    /// stored (`deliveries.idempotency_key`, `idempotency_log.key`) and sent to receivers,
    /// which de-duplicate on them: this text must never change.
    public func key(handler: String, suffix: String? = nil) -> String {
        let key = if let row = backfilledRow {
            "\(handler):backfill:\(row.backfill):\(BackfilledRow.withoutLineBreaks("\(row.table)")):\(row.key)"
        } else {
            "\(handler):\(commitLSN):\(index)"
        }
        guard let suffix else { return key }
        return key + ":" + suffix
    }
}

/// A row by backfill and primary key: `key` is `col=value` pairs in key order (`id=7`),
/// each value escaped (`escaped(_:)`) and a binary one as `\x` and two hex digits a byte;
/// a long one is bounded (`BoundedKey`).
public struct BackfilledRow: Sendable, Hashable {
    public var backfill: Int64
    public var table: TableName
    public var key: String

    public init(backfill: Int64, table: TableName, key: String) {
        self.backfill = backfill
        self.table = table
        self.key = key
    }

    /// A key value as `key` writes it: `\`, `,` and `=` are escaped with `\`, so two rows
    /// get one key only when their values are the same. Unescaped, (`a` = `x,b=y`, `b` = `z`)
    /// and (`a` = `x`, `b` = `y,b=z`) both read `a=x,b=y,b=z`, and the second row's deliveries
    /// would collide with the first's. A line break is written `\n` or `\r`: the key is sent
    /// as the `Idempotency-Key` header, which cannot hold one, and such a row went dead on
    /// every try. Scalar by scalar, so a comma under a combining mark is escaped too. A value
    /// without those characters reads as it is.
    static func escaped(_ value: String) -> String {
        written(value, separatorsEscaped: true)
    }

    /// A table's name in a key, its line breaks written `\n` and `\r` for the header's sake;
    /// the backfill's id names one table, so this cannot make two keys one.
    static func withoutLineBreaks(_ name: String) -> String {
        written(name, separatorsEscaped: false)
    }

    private static func written(_ text: String, separatorsEscaped: Bool) -> String {
        guard text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D || separatorsEscaped && ($0 == 0x5C || $0 == 0x2C || $0 == 0x3D) })
        else { return text }
        var written = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": written.append(contentsOf: "\\n".unicodeScalars)
            case "\r": written.append(contentsOf: "\\r".unicodeScalars)
            case "\\", ",", "=":
                if separatorsEscaped { written.append("\\") }
                written.append(scalar)
            default: written.append(scalar)
            }
        }
        return String(written)
    }
}

extension Transaction {
    /// The position of the change at `index` of this transaction (`-1`: the transaction
    /// itself, for what is due by its commit time).
    public func position(ofChange index: Int) -> ChangePosition {
        ChangePosition(commitLSN: commitLSN, index: index)
    }

    /// The position of `change`, the one at `index`: a `read` of the transaction's
    /// backfill chunk is named by its row, anything else by its place in the WAL.
    public func position(of change: Change, at index: Int) -> ChangePosition {
        guard change.operation == .read, let chunk = backfill, let row = change.new else {
            return position(ofChange: index)
        }
        let key = chunk.keyColumns.map { column -> String in
            let value: String = switch row[column] {
            case .text(let bytes)?: BackfilledRow.escaped(String(decoding: bytes, as: UTF8.self))
            case .binary(let bytes)?: "\\x" + bytes.map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined()
            case .null?, .unchangedToast?, nil: "null"
            }
            return column + "=" + value
        }.joined(separator: ",")
        return ChangePosition(commitLSN: commitLSN, index: index,
                              backfilledRow: BackfilledRow(backfill: chunk.backfill, table: chunk.table, key: BoundedKey.bounded(key)))
    }
}
