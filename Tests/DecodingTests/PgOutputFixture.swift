import Core
import Decoding

/// A column value as a fixture writes it.
enum PgOutputCell {
    case null, toast, text(String), binary([UInt8])
}

/// Builds pgoutput messages byte by byte, as `proto.c` writes them, so tests do not
/// depend on a running server. Each call returns a longer copy, so calls chain.
struct PgOutputFixture {
    let bytes: [UInt8]

    init(_ type: Unicode.Scalar) { bytes = [UInt8(ascii: type)] }
    private init(bytes: [UInt8]) { self.bytes = bytes }

    func raw(_ value: [UInt8]) -> Self { Self(bytes: bytes + value) }
    func byte(_ value: UInt8) -> Self { raw([value]) }
    func char(_ value: Unicode.Scalar) -> Self { byte(UInt8(ascii: value)) }
    func int16(_ value: UInt16) -> Self { bigEndian(value) }
    func int32(_ value: UInt32) -> Self { bigEndian(value) }
    func int64(_ value: UInt64) -> Self { bigEndian(value) }
    func string(_ value: String) -> Self { raw(Array(value.utf8) + [0]) }
    func xid(_ value: UInt32?) -> Self { value.map(int32) ?? self }

    func tuple(_ cells: [PgOutputCell]) -> Self {
        cells.reduce(int16(UInt16(cells.count))) { fixture, cell in
            switch cell {
            case .null: fixture.char("n")
            case .toast: fixture.char("u")
            case .text(let text): fixture.char("t").int32(UInt32(text.utf8.count)).raw(Array(text.utf8))
            case .binary(let data): fixture.char("b").int32(UInt32(data.count)).raw(data)
            }
        }
    }

    private func bigEndian<T: FixedWidthInteger>(_ value: T) -> Self {
        raw(withUnsafeBytes(of: value.bigEndian, Array.init))
    }
}

/// Whole messages, one function per pgoutput message type.
enum PgOutputWire {
    struct ColumnSpec {
        var name: String
        var type: UInt32 = 25
        var modifier: Int32 = -1
        var key = false
    }

    static func begin(finalLSN: UInt64, time: Int64, xid: UInt32) -> [UInt8] {
        return PgOutputFixture("B").int64(finalLSN).int64(UInt64(bitPattern: time)).int32(xid).bytes
    }

    static func commit(commitLSN: UInt64, endLSN: UInt64, time: Int64) -> [UInt8] {
        return PgOutputFixture("C").byte(0).int64(commitLSN).int64(endLSN).int64(UInt64(bitPattern: time)).bytes
    }

    static func origin(lsn: UInt64, name: String) -> [UInt8] {
        return PgOutputFixture("O").int64(lsn).string(name).bytes
    }

    static func relation(oid: UInt32, namespace: String = "public", name: String, identity: Unicode.Scalar = "d",
                         columns: [ColumnSpec], xid: UInt32? = nil) -> [UInt8] {
        let header = PgOutputFixture("R").xid(xid).int32(oid).string(namespace).string(name).char(identity)
            .int16(UInt16(columns.count))
        return columns.reduce(header) { f, column in
            f.byte(column.key ? 1 : 0).string(column.name).int32(column.type).int32(UInt32(bitPattern: column.modifier))
        }.bytes
    }

    static func type(oid: UInt32, namespace: String, name: String, xid: UInt32? = nil) -> [UInt8] {
        return PgOutputFixture("Y").xid(xid).int32(oid).string(namespace).string(name).bytes
    }

    static func insert(oid: UInt32, _ new: [PgOutputCell], xid: UInt32? = nil) -> [UInt8] {
        return PgOutputFixture("I").xid(xid).int32(oid).char("N").tuple(new).bytes
    }

    static func update(oid: UInt32, old: (Unicode.Scalar, [PgOutputCell])? = nil, _ new: [PgOutputCell],
                       xid: UInt32? = nil) -> [UInt8] {
        var f = PgOutputFixture("U").xid(xid).int32(oid)
        if let old { f = f.char(old.0).tuple(old.1) }
        return f.char("N").tuple(new).bytes
    }

    static func delete(oid: UInt32, old: (Unicode.Scalar, [PgOutputCell]), xid: UInt32? = nil) -> [UInt8] {
        return PgOutputFixture("D").xid(xid).int32(oid).char(old.0).tuple(old.1).bytes
    }

    static func truncate(oids: [UInt32], options: UInt8, xid: UInt32? = nil) -> [UInt8] {
        oids.reduce(PgOutputFixture("T").xid(xid).int32(UInt32(oids.count)).byte(options)) { $0.int32($1) }.bytes
    }

    static func message(transactional: Bool, lsn: UInt64, prefix: String, content: [UInt8],
                        xid: UInt32? = nil) -> [UInt8] {
        return PgOutputFixture("M").xid(xid).byte(transactional ? 1 : 0).int64(lsn).string(prefix).int32(UInt32(content.count))
            .raw(content).bytes
    }

    static func streamStart(xid: UInt32, first: Bool) -> [UInt8] {
        return PgOutputFixture("S").int32(xid).byte(first ? 1 : 0).bytes
    }

    static func streamStop() -> [UInt8] { PgOutputFixture("E").bytes }

    static func streamCommit(xid: UInt32, commitLSN: UInt64, endLSN: UInt64, time: Int64) -> [UInt8] {
        return PgOutputFixture("c").int32(xid).byte(0).int64(commitLSN).int64(endLSN).int64(UInt64(bitPattern: time)).bytes
    }

    static func streamAbort(xid: UInt32, subxid: UInt32) -> [UInt8] {
        return PgOutputFixture("A").int32(xid).int32(subxid).bytes
    }

    static func beginPrepare(prepareLSN: UInt64, endLSN: UInt64, time: Int64, xid: UInt32, gid: String) -> [UInt8] {
        return PgOutputFixture("b").int64(prepareLSN).int64(endLSN).int64(UInt64(bitPattern: time)).int32(xid).string(gid).bytes
    }

    static func prepare(_ type: Unicode.Scalar = "P", prepareLSN: UInt64, endLSN: UInt64, time: Int64, xid: UInt32,
                        gid: String) -> [UInt8] {
        return PgOutputFixture(type).byte(0).int64(prepareLSN).int64(endLSN).int64(UInt64(bitPattern: time)).int32(xid).string(gid).bytes
    }

    static func streamPrepare(prepareLSN: UInt64, endLSN: UInt64, time: Int64, xid: UInt32, gid: String) -> [UInt8] {
        prepare("p", prepareLSN: prepareLSN, endLSN: endLSN, time: time, xid: xid, gid: gid)
    }

    static func commitPrepared(commitLSN: UInt64, endLSN: UInt64, time: Int64, xid: UInt32, gid: String) -> [UInt8] {
        return PgOutputFixture("K").byte(0).int64(commitLSN).int64(endLSN).int64(UInt64(bitPattern: time)).int32(xid).string(gid).bytes
    }

    static func rollbackPrepared(prepareEndLSN: UInt64, rollbackEndLSN: UInt64, prepareTime: Int64,
                                 rollbackTime: Int64, xid: UInt32, gid: String) -> [UInt8] {
        return PgOutputFixture("r").byte(0).int64(prepareEndLSN).int64(rollbackEndLSN).int64(UInt64(bitPattern: prepareTime))
            .int64(UInt64(bitPattern: rollbackTime)).int32(xid).string(gid).bytes
    }
}

/// The text value `string` as the decoder returns it (slices compare by content).
func pgText(_ string: String) -> TupleValue { .text(ArraySlice(string.utf8)) }

extension TransactionChanges {
    /// Every change, for assertions on small in-memory transactions.
    var all: [Change] {
        get throws { try loaded() }
    }
}
