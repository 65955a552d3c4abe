import Core
import Decoding
import Foundation

/// `changerelay webhooks test`: one signed `webhook.test` event to a config, now, through
/// the same guard, signing and header rules as every webhook try.
public enum WebhookTestEvent {
    /// The config as the command read it; `secret` stays in this value and the signer.
    public struct Target: Sendable {
        public var id: String
        public var url: String
        public var secret: String?
        /// The config's own headers.
        public var headers: [(String, String)]

        public init(id: String, url: String, secret: String?, headers: [(String, String)]) {
            self.id = id
            self.url = url
            self.secret = secret
            self.headers = headers
        }
    }

    public enum Outcome: Sendable {
        case response(status: Int, body: String)
        /// The request failed on the way, or was never sent (a refused target, a bad secret).
        case failed(String)
    }

    /// The body sent: the event type, its time, and the config it was sent to.
    public static func body(configID: String, at now: Date) -> [UInt8] {
        var writer = JSONWriter(capacity: 128)
        writer.beginObject()
        writer.key("type")
        writer.string("webhook.test")
        writer.key("timestamp")
        writer.string(PostgresTimestamp(unixMicroseconds: Int64(now.timeIntervalSince1970 * 1_000_000)).rfc3339)
        writer.key("data")
        writer.beginObject()
        writer.key("webhook_config_id")
        writer.string(configID)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }

    public static func send(_ target: Target, body: [UInt8], allowPrivateTargets: Bool, timeout: Duration,
                            client: HTTPClient) async -> Outcome {
        let signer: WebhookSigner
        do { signer = try WebhookSigner(secret: target.secret) } catch {
            return .failed("webhook config \(target.id): \(error.reason)")
        }
        let pinned: String?
        switch await WebhookTargetGuard(allowPrivateTargets: allowPrivateTargets, lookups: HostLookups(patience: timeout)).check(target.url) {
        case .success(let address): pinned = address
        case .failure(let refusal): return .failed(refusal.reason)
        }
        let id = "msg_test_" + UUID().uuidString.lowercased()
        let own = signer.headers(id: id, timestamp: Int64(Date().timeIntervalSince1970), body: body)
        let headers = WebhookHeaders.merge(custom: target.headers, into: own).headers + [("Idempotency-Key", id)]
        let request = HTTPRequest(method: "POST", url: target.url, headers: headers, body: body, connectTimeout: .seconds(5),
                                  timeout: timeout, responseBodyLimit: 4096, oversizedBody: .discard, pinnedAddress: pinned)
        do throws(HTTPError) {
            let response = try await client.send(request)
            return .response(status: response.status, body: response.storableBody)
        } catch {
            return .failed(error.description)
        }
    }
}
