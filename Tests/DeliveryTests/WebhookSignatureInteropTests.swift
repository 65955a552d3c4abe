import Delivery
import Foundation
import Testing

/// Signatures made here, checked by someone else's verifier: the `standardwebhooks` Python
/// package (1.1.0, installed by scripts/install-deps.sh). Missing Python or the package is a
/// failure, not a skip: without it nothing outside this code says the signatures are right.
@Suite struct WebhookSignatureInteropTests {
    /// Reads cases (secret, how to hand it to the library, body bytes, headers) as JSON on stdin
    /// and prints, for each, "verified" or what the library said.
    static let verifier = #"""
        import base64, json, sys
        try:
            from standardwebhooks.webhooks import Webhook
        except ImportError as error:
            print("cannot import standardwebhooks: %s" % error, file=sys.stderr)
            sys.exit(3)
        results = []
        for case in json.load(sys.stdin):
            secret = case["secret"] if case["as"] == "string" else case["secret"].encode()
            try:
                Webhook(secret).verify(base64.b64decode(case["body"]), case["headers"], json_parse=False)
                results.append("verified")
            except Exception as error:
                results.append("%s: %s" % (type(error).__name__, error))
        print(json.dumps(results))
        """#

    struct Case {
        var secret: String
        /// "string": the library's own reading of a secret; "bytes": the UTF-8 bytes as the key.
        var handedAs: String
        var body: [UInt8]
        var headers: [(String, String)]
    }

    @Test func theReferenceLibraryVerifiesOurSignatures() throws {
        let now = Int64(Date().timeIntervalSince1970)  // the library refuses timestamps 5 minutes off
        let body = Array(#"{"type":"order.created","timestamp":"2026-12-02T15:41:00Z","data":{"schema":"public","table":"orders","record":{"id":7,"note":"Zoë → 🎉"},"old_record":null}}"#.utf8)
        func headers(_ secret: String, id: String = "msg_0/16B6C58:3", body: [UInt8] = body) throws -> [(String, String)] {
            try WebhookSigner(secret: secret).headers(id: id, timestamp: now, body: body)
        }
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
        let text = "plainsecret1"  // valid base64 characters, so the library's reading does not throw
        var tampered = body
        tampered[tampered.count - 2] = UInt8(ascii: "0")
        let cases: [(Case, expected: String)] = [
            (Case(secret: whsec, handedAs: "string", body: body, headers: try headers(whsec)), "verified"),
            (Case(secret: "whsec_AQIDBAU", handedAs: "string", body: body, headers: try headers("whsec_AQIDBAU")), "verified"),
            (Case(secret: whsec, handedAs: "string", body: [], headers: try headers(whsec, body: [])), "verified"),
            // A rotation's two signatures: a receiver holding either key verifies the try.
            (Case(secret: whsec, handedAs: "string", body: body, headers: try headers(whsec + " whsec_AQIDBAU")), "verified"),
            (Case(secret: "whsec_AQIDBAU", handedAs: "string", body: body, headers: try headers(whsec + " whsec_AQIDBAU")), "verified"),
            // A non-whsec secret is its UTF-8 bytes here; the library decodes any string secret as
            // base64, so a receiver must hand it the bytes…
            (Case(secret: text, handedAs: "bytes", body: body, headers: try headers(text)), "verified"),
            (Case(secret: "ünïcode secret", handedAs: "bytes", body: body, headers: try headers("ünïcode secret")), "verified"),
            // …and given the string it reads another key.
            (Case(secret: text, handedAs: "string", body: body, headers: try headers(text)), "WebhookVerificationError"),
            // The verifier is not vacuous: another body, another secret, or no signature fail.
            (Case(secret: whsec, handedAs: "string", body: tampered, headers: try headers(whsec)), "WebhookVerificationError"),
            (Case(secret: "whsec_AQIDBAU", handedAs: "string", body: body, headers: try headers(whsec)), "WebhookVerificationError"),
            (Case(secret: whsec, handedAs: "string", body: body, headers: try headers("")), "WebhookVerificationError"),
        ]

        let results = try runVerifier(cases.map(\.0))
        try #require(results.count == cases.count, "\(results)")
        for (index, (result, (_, expected))) in zip(results, cases).enumerated() {
            #expect(result.hasPrefix(expected), "case \(index): \(result)")
        }
    }

    private func runVerifier(_ cases: [Case]) throws -> [String] {
        let input = try JSONSerialization.data(withJSONObject: cases.map { item -> [String: Any] in
            ["secret": item.secret, "as": item.handedAs, "body": Data(item.body).base64EncodedString(),
             "headers": Dictionary(item.headers, uniquingKeysWith: { first, _ in first })]
        })
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.verifier]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let fix = "run scripts/install-deps.sh (it installs the Python package standardwebhooks==1.1.0)"
        switch process.terminationStatus {
        case 0: break
        case 127: throw InteropFailure("python3 is not on PATH; \(fix)")
        case 3: throw InteropFailure("\(errors.trimmingCharacters(in: .whitespacesAndNewlines)); \(fix)")
        default: throw InteropFailure("the verifier exited with \(process.terminationStatus): \(errors)")
        }
        guard let results = try JSONSerialization.jsonObject(with: output) as? [String] else {
            throw InteropFailure("unexpected verifier output: \(String(decoding: output, as: UTF8.self))")
        }
        return results
    }

    struct InteropFailure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}
