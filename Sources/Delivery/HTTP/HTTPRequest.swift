import Core
import PlannedEffects
/// What to do with response body bytes beyond `HTTPRequest.responseBodyLimit`.
public enum OversizedBodyPolicy: Sendable, Equatable {
    /// Stop reading at the limit and close the connection. The response (status, headers,
    /// the first `responseBodyLimit` bytes) is returned with `bodyTruncated` set. Bounded
    /// work whatever the receiver sends; costs one connection. The default.
    case abort
    /// Keep reading and throw the surplus away, so the connection can be reused, for up to
    /// `discardLimit` bytes past the limit; a longer body is cut there as with `.abort`. The
    /// answer is known once the status line is in: a receiver that streams a body without
    /// end after a 2xx has accepted the request, and reading to the timeout would make that
    /// acceptance a failure and the request be sent again.
    case discard

    /// Bytes `.discard` reads and throws away before it gives up on the connection.
    public static let discardLimit = 1024 * 1024
}

/// One HTTP request. Plain data: building one has no effect until `HTTPClient.send`.
///
/// Its `description`, `debugDescription` and mirror redact sensitive header values
/// (`Authorization`, cookies, API keys, tokens, secrets), so a request can be logged.
public struct HTTPRequest: Sendable {
    /// An HTTP method token: `GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, ….
    public var method: String
    /// An absolute `http://` or `https://` URL.
    public var url: String
    /// Header fields in order. libcurl's own `Accept: */*` and `User-Agent` can be
    /// replaced by giving them here; `Expect: 100-continue` is never sent.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Time allowed for name resolution, TCP and TLS handshakes.
    public var connectTimeout: Duration
    /// Time allowed for the whole transfer, from the moment it starts (a request waiting
    /// for a free transfer slot in the client is not yet started).
    public var timeout: Duration
    /// Response body bytes kept; see `oversizedBody` for the rest.
    public var responseBodyLimit: Int
    public var oversizedBody: OversizedBodyPolicy
    /// An IP address literal (`203.0.113.7`, `2001:db8::1`, `fe80::1%eth0` with a zone) to
    /// connect to instead of resolving the URL's host (libcurl `CURLOPT_CONNECT_TO`). The
    /// Host header, TLS SNI and certificate check still use the URL's host. A connection is
    /// reused only by a request pinned to the same address. Used by the SSRF guard to
    /// connect to exactly the address it checked (`CheckedTarget.pinnedAddress`).
    public var pinnedAddress: String?

    public init(
        method: String = "GET",
        url: String,
        headers: [(String, String)] = [],
        body: [UInt8] = [],
        connectTimeout: Duration = .seconds(10),
        timeout: Duration = .seconds(30),
        responseBodyLimit: Int = 64 * 1024,
        oversizedBody: OversizedBodyPolicy = .abort,
        pinnedAddress: String? = nil
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.responseBodyLimit = responseBodyLimit
        self.oversizedBody = oversizedBody
        self.pinnedAddress = pinnedAddress
    }

    /// Convenience for a POST with a body given as text.
    public static func post(
        _ url: String, headers: [(String, String)] = [], body: String,
        timeout: Duration = .seconds(30)
    ) -> HTTPRequest {
        HTTPRequest(method: "POST", url: url, headers: headers, body: Array(body.utf8), timeout: timeout)
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { asciiCaseInsensitiveEquals($0.0, name) }?.1
    }
}

extension HTTPRequest: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String {
        "\(method) \(redactedURL(url)) (\(body.count) bytes)"
    }

    public var debugDescription: String {
        let fields = headers.map { "\($0.0): \(redactedHeaderValue(name: $0.0, value: $0.1))" }
        return "HTTPRequest(\(method) \(redactedURL(url)), headers: [\(fields.joined(separator: ", "))], body: \(body.count) bytes)"
    }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "method": method,
            "url": redactedURL(url),
            "headers": headers.map { ($0.0, redactedHeaderValue(name: $0.0, value: $0.1)) },
            "body": "\(body.count) bytes",
            "connectTimeout": connectTimeout,
            "timeout": timeout,
            "responseBodyLimit": responseBodyLimit,
            "oversizedBody": oversizedBody,
            "pinnedAddress": pinnedAddress as Any,
        ])
    }
}

/// Whether a header's value must stay out of logs and errors.
public func isSensitiveHeader(_ name: String) -> Bool {
    let lower = name.lowercased()
    switch lower {
    case "authorization", "proxy-authorization", "cookie", "set-cookie", "apikey", "api-key", "x-api-key":
        return true
    default:
        return lower.contains("token") || lower.contains("secret") || lower.contains("password")
            || lower.contains("api-key") || lower.contains("apikey")
    }
}

func redactedHeaderValue(name: String, value: String) -> String {
    isSensitiveHeader(name) ? "<redacted>" : value
}

func asciiCaseInsensitiveEquals(_ a: String, _ b: String) -> Bool {
    let x = a.utf8, y = b.utf8
    guard x.count == y.count else { return false }
    for (p, q) in zip(x, y) where p != q {
        let lp = (p >= 65 && p <= 90) ? p | 0x20 : p
        let lq = (q >= 65 && q <= 90) ? q | 0x20 : q
        if lp != lq { return false }
    }
    return true
}
