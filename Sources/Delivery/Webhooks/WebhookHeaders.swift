import Core
/// A webhook config's own headers (`webhook_configs.headers`) next to the ones ChangeRelay sets.
public enum WebhookHeaders {
    /// Headers a config cannot set, compared case-insensitively: the Standard Webhooks headers
    /// and `Content-Type` (what is signed and how it is sent), `Idempotency-Key` (the receiver's
    /// de-duplication), and the framing headers `Content-Length`, `Transfer-Encoding` and `Host`,
    /// which would make the request disagree with its body or its URL. `Authorization` is not
    /// reserved: a config may carry its endpoint's credentials.
    public static let reservedNames = [
        "webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type", "Idempotency-Key",
        "Content-Length", "Transfer-Encoding", "Host",
    ]

    /// The headers of one try: the config's `custom` headers that are valid HTTP fields and not
    /// reserved, in their order, then `own` (`WebhookSigner.headers`). Each header left out is in
    /// `dropped` with the reason, for the caller to log; a value is never kept there, as it may
    /// be a credential. Surrounding spaces and tabs of a value are trimmed, as a receiver would.
    public static func merge(custom: [(String, String)], into own: [(String, String)]) -> Merged {
        var merged = Merged(headers: [], dropped: [])
        for (name, value) in custom {
            let reason: DroppedHeader.Reason? =
                if name.isEmpty || !name.utf8.allSatisfy(isTokenByte) { .invalidName }
                else if reservedNames.contains(where: { asciiCaseInsensitiveEquals($0, name) }) { .reserved }
                else if value.utf8.contains(where: isForbiddenInFieldValue) { .invalidValue }
                else { nil }
            if let reason {
                merged.dropped.append(DroppedHeader(name: name, reason: reason))
            } else {
                merged.headers.append((name, trimmingWhitespace(value)))
            }
        }
        merged.headers += own
        return merged
    }

    public struct Merged: Sendable {
        public var headers: [(String, String)]
        public var dropped: [DroppedHeader]
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Control characters other than horizontal tab (CR and LF would end the header early and
    /// start another); bytes from 0x80 (UTF-8 text) are allowed as obs-text.
    private static func isForbiddenInFieldValue(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != 0x09) || byte == 0x7F
    }

    private static func trimmingWhitespace(_ value: String) -> String {
        let bytes = Array(value.utf8)
        let isWhitespace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }), let last = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }
}

/// A config header that is not sent, and why. It holds the name only: a value may be a secret.
public struct DroppedHeader: Sendable, Equatable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// ChangeRelay sets this header itself (`WebhookHeaders.reservedNames`).
        case reserved
        /// The name is empty or not an HTTP token (spaces, colons, CR/LF, non-ASCII…).
        case invalidName
        /// The value holds a control character such as CR, LF or NUL (header injection).
        case invalidValue
    }

    public var name: String
    public var reason: Reason

    public init(name: String, reason: Reason) {
        self.name = name
        self.reason = reason
    }

    /// One line, safe to log: control characters in the name are escaped, a long name cut.
    public var description: String {
        let shown = quotedExcerpt(name, limit: 64)
        return switch reason {
        case .reserved: "header \(shown) not sent: ChangeRelay sets it itself"
        case .invalidName: "header \(shown) not sent: the name is not an HTTP token"
        case .invalidValue: "header \(shown) not sent: its value contains a control character (CR, LF, NUL…)"
        }
    }
}
