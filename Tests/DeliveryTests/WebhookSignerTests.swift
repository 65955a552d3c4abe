import Delivery
import Foundation
import Testing

/// Known answers computed independently with Python's `hmac` and `base64`:
/// `"v1," + b64encode(hmac.new(key, f"{id}.{ts}.".encode() + body, sha256).digest())`.
/// The first is the example of the Standard Webhooks specification.
private let knownAnswers: [(secret: String, id: String, timestamp: Int64, body: [UInt8], signature: String)] = [
    ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330,
     Array(#"{"test": 2432232314}"#.utf8), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    // Not whsec_: the UTF-8 bytes of the secret are the key.
    ("shared secret ünïcode", "0/16B6C58:7f3c", 1_767_225_600,
     Array(#"{"type":"order.created","data":{"name":"Zoë"}}"#.utf8), "v1,U1wKWi1UaJjS8ugn/LTNH8rGvqqjGc/nB8RQREwh6S4="),
    // "whsec" without the underscore is text too; the body is signed byte for byte, NUL and 0xFF included.
    ("whsec", "id", 0, [0x7B, 0xFF, 0x00, 0x7D], "v1,VLjRuuvV+DGdfHGz0os42/qqCYf7Wpg2vd2TX7to6GE="),
    // base64 with and without its padding: the same key (bytes 1…5).
    ("whsec_AQIDBAU=", "id", 1, Array("{}".utf8), "v1,fe/01rr7lOkRqeEBqSc53nbU1mfuG+i7YW6/IWanNEE="),
    ("whsec_AQIDBAU", "id", 1, Array("{}".utf8), "v1,fe/01rr7lOkRqeEBqSc53nbU1mfuG+i7YW6/IWanNEE="),
    ("x", "", 1_700_000_000, [], "v1,UQbgE84c3l2nzJGm2Jkn8Cl90kb22caOr7HcAWDoWsI="),
]

@Suite struct WebhookSignerTests {
    @Test func knownAnswerVectors() throws {
        for vector in knownAnswers {
            let signer = try WebhookSigner(secret: vector.secret)
            #expect(signer.signs)
            #expect(signer.signature(id: vector.id, timestamp: vector.timestamp, body: vector.body) == vector.signature,
                    "\(vector.id)")
        }
    }

    @Test func headersOfATry() throws {
        let signer = try WebhookSigner(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let headers = signer.headers(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
                                     body: Array(#"{"test": 2432232314}"#.utf8))
        #expect(headers.map(\.0) == ["webhook-id", "webhook-timestamp", "webhook-signature", "Content-Type"])
        #expect(headers.map(\.1) == ["msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330",
                                     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", "application/json"])
    }

    @Test(arguments: [nil, ""] as [String?])
    func noSecretNoSignature(secret: String?) throws {
        let signer = try WebhookSigner(secret: secret)
        #expect(!signer.signs)
        #expect(signer.signature(id: "id", timestamp: 1, body: [1]) == nil)
        let headers = signer.headers(id: "id", timestamp: 1, body: [1])
        #expect(headers.map(\.0) == ["webhook-id", "webhook-timestamp", "Content-Type"])
        #expect("\(signer)" == "WebhookSigner(secret: none)")
    }

    @Test func theSignatureCoversIdTimestampAndEveryByte() throws {
        let signer = try WebhookSigner(secret: "whsec_AQIDBAU")
        let base = signer.signature(id: "a", timestamp: 10, body: Array("{}".utf8))
        #expect(signer.signature(id: "b", timestamp: 10, body: Array("{}".utf8)) != base)
        #expect(signer.signature(id: "a", timestamp: 11, body: Array("{}".utf8)) != base)
        #expect(signer.signature(id: "a", timestamp: 10, body: Array("{} ".utf8)) != base)
        // "a.10.{}" split differently is the same signed text: the format's own property.
        #expect(signer.signature(id: "a.10", timestamp: 10, body: Array("{}".utf8))
            == signer.signature(id: "a", timestamp: 10, body: Array("10.{}".utf8)))
        #expect(try WebhookSigner(secret: "AQIDBAU").signature(id: "a", timestamp: 10, body: Array("{}".utf8)) != base,
                "without whsec_ the text itself is the key")
    }

    @Test(arguments: [
        ("whsec_", "nothing after it"),
        ("whsec_MfKQ9r8G-KYqrTwj", "byte 15 is not in the standard base64 alphabet"),
        ("whsec_MfKQ9r8G_KYqrTwj", "byte 15 is not in the standard base64 alphabet"),
        ("whsec_MfKQ 9r8G", "byte 11 is not in the standard base64 alphabet"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", "byte 39 is not in the standard base64 alphabet"),
        ("whsec_Zöe=", "byte 8 is not in the standard base64 alphabet"),
        ("whsec_AQI=DBAU", "is not in the standard base64 alphabet"),
        ("whsec_AQIDB", "length"),
        ("whsec_AQIDBAU==", "ends with 2 '=' where 1 belong"),
        ("whsec_AQIDBA=", "ends with 1 '=' where 2 belong"),
        ("whsec_====", "it is only padding"),
    ])
    func badWhsecSecretsAreNamedWithoutTheSecret(secret: String, problem: String) {
        do {
            _ = try WebhookSigner(secret: secret)
            Issue.record("accepted \(secret.debugDescription)")
        } catch {
            #expect(error.reason.contains(problem), "\(error)")
            #expect(error.reason.hasPrefix("the webhook secret"))
            let rest = secret.dropFirst("whsec_".count)
            if rest.count >= 4 { #expect(!error.description.contains(rest), "\(error)") }
        }
    }

    /// During a key rotation the secret holds several `whsec_` keys: each try carries one
    /// signature per key, in the order given, each the one that key alone makes.
    @Test func aRotationsKeysEachSign() throws {
        let new = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", old = "whsec_AQIDBAU"
        let body = Array("{}".utf8)
        let alone = try [new, old].map { try #require(try WebhookSigner(secret: $0).signature(id: "id", timestamp: 1, body: body)) }
        #expect(try WebhookSigner(secret: new + " " + old).signature(id: "id", timestamp: 1, body: body) == alone.joined(separator: " "))
        #expect(try WebhookSigner(secret: old + " " + new).signature(id: "id", timestamp: 1, body: body)
            == alone.reversed().joined(separator: " "))
        // A secret someone typed, spaces and all, is one key; a whsec_ key followed by text is refused.
        #expect(try WebhookSigner(secret: "my shared secret").signature(id: "id", timestamp: 1, body: body)?.contains(" ") == false)
        #expect(throws: WebhookSecretError.self) { try WebhookSigner(secret: old + " plain") }
        // A bad key of a rotation is named by its place, never quoted.
        do {
            _ = try WebhookSigner(secret: new + " whsec_AQ-DBAU")
            Issue.record("accepted a rotation with a bad key")
        } catch {
            #expect(error.reason.hasPrefix("the webhook secret's key 2 of 2") && error.reason.contains("byte 9 "), "\(error)")
            #expect(!error.reason.contains("MfKQ9r8G") && !error.reason.contains("AQ-DBAU"), "\(error)")
        }
        #expect("\(try WebhookSigner(secret: new + " " + old))" == "WebhookSigner(secret: 2 × whsec_<redacted>)")
    }

    @Test func theSecretIsRedactedEverywhere() throws {
        for (secret, shown) in [("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_<redacted>"),
                                ("hunter2-plain-secret", "<redacted>")] {
            let signer = try WebhookSigner(secret: secret)
            var dumped = ""
            dump(signer, to: &dumped)
            let mirrored = Mirror(reflecting: signer).children.map { "\($0.label ?? ""): \($0.value)" }.joined()
            for text in ["\(signer)", String(describing: signer), String(reflecting: signer), dumped, mirrored] {
                #expect(!text.contains("MfKQ9r8G") && !text.contains("hunter2"), "\(text)")
                #expect(text.contains(shown), "\(text)")
            }
            // The key bytes, in any common spelling, are not there either.
            let keyHex = secret.hasPrefix("whsec_")
                ? Data(base64Encoded: String(secret.dropFirst(6)))!.map { String(format: "%02x", $0) }.joined()
                : Array(secret.utf8).map { String(format: "%02x", $0) }.joined()
            #expect(!dumped.lowercased().contains(keyHex.prefix(8)))
        }
    }
}

@Suite struct WebhookHeadersTests {
    private let own = [("webhook-id", "id"), ("webhook-timestamp", "1"), ("webhook-signature", "v1,x"),
                       ("Content-Type", "application/json")]

    @Test func customHeadersComeFirstAndOwnHeadersAreKept() {
        let merged = WebhookHeaders.merge(custom: [("X-Tenant", "acme"), ("Authorization", "Bearer abc")], into: own)
        #expect(merged.headers.map(\.0) == ["X-Tenant", "Authorization"] + own.map(\.0))
        #expect(merged.headers.map(\.1) == ["acme", "Bearer abc"] + own.map(\.1))
        #expect(merged.dropped.isEmpty)
    }

    @Test(arguments: [
        "webhook-id", "Webhook-Id", "WEBHOOK-TIMESTAMP", "webhook-Signature", "content-type", "CONTENT-TYPE",
        "Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY", "Content-Length", "transfer-encoding", "host",
    ])
    func reservedNamesCannotBeOverriddenInAnyCase(name: String) {
        let merged = WebhookHeaders.merge(custom: [(name, "forged"), ("X-Ok", "1")], into: own)
        #expect(!merged.headers.contains { $0.1 == "forged" })
        #expect(merged.headers.map(\.0) == ["X-Ok"] + own.map(\.0))
        #expect(merged.dropped == [DroppedHeader(name: name, reason: .reserved)])
        #expect(merged.dropped[0].description == "header '\(name)' not sent: ChangeRelay sets it itself")
    }

    @Test func authorizationIsTheConfigsToSet() {
        for name in ["Authorization", "authorization", "X-Api-Key"] {
            let merged = WebhookHeaders.merge(custom: [(name, "Bearer t")], into: own)
            #expect(merged.headers.first! == (name, "Bearer t"))
            #expect(merged.dropped.isEmpty)
        }
    }

    @Test(arguments: [
        ("X-Evil\r\nInjected", DroppedHeader.Reason.invalidName, #"header 'X-Evil\r\nInjected' not sent: the name is not an HTTP token"#),
        ("X Space", .invalidName, "header 'X Space' not sent: the name is not an HTTP token"),
        ("X:Colon", .invalidName, "header 'X:Colon' not sent: the name is not an HTTP token"),
        ("", .invalidName, "header '' not sent: the name is not an HTTP token"),
        ("Ünïcode", .invalidName, "header 'Ünïcode' not sent: the name is not an HTTP token"),
        ("X-Null\0", .invalidName, #"header 'X-Null\0' not sent: the name is not an HTTP token"#),
        // Not the reserved name with a trailing CR: an invalid name.
        ("Content-Type\r", .invalidName, #"header 'Content-Type\r' not sent: the name is not an HTTP token"#),
    ])
    func invalidNamesAreDroppedWithASafeReason(name: String, reason: DroppedHeader.Reason, message: String) {
        let merged = WebhookHeaders.merge(custom: [(name, "v")], into: own)
        #expect(merged.headers.map(\.0) == own.map(\.0))
        #expect(merged.dropped == [DroppedHeader(name: name, reason: reason)])
        #expect(merged.dropped[0].description == message)
        #expect(!merged.dropped[0].description.contains("\r") && !merged.dropped[0].description.contains("\n"))
    }

    @Test(arguments: [
        "value\r\nX-Injected: 1", "value\nX-Injected: 1", "value\r", "a\0b", "bell\u{07}", "del\u{7F}", "esc\u{1B}[31m",
    ])
    func valuesWithControlCharactersAreDroppedWithoutQuotingThem(value: String) {
        let merged = WebhookHeaders.merge(custom: [("X-Token", value)], into: own)
        #expect(merged.headers.map(\.0) == own.map(\.0))
        #expect(merged.dropped == [DroppedHeader(name: "X-Token", reason: .invalidValue)])
        #expect(merged.dropped[0].description == "header 'X-Token' not sent: its value contains a control character (CR, LF, NUL…)")
    }

    @Test func acceptableValues() {
        let merged = WebhookHeaders.merge(custom: [
            ("X-Tab", "a\tb"), ("X-Utf8", "Zoë 🎉"), ("X-Trim", " \t padded \t"), ("X-Empty", ""), ("X-Symbols", ##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##),
        ], into: [])
        #expect(merged.dropped.isEmpty)
        #expect(merged.headers.map(\.1) == ["a\tb", "Zoë 🎉", "padded", "", ##"!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"##])
    }

    @Test func aLongNameIsCutInTheReason() {
        let name = String(repeating: "x", count: 10_000) + " "
        let dropped = WebhookHeaders.merge(custom: [(name, "v")], into: []).dropped
        #expect(dropped.count == 1)
        #expect(dropped[0].description.count < 140)
    }
}
