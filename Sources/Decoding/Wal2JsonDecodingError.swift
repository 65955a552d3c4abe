import Core

/// Why a wal2json record could not be decoded. It names the record's position (the
/// XLogData start LSN), the field (a path such as `columns[2].typeoid`) and, once known,
/// the table, so a stopped stream says exactly what it refused and where it would resume.
public struct Wal2JsonDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        case invalidJSON(JSONParseError)
        case missingField
        case duplicateField
        case wrongType(expected: String)
        case invalidValue(String)
        case unknownAction(String)
        /// A change, truncate, transactional message or commit with no open `B` record.
        case changeOutsideTransaction
        /// A `B` record while another transaction is still open: a commit went missing.
        case beginInsideTransaction(openXID: UInt32)
        case xidMismatch(begin: UInt32, commit: UInt32)
        case spillFailed(SpillError)
        /// A row of `changerelay.schema_history` the decoder cannot apply.
        case schemaHistory(SchemaHistoryError)
    }

    public var lsn: LSN
    public var field: String?
    /// `schema.table`, when the record named one before the problem was found.
    public var table: String?
    public var reason: Reason

    public init(lsn: LSN, field: String? = nil, table: String? = nil, reason: Reason) {
        self.lsn = lsn
        self.field = field
        self.table = table
        self.reason = reason
    }

    public var description: String {
        var text = "wal2json record at \(lsn)"
        if let table { text += " (table \(table))" }
        if let field { text += ", field \"\(field)\"" }
        let detail: String = switch reason {
        case .invalidJSON(let error): "invalid JSON: \(error)"
        case .missingField: "missing"
        case .duplicateField: "appears twice"
        case .wrongType(let expected): "expected \(expected)"
        case .invalidValue(let why): why
        case .unknownAction(let action): "unknown action \"\(action)\""
        case .changeOutsideTransaction: "record outside a transaction (no preceding \"B\")"
        case .beginInsideTransaction(let xid): "\"B\" while transaction \(xid) is still open"
        case .xidMismatch(let begin, let commit): "commit xid \(commit) does not match begin xid \(begin)"
        case .spillFailed(let error): error.description
        case .schemaHistory(let error): error.description
        }
        return text + ": " + detail
    }
}
