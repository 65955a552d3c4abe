/// A pgoutput message that could not be decoded. It names the message type and the byte
/// offset where decoding stopped, so a log line is enough to find the bad field in a dump.
public struct PgOutputDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        case truncated(needed: Int, remaining: Int)
        case unknownMessageType
        case requiresProtocolVersion(needed: Int, negotiated: Int)
        /// A tuple column kind other than 'n', 'u', 't' or 'b'.
        case unknownTupleKind(UInt8)
        /// The byte before a tuple is not one of the markers the message allows there.
        case unexpectedTupleMarker(found: UInt8, expected: [UInt8])
        case unknownReplicaIdentity(UInt8)
        case unterminatedString
        case negativeLength(Int32)
        case trailingBytes(Int)
        /// A Stream Start inside a stream block: the previous block's Stream Stop is missing.
        case streamAlreadyStarted(openXID: UInt32)
        /// A Stream Stop outside a stream block.
        case noStreamStarted
    }

    /// The first byte of the message; nil for an empty message.
    public var messageType: UInt8?
    public var offset: Int
    public var reason: Reason

    public init(messageType: UInt8?, offset: Int, reason: Reason) {
        self.messageType = messageType
        self.offset = offset
        self.reason = reason
    }

    public var description: String {
        let message: String
        if let messageType {
            let name = PgOutputMessageType(rawValue: messageType)?.description ?? "unknown message"
            message = "\(name) (\(Self.show(messageType)))"
        } else {
            message = "empty message"
        }
        return "pgoutput \(message) at offset \(offset): \(reasonText)"
    }

    private var reasonText: String {
        switch reason {
        case let .truncated(needed, remaining):
            "truncated: needed \(needed) byte\(needed == 1 ? "" : "s"), \(remaining) left"
        case .unknownMessageType:
            "unknown message type"
        case let .requiresProtocolVersion(needed, negotiated):
            "needs protocol version \(needed), the stream was started with version \(negotiated)"
        case let .unknownTupleKind(kind):
            "unknown tuple column kind \(Self.show(kind)) (expected 'n', 'u', 't' or 'b')"
        case let .unexpectedTupleMarker(found, expected):
            "unexpected tuple marker \(Self.show(found)) (expected \(expected.map(Self.show).joined(separator: " or ")))"
        case let .unknownReplicaIdentity(identity):
            "unknown replica identity \(Self.show(identity))"
        case .unterminatedString:
            "bad string: no NUL terminator"
        case let .negativeLength(length):
            "negative length \(length)"
        case let .trailingBytes(count):
            "\(count) trailing byte\(count == 1 ? "" : "s") after the message"
        case let .streamAlreadyStarted(openXID):
            "Stream Start inside the open stream block of xid \(openXID)"
        case .noStreamStarted:
            "Stream Stop without a Stream Start"
        }
    }

    /// Printable ASCII as `'I'`, anything else as hex, so a garbled byte stays readable.
    private static func show(_ byte: UInt8) -> String {
        if (0x21...0x7E).contains(byte) { return "'" + String(UnicodeScalar(byte)) + "'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}
