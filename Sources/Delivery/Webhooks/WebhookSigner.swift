import Crypto
import Foundation

/// Standard Webhooks signing (https://www.standardwebhooks.com) for one webhook config's secret.
///
/// A secret `whsec_<base64>` is decoded and its bytes are the HMAC key; any other secret is used
/// as its UTF-8 bytes (so a secret someone typed works as typed); an empty or absent secret signs
/// nothing, and a try then carries no `webhook-signature` header. During a key rotation the
/// secret holds several `whsec_` keys separated by spaces (`whsec_new whsec_old`): each try is
/// signed with each, `v1,<new> v1,<old>`, and a receiver holding either key verifies it.
///
/// Receivers built on the reference libraries must be given the key accordingly: the Python
/// `standardwebhooks` package (1.1.0) base64-decodes *every* string secret, with or without the
/// prefix, after dropping characters outside the alphabet — for a secret without `whsec_` pass it
/// the UTF-8 bytes (`Webhook(secret.encode())`), not the string. It also accepts a `whsec_`
/// secret with stray characters, which this type refuses rather than sign with another key.
///
/// The secret never leaves this value: `description`, `debugDescription` and the mirror show
/// only whether there is one, and errors never quote it.
public struct WebhookSigner: Sendable {
    /// What the secret was, for the redacted descriptions.
    private enum Form: Sendable {
        case none
        /// One key, or a rotation of this many.
        case base64(keys: Int)
        case text
    }

    private let form: Form
    /// One MAC per key, in the order given, keyed already: each signature copies one and
    /// feeds it the message, instead of deriving the key's pads again for every try.
    private let keyed: [HMAC<SHA256>]

    public static let secretPrefix = "whsec_"

    /// - Throws: `WebhookSecretError` for a `whsec_` secret whose rest is not base64.
    public init(secret: String?) throws(WebhookSecretError) {
        guard let secret, !secret.isEmpty else {
            form = .none
            keyed = []
            return
        }
        guard secret.hasPrefix(Self.secretPrefix) else {
            form = .text
            keyed = [HMAC(key: SymmetricKey(data: Array(secret.utf8)))]
            return
        }
        let parts = secret.split(separator: " ")
        let keys = parts.count > 1 && parts.allSatisfy({ $0.hasPrefix(Self.secretPrefix) }) ? parts : [Substring(secret)]
        var decoded: [SymmetricKey] = []
        for (number, key) in keys.enumerated() {
            let subject = keys.count == 1 ? "the webhook secret"
                : "the webhook secret's key \(number + 1) of \(keys.count) (a rotation's keys are space-separated)"
            decoded.append(SymmetricKey(data: try Self.decodeBase64(key.utf8.dropFirst(Self.secretPrefix.utf8.count),
                                                                    subject: subject)))
        }
        form = .base64(keys: decoded.count)
        keyed = decoded.map { HMAC(key: $0) }
    }

    /// Whether tries carry a `webhook-signature` header.
    public var signs: Bool {
        !keyed.isEmpty
    }

    /// `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>` over the exact body bytes,
    /// one for each key, separated by spaces; nil without a secret. `timestamp` is the try's
    /// Unix time in seconds.
    public func signature(id: String, timestamp: Int64, body: [UInt8]) -> String? {
        guard !keyed.isEmpty else { return nil }
        var prefix = id
        prefix.append(".")
        prefix.append(String(timestamp))
        prefix.append(".")
        var signatures = ""
        for (number, prototype) in keyed.enumerated() {
            var mac = prototype
            var signed = prefix
            signed.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
            mac.update(data: body)
            if number > 0 { signatures.append(" ") }
            signatures.append("v1,")
            signatures.append(Data(mac.finalize()).base64EncodedString())
        }
        return signatures
    }

    /// The headers ChangeRelay sets on every try: `webhook-id` (the same on every try),
    /// `webhook-timestamp`, `webhook-signature` when there is a secret, and
    /// `Content-Type: application/json`. `Idempotency-Key` (the same value as `webhook-id`) is
    /// added by the dispatcher to every delivery, so it is not repeated here.
    /// `WebhookHeaders.merge` adds a config's own headers to these.
    public func headers(id: String, timestamp: Int64, body: [UInt8]) -> [(String, String)] {
        var headers = [("webhook-id", id), ("webhook-timestamp", String(timestamp))]
        if let signature = signature(id: id, timestamp: timestamp, body: body) {
            headers.append(("webhook-signature", signature))
        }
        headers.append(("Content-Type", "application/json"))
        return headers
    }

    /// Standard base64, padding optional (as the reference libraries accept it). The error says
    /// what is wrong and where, never what the secret holds.
    /// `subject` names the key in errors: the secret, or one key of a rotation.
    private static func decodeBase64(_ text: Substring.UTF8View, subject: String) throws(WebhookSecretError) -> [UInt8] {
        func fail(_ problem: String) -> WebhookSecretError {
            WebhookSecretError(reason: "\(subject) starts with \(secretPrefix) but the rest is not base64: \(problem)")
        }
        guard !text.isEmpty else { throw WebhookSecretError(reason: "\(subject) is \(secretPrefix) with nothing after it") }
        let padding = text.reversed().prefix { $0 == UInt8(ascii: "=") }.count
        let digits = text.dropLast(padding)
        guard !digits.isEmpty else { throw fail("it is only padding") }
        if let bad = digits.firstIndex(where: { !isBase64Digit($0) }) {
            let position = text.distance(from: text.startIndex, to: bad) + secretPrefix.utf8.count + 1
            throw fail("byte \(position) is not in the standard base64 alphabet (A-Z a-z 0-9 + /)")
        }
        guard digits.count % 4 != 1 else { throw fail("its length is not that of any base64 text") }
        let needed = (4 - digits.count % 4) % 4
        guard padding == 0 || padding == needed else { throw fail("it ends with \(padding) '=' where \(needed) belong") }
        guard let data = Data(base64Encoded: String(decoding: digits, as: UTF8.self) + String(repeating: "=", count: needed)) else {
            throw fail("it does not decode")
        }
        return Array(data)
    }

    private static func isBase64Digit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "+"), UInt8(ascii: "/"):
            true
        default:
            false
        }
    }
}

extension WebhookSigner: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private var redacted: String {
        switch form {
        case .none: "none"
        case .base64(let keys) where keys > 1: "\(keys) × \(Self.secretPrefix)<redacted>"
        case .base64: "\(Self.secretPrefix)<redacted>"
        case .text: "<redacted>"
        }
    }

    public var description: String { "WebhookSigner(secret: \(redacted))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["secret": redacted]) }
}

/// A webhook secret that cannot be used; `reason` never contains the secret.
public struct WebhookSecretError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
