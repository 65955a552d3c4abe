import Core

/// Why a change could not be rendered as a `tail` line.
public struct ChangeRenderingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// A binary (send-format) value of a type the renderer cannot decode; see `ChangeRenderer`.
        case unsupportedBinaryType
        case invalidBinaryValue(String)
        case invalidTextValue(String)
        case invalidJSON(JSONParseError)
    }

    public var lsn: LSN
    public var schema: String
    public var table: String
    public var column: String
    public var typeOID: UInt32
    public var reason: Reason

    public init(lsn: LSN, schema: String, table: String, column: String, typeOID: UInt32, reason: Reason) {
        self.lsn = lsn
        self.schema = schema
        self.table = table
        self.column = column
        self.typeOID = typeOID
        self.reason = reason
    }

    public var description: String {
        let detail: String = switch reason {
        case .unsupportedBinaryType: "binary values of type OID \(typeOID) cannot be rendered (use text mode)"
        case .invalidBinaryValue(let why): "invalid binary value for type OID \(typeOID): \(why)"
        case .invalidTextValue(let why): "invalid text value for type OID \(typeOID): \(why)"
        case .invalidJSON(let error): "invalid json value: \(error)"
        }
        return "change at \(lsn) on \(schema).\(table), column \"\(column)\": \(detail)"
    }
}

/// Renders changes as the `tail` command's JSON lines:
/// `{"lsn","xid","commit_time","schema","table","op","new","old"}` plus
/// `"unchanged_toast":[names]` when some new value is an unchanged TOAST (those columns are
/// left out of `new`).
///
/// Values follow the column's type OID (a domain's base type: the decoders resolve it,
/// `BaseTypes`). bool → `true`/`false`; int2/int4/int8/float4/float8
/// → JSON numbers with Postgres' exact text (NaN and ±Infinity as strings); json/jsonb →
/// embedded, re-emitted on one line; NULL → null; every other type → a string holding
/// Postgres' text output. Binary (pgoutput `binary 'true'`) values are decoded for bool,
/// int2/4/8, float4/8, text, varchar, bpchar, name, bytea, uuid, json, jsonb, date,
/// timestamp and timestamptz into the same text Postgres prints (with the session settings
/// ChangeRelay pins: ISO dates, UTC, shortest-exact floats); any other binary type is a
/// `ChangeRenderingError` with reason `.unsupportedBinaryType` naming the OID.
public enum ChangeRenderer {
    /// Appends one line (with its newline) for `change`. On error the writer is left as it was.
    public static func appendLine(_ change: Change, of transaction: Transaction, to writer: inout JSONWriter) throws(ChangeRenderingError) {
        try appendLine(change, xid: transaction.xid, commitTime: transaction.commitTime.postgresText, to: &writer)
    }

    /// The line for `change`, without its newline.
    public static func line(_ change: Change, of transaction: Transaction) throws(ChangeRenderingError) -> String {
        var writer = JSONWriter(capacity: 512)
        try appendLine(change, of: transaction, to: &writer)
        return String(decoding: writer.bytes.dropLast(), as: UTF8.self)
    }

    /// One row as a JSON object, its values typed as in a line's `new` and `old`: for
    /// handlers that pass a whole row on (an automation's `trigger_data.job`).
    public static func appendRow(_ row: Row, of change: Change, to writer: inout JSONWriter) throws(ChangeRenderingError) {
        let mark = writer.mark
        do { try writeRow(row, redacting: Redactions(of: change), &writer) } catch {
            writer.rollBack(to: mark)
            throw ChangeRenderingError(lsn: change.lsn, schema: change.schema, table: change.table,
                                       column: error.column.name, typeOID: error.column.typeOID, reason: error.reason)
        }
    }

    /// A value's problem before the column it belongs to is attached.
    private struct BadValue: Error {
        var reason: ChangeRenderingError.Reason

        static let unsupportedBinaryType = BadValue(reason: .unsupportedBinaryType)
        static func invalidBinaryValue(_ why: String) -> BadValue { BadValue(reason: .invalidBinaryValue(why)) }
        static func invalidTextValue(_ why: String) -> BadValue { BadValue(reason: .invalidTextValue(why)) }
        static func invalidJSON(_ error: JSONParseError) -> BadValue { BadValue(reason: .invalidJSON(error)) }
    }

    /// For many changes of one transaction: `commitTime` is its `postgresText`, rendered once.
    public static func appendLine(_ change: Change, xid: UInt32, commitTime: String, to writer: inout JSONWriter) throws(ChangeRenderingError) {
        let mark = writer.mark
        do {
            try writeObject(change, xid: xid, commitTime: commitTime, &writer)
        } catch {
            writer.rollBack(to: mark)
            throw ChangeRenderingError(lsn: change.lsn, schema: change.schema, table: change.table,
                                       column: error.column.name, typeOID: error.column.typeOID, reason: error.reason)
        }
        writer.newline()
    }

    private struct ValueFailure: Error {
        var column: Column
        var reason: ChangeRenderingError.Reason
    }

    private static func writeObject(_ change: Change, xid: UInt32, commitTime: String, _ writer: inout JSONWriter) throws(ValueFailure) {
        writer.beginObject()
        writer.key("lsn")
        writer.string(change.lsn.description)
        writer.key("xid")
        writer.number(Int64(xid))
        writer.key("commit_time")
        writer.string(commitTime)
        writer.key("schema")
        writer.string(change.schema)
        writer.key("table")
        writer.string(change.table)
        writer.key("op")
        writer.string(change.operation.rawValue)
        let redactions = Redactions(of: change)
        writer.key("new")
        try writeRow(change.new, redacting: redactions, &writer)
        writer.key("old")
        try writeRow(change.old, redacting: redactions, &writer)
        if let new = change.new { appendUnchangedToast(of: new, to: &writer) }
        writer.endObject()
    }

    /// `"unchanged_toast": [names]` when some of `row`'s values are unchanged TOAST (left out
    /// of the row itself); nothing otherwise.
    public static func appendUnchangedToast(of row: Row, to writer: inout JSONWriter) {
        guard row.values.contains(where: { if case .unchangedToast = $0 { true } else { false } }) else { return }
        writer.key("unchanged_toast")
        writer.beginArray()
        for (column, value) in zip(row.columns, row.values) {
            if case .unchangedToast = value { writer.string(column.name) }
        }
        writer.endArray()
    }

    /// What of `change`'s table is not printed as stored wherever a change is rendered
    /// (`tail`, echo and webhook bodies, automation trigger data): the publication carries
    /// `webhook_configs` whole, its signing secrets and its custom headers (an `Authorization`
    /// among them) included, which are `<redacted>`; its endpoint's URL is printed as logs
    /// print it (`redactedURL`), since a `user:password@` part or a signed query is a
    /// credential too.
    private struct Redactions {
        var secrets: Set<String> = []
        var urls: Set<String> = []

        init(of change: Change) {
            guard change.table == "webhook_configs" && change.schema == "public" else { return }
            secrets = ["secret", "headers"]
            urls = ["url"]
        }
    }

    /// Unchanged TOAST values are left out: they are listed separately for `new`, and
    /// pgoutput never sends one in an old row.
    private static func writeRow(_ row: Row?, redacting redactions: Redactions, _ writer: inout JSONWriter) throws(ValueFailure) {
        guard let row else {
            writer.null()
            return
        }
        writer.beginObject()
        for (column, value) in zip(row.columns, row.values) {
            switch value {
            case .unchangedToast:
                continue
            case .null:
                writer.key(column.name)
                writer.null()
            case .text where redactions.secrets.contains(column.name), .binary where redactions.secrets.contains(column.name):
                writer.key(column.name)
                writer.string("<redacted>")
            case .text(let text) where redactions.urls.contains(column.name),
                 .binary(let text) where redactions.urls.contains(column.name):
                writer.key(column.name)
                writer.string(redactedURL(String(decoding: text, as: UTF8.self)))
            case .text(let text):
                writer.key(column.name)
                do { try writeText(text, typeOID: column.typeOID, &writer) } catch { throw ValueFailure(column: column, reason: error.reason) }
            case .binary(let bytes):
                writer.key(column.name)
                do { try writeBinary(bytes, typeOID: column.typeOID, &writer) } catch { throw ValueFailure(column: column, reason: error.reason) }
            }
        }
        writer.endObject()
    }

    // MARK: - Text format

    private static func writeText(_ text: ArraySlice<UInt8>, typeOID: UInt32, _ writer: inout JSONWriter) throws(BadValue) {
        switch typeOID {
        case TypeOID.bool:
            guard text.count == 1, text.first == UInt8(ascii: "t") || text.first == UInt8(ascii: "f") else {
                throw .invalidTextValue("expected t or f")
            }
            writer.bool(text.first == UInt8(ascii: "t"))
        case TypeOID.int2, TypeOID.int4, TypeOID.int8, TypeOID.float4, TypeOID.float8:
            if isJSONNumber(text) {
                writer.number(text: text)
            } else if text.elementsEqual("NaN".utf8) || text.elementsEqual("Infinity".utf8) || text.elementsEqual("-Infinity".utf8) {
                writer.string(utf8: text)
            } else {
                throw .invalidTextValue("\"\(String(decoding: text, as: UTF8.self))\" is not a number")
            }
        case TypeOID.json, TypeOID.jsonb:
            do { try writer.compactJSON(text) } catch { throw .invalidJSON(error) }
        default:
            writer.string(utf8: text)
        }
    }

    private static func isJSONNumber(_ text: ArraySlice<UInt8>) -> Bool {
        guard let first = text.first, first == UInt8(ascii: "-") || first &- UInt8(ascii: "0") < 10 else { return false }
        return text.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer)
            return (try? scanner.scanNumber()) == 0..<buffer.count
        }
    }

    // MARK: - Binary (send) format

    private static func writeBinary(_ bytes: ArraySlice<UInt8>, typeOID: UInt32, _ writer: inout JSONWriter) throws(BadValue) {
        switch typeOID {
        case TypeOID.bool:
            guard bytes.count == 1, bytes.first! <= 1 else { throw .invalidBinaryValue("expected one byte 0 or 1") }
            writer.bool(bytes.first! == 1)
        case TypeOID.int2:
            writer.number(Int64(Int16(truncatingIfNeeded: try bigEndian(bytes, size: 2))))
        case TypeOID.int4:
            writer.number(Int64(Int32(truncatingIfNeeded: try bigEndian(bytes, size: 4))))
        case TypeOID.int8:
            writer.number(Int64(bitPattern: try bigEndian(bytes, size: 8)))
        case TypeOID.float4:
            writeFloat(Float(bitPattern: UInt32(try bigEndian(bytes, size: 4))), &writer)
        case TypeOID.float8:
            writeFloat(Double(bitPattern: try bigEndian(bytes, size: 8)), &writer)
        case let oid where TypeOID.isText(oid):
            writer.string(utf8: bytes)
        case TypeOID.bytea:
            var text: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
            text.reserveCapacity(2 + bytes.count * 2)
            for byte in bytes { appendHex(byte, to: &text) }
            writer.string(utf8: text)
        case TypeOID.uuid:
            guard bytes.count == 16 else { throw .invalidBinaryValue("expected 16 bytes, got \(bytes.count)") }
            var text: [UInt8] = []
            text.reserveCapacity(36)
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
                appendHex(byte, to: &text)
            }
            writer.string(utf8: text)
        case TypeOID.json:
            do { try writer.compactJSON(bytes) } catch { throw .invalidJSON(error) }
        case TypeOID.jsonb:
            guard bytes.first == 1 else { throw .invalidBinaryValue("unsupported jsonb version \(bytes.first.map(String.init) ?? "(none)")") }
            do { try writer.compactJSON(bytes.dropFirst()) } catch { throw .invalidJSON(error) }
        case TypeOID.date:
            writer.postgresDate(daysSince2000: Int32(truncatingIfNeeded: try bigEndian(bytes, size: 4)))
        case TypeOID.timestamp:
            writer.postgresTimestamp(microsecondsSince2000: Int64(bitPattern: try bigEndian(bytes, size: 8)), withZone: false)
        case TypeOID.timestamptz:
            writer.postgresTimestamp(microsecondsSince2000: Int64(bitPattern: try bigEndian(bytes, size: 8)), withZone: true)
        default:
            throw .unsupportedBinaryType
        }
    }

    private static func bigEndian(_ bytes: ArraySlice<UInt8>, size: Int) throws(BadValue) -> UInt64 {
        guard bytes.count == size else { throw .invalidBinaryValue("expected \(size) bytes, got \(bytes.count)") }
        return bytes.reduce(0) { $0 << 8 | UInt64($1) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private static func appendHex(_ byte: UInt8, to text: inout [UInt8]) {
        text.append(hexDigits[Int(byte >> 4)])
        text.append(hexDigits[Int(byte & 0x0F)])
    }

    /// Postgres' `float4out`/`float8out` with `extra_float_digits > 0`: the shortest text that
    /// reads back exactly (which Swift's `description` also computes), laid out as Postgres'
    /// Ryu port does: fixed notation for decimal exponents in [-4, 6) (float4) or [-4, 15)
    /// (float8), otherwise `d.ddde±XX`; no trailing `.0`.
    private static func writeFloat<Value: BinaryFloatingPoint & CustomStringConvertible>(_ value: Value, _ writer: inout JSONWriter) {
        if value.isNaN {
            writer.string("NaN")
            return
        }
        if value.isInfinite {
            writer.string(value < 0 ? "-Infinity" : "Infinity")
            return
        }
        var digits: [UInt8] = []
        var pointIndex: Int?
        var exponent = 0
        var exponentSign = 1
        var inExponent = false
        for byte in value.magnitude.description.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if inExponent { exponent = exponent * 10 + Int(byte - UInt8(ascii: "0")) } else { digits.append(byte) }
            case UInt8(ascii: "."): pointIndex = digits.count
            case UInt8(ascii: "e"), UInt8(ascii: "E"): inExponent = true
            case UInt8(ascii: "-"): exponentSign = -1
            default: break
            }
        }
        var decimalExponent = (pointIndex ?? digits.count) - 1 + exponentSign * exponent
        while digits.count > 1, digits.first == UInt8(ascii: "0") {
            digits.removeFirst()
            decimalExponent -= 1
        }
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }
        if digits == [UInt8(ascii: "0")] { decimalExponent = 0 }

        var text: [UInt8] = value.sign == .minus ? [UInt8(ascii: "-")] : []
        let fixedLimit = Value.significandBitCount > 23 ? 15 : 6
        if decimalExponent >= -4, decimalExponent < fixedLimit {
            if decimalExponent >= 0 {
                for index in 0...decimalExponent { text.append(index < digits.count ? digits[index] : UInt8(ascii: "0")) }
                if digits.count > decimalExponent + 1 {
                    text.append(UInt8(ascii: "."))
                    text.append(contentsOf: digits[(decimalExponent + 1)...])
                }
            } else {
                text.append(contentsOf: [UInt8(ascii: "0"), UInt8(ascii: ".")])
                text.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: -decimalExponent - 1))
                text.append(contentsOf: digits)
            }
        } else {
            text.append(digits[0])
            if digits.count > 1 {
                text.append(UInt8(ascii: "."))
                text.append(contentsOf: digits[1...])
            }
            text.append(UInt8(ascii: "e"))
            text.append(decimalExponent < 0 ? UInt8(ascii: "-") : UInt8(ascii: "+"))
            if decimalExponent.magnitude < 10 { text.append(UInt8(ascii: "0")) }
            text.append(contentsOf: String(decimalExponent.magnitude).utf8)
        }
        writer.number(text: text)
    }
}
