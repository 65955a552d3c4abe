import Core

/// Decodes the payload of one XLogData message of a pgoutput stream.
///
/// It is stateful because the wire format is: inside a stream block (Stream Start …
/// Stream Stop) the data messages carry a leading xid that is absent elsewhere, and
/// nothing in the message itself says which layout it has. Use one decoder per
/// replication connection and feed it every message in order.
public struct PgOutputDecoder: Sendable {
    /// What PostgreSQL 15 speaks; version 4 (PG16) changes Stream Abort.
    public static let supportedProtocolVersions: ClosedRange<Int> = 1...3

    public let protoVersion: Int
    /// The top-level xid of the open stream block, if any.
    public private(set) var streamXID: UInt32?

    /// `protoVersion` must be the `proto_version` passed to START_REPLICATION; a value
    /// outside `supportedProtocolVersions` is a programming error.
    public init(protoVersion: Int) {
        precondition(Self.supportedProtocolVersions.contains(protoVersion),
                     "pgoutput protocol version \(protoVersion) is not supported")
        self.protoVersion = protoVersion
    }

    public mutating func decode(_ bytes: [UInt8]) throws(PgOutputDecodingError) -> PgOutputMessage {
        guard let typeByte = bytes.first else {
            throw PgOutputDecodingError(messageType: nil, offset: 0, reason: .truncated(needed: 1, remaining: 0))
        }
        guard let type = PgOutputMessageType(rawValue: typeByte) else {
            throw PgOutputDecodingError(messageType: typeByte, offset: 0, reason: .unknownMessageType)
        }
        if type.minimumProtocolVersion > protoVersion {
            throw PgOutputDecodingError(messageType: typeByte, offset: 0, reason: .requiresProtocolVersion(
                needed: type.minimumProtocolVersion, negotiated: protoVersion))
        }
        let streamXID = streamXID
        let message = try bytes.withUnsafeBufferPointer { (buffer) throws(PgOutputDecodingError) -> PgOutputMessage in
            var reader = PgOutputReader(UnsafeRawBufferPointer(buffer), messageType: typeByte, offset: 1)
            let xid = streamXID != nil && type.carriesStreamXID ? try reader.uint32() : nil
            let message = try Self.body(type, xid: xid, streamXID: streamXID, reader: &reader, bytes: bytes)
            if reader.remaining > 0 { throw reader.failure(.trailingBytes(reader.remaining), at: reader.offset) }
            return message
        }
        switch message {
        case .streamStart(let xid, _): self.streamXID = xid
        case .streamStop: self.streamXID = nil
        default: break
        }
        return message
    }

    private static func body(_ type: PgOutputMessageType, xid: UInt32?, streamXID: UInt32?,
                             reader: inout PgOutputReader, bytes: [UInt8]) throws(PgOutputDecodingError) -> PgOutputMessage {
        switch type {
        case .begin:
            return .begin(finalLSN: try reader.lsn(), commitTime: try reader.timestamp(), xid: try reader.uint32())
        case .commit:
            _ = try reader.uint8() // flags, unused
            return .commit(commitLSN: try reader.lsn(), endLSN: try reader.lsn(), commitTime: try reader.timestamp())
        case .origin:
            return .origin(commitLSN: try reader.lsn(), name: try reader.string())
        case .relation:
            return .relation(try relation(&reader), xid: xid)
        case .type:
            return .type(oid: try reader.uint32(), namespace: namespace(try reader.string()),
                         name: try reader.string(), xid: xid)
        case .insert:
            let oid = try reader.uint32()
            _ = try reader.marker(newMarker)
            return .insert(relationOID: oid, new: try reader.tuple(bytes), xid: xid)
        case .update:
            let oid = try reader.uint32()
            var old: PgOutputOldTuple?
            switch try reader.marker(updateMarkers) {
            case keyMarker:
                old = .key(try reader.tuple(bytes))
                _ = try reader.marker(newMarker)
            case fullMarker:
                old = .full(try reader.tuple(bytes))
                _ = try reader.marker(newMarker)
            default:
                break
            }
            return .update(relationOID: oid, old: old, new: try reader.tuple(bytes), xid: xid)
        case .delete:
            let oid = try reader.uint32()
            let marker = try reader.marker(oldMarkers)
            let values = try reader.tuple(bytes)
            return .delete(relationOID: oid, old: marker == keyMarker ? .key(values) : .full(values), xid: xid)
        case .truncate:
            let count = try reader.length()
            let options = PgOutputTruncateOptions(rawValue: try reader.uint8())
            var oids: [UInt32] = []
            oids.reserveCapacity(min(count, reader.remaining / 4))
            for _ in 0..<count { oids.append(try reader.uint32()) }
            return .truncate(relationOIDs: oids, options: options, xid: xid)
        case .message:
            let transactional = try reader.uint8() & 1 != 0
            let lsn = try reader.lsn()
            let prefix = try reader.string()
            let length = try reader.length()
            let start = try reader.skip(length)
            let message = PgOutputLogicalMessage(transactional: transactional, lsn: lsn, prefix: prefix,
                                                 content: bytes[start..<start + length])
            return .message(message, xid: xid)
        case .streamStart:
            let start = reader.offset
            let xid = try reader.uint32()
            if let streamXID { throw reader.failure(.streamAlreadyStarted(openXID: streamXID), at: start) }
            return .streamStart(xid: xid, firstSegment: try reader.uint8() == 1)
        case .streamStop:
            if streamXID == nil { throw reader.failure(.noStreamStarted, at: 0) }
            return .streamStop
        case .streamCommit:
            let xid = try reader.uint32()
            _ = try reader.uint8() // flags, unused
            return .streamCommit(xid: xid, commitLSN: try reader.lsn(), endLSN: try reader.lsn(),
                                 commitTime: try reader.timestamp())
        case .streamAbort:
            return .streamAbort(xid: try reader.uint32(), subxid: try reader.uint32())
        case .beginPrepare:
            return .beginPrepare(try prepare(&reader))
        case .prepare:
            _ = try reader.uint8() // flags, unused
            return .prepare(try prepare(&reader))
        case .commitPrepared:
            _ = try reader.uint8() // flags, unused
            return .commitPrepared(commitLSN: try reader.lsn(), endLSN: try reader.lsn(), commitTime: try reader.timestamp(),
                                   xid: try reader.uint32(), gid: try reader.string())
        case .rollbackPrepared:
            _ = try reader.uint8() // flags, unused
            return .rollbackPrepared(prepareEndLSN: try reader.lsn(), rollbackEndLSN: try reader.lsn(),
                                     prepareTime: try reader.timestamp(), rollbackTime: try reader.timestamp(),
                                     xid: try reader.uint32(), gid: try reader.string())
        case .streamPrepare:
            _ = try reader.uint8() // flags, unused
            return .streamPrepare(try prepare(&reader))
        }
    }

    private static let newMarker: [UInt8] = [0x4E] // N
    private static let keyMarker: UInt8 = 0x4B // K
    private static let fullMarker: UInt8 = 0x4F // O
    private static let updateMarkers: [UInt8] = [keyMarker, fullMarker, 0x4E]
    private static let oldMarkers: [UInt8] = [keyMarker, fullMarker]

    private static func relation(_ reader: inout PgOutputReader) throws(PgOutputDecodingError) -> PgOutputRelation {
        let oid = try reader.uint32()
        let namespace = namespace(try reader.string())
        let name = try reader.string()
        let identityOffset = reader.offset
        let identityByte = try reader.uint8()
        guard let identity = PgOutputRelation.ReplicaIdentity(rawValue: identityByte) else {
            throw reader.failure(.unknownReplicaIdentity(identityByte), at: identityOffset)
        }
        let count = Int(try reader.uint16())
        var columns: [Column] = []
        // A column takes at least 10 bytes (flags, NUL, type, modifier).
        columns.reserveCapacity(min(count, reader.remaining / 10))
        for _ in 0..<count {
            let flags = try reader.uint8()
            columns.append(Column(name: try reader.string(), typeOID: try reader.uint32(),
                                  typeModifier: try reader.int32(), isKey: flags & 1 != 0))
        }
        return PgOutputRelation(oid: oid, namespace: namespace, name: name, replicaIdentity: identity, columns: columns)
    }

    private static func prepare(_ reader: inout PgOutputReader) throws(PgOutputDecodingError) -> PgOutputPrepare {
        PgOutputPrepare(prepareLSN: try reader.lsn(), endLSN: try reader.lsn(), prepareTime: try reader.timestamp(),
                        xid: try reader.uint32(), gid: try reader.string())
    }

    private static func namespace(_ sent: String) -> String {
        sent.isEmpty ? "pg_catalog" : sent
    }
}
