import Core
import CCurl
import PlannedEffects

/// Why a request produced no response. It names the method and URL (user-info redacted)
/// and never carries request headers or body, so it can be logged as it is.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// Rejected before anything was sent: not an http/https URL, a malformed URL, a
        /// header name or value that would break the request. The associated text says which.
        case invalidRequest(String)
        /// The host name did not resolve.
        case couldNotResolve
        /// No TCP connection: refused, unreachable, or the connect timeout passed.
        case couldNotConnect
        /// The TLS handshake or the certificate check failed.
        case tlsFailed
        /// The total timeout passed before the response was complete.
        case timedOut
        /// The connection failed while sending the request.
        case sendFailed
        /// The connection failed or closed while waiting for or reading the response,
        /// including an empty reply and a body shorter than its Content-Length.
        case receiveFailed
        /// The receiver did not speak HTTP (no status line, a malformed one, HTTP/0.9, a
        /// broken chunked encoding or HTTP/2 framing).
        case invalidResponse
        /// The response headers exceeded the client's `maxResponseHeaderBytes`.
        case tooLarge
        /// The calling task was cancelled.
        case cancelled
        /// The client was closed before the request finished.
        case clientClosed
        /// Any other libcurl failure.
        case other(curlCode: Int)
    }

    public var kind: Kind
    public var method: String
    /// The request URL with any user-info replaced by `<redacted>`.
    public var url: String
    /// libcurl's description of the failure (or the client's, for `invalidRequest`,
    /// `tooLarge`, `cancelled`, `clientClosed`).
    public var message: String
    /// The libcurl `CURLcode`, when libcurl reported the failure.
    public var curlCode: Int?

    public init(_ kind: Kind, method: String, url: String, message: String, curlCode: Int? = nil) {
        self.kind = kind
        self.method = method
        self.url = redactedURL(url)
        self.message = message
        self.curlCode = curlCode
    }

    public var description: String {
        var text = "\(method) \(url): \(kind.summary)"
        if !message.isEmpty, message != kind.summary { text += " (\(message))" }
        return text
    }

    /// Whether trying the same request again later can succeed. Only an invalid request
    /// and a closed client are permanent.
    public var isRetryable: Bool {
        switch kind {
        case .invalidRequest, .clientClosed, .cancelled: false
        default: true
        }
    }
}

extension HTTPError.Kind {
    var summary: String {
        switch self {
        case .invalidRequest(let why): "invalid request: \(why)"
        case .couldNotResolve: "could not resolve host"
        case .couldNotConnect: "could not connect"
        case .tlsFailed: "TLS failed"
        case .timedOut: "timed out"
        case .sendFailed: "sending the request failed"
        case .receiveFailed: "receiving the response failed"
        case .invalidResponse: "invalid HTTP response"
        case .tooLarge: "response headers too large"
        case .cancelled: "cancelled"
        case .clientClosed: "HTTP client closed"
        case .other(let code): "libcurl error \(code)"
        }
    }

    /// The kind a libcurl result code stands for.
    init(curlCode code: CURLcode) {
        switch code {
        case CURLE_URL_MALFORMAT: self = .invalidRequest("malformed URL")
        case CURLE_COULDNT_RESOLVE_HOST: self = .couldNotResolve
        case CURLE_COULDNT_CONNECT: self = .couldNotConnect
        case CURLE_OPERATION_TIMEDOUT: self = .timedOut
        case CURLE_SEND_ERROR: self = .sendFailed
        case CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE: self = .receiveFailed
        // The scheme is checked before sending, so UNSUPPORTED_PROTOCOL here means the
        // receiver answered without a status line ("Received HTTP/0.9 when not allowed").
        case CURLE_WEIRD_SERVER_REPLY, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_CONTENT_ENCODING,
             CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_HTTP3:
            self = .invalidResponse
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
             CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR,
             CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS, CURLE_SSL_SHUTDOWN_FAILED,
             CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED,
             CURLE_SSL_ENGINE_INITFAILED, CURLE_USE_SSL_FAILED:
            self = .tlsFailed
        default: self = .other(curlCode: Int(code.rawValue))
        }
    }
}
