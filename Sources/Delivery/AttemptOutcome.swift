import PlannedEffects
/// What one HTTP attempt means for its delivery, before the retry policy is consulted.
///
/// The rule is "retry every failure", and for a webhook endpoint "except 410" (Standard
/// Webhooks: the receiver removed the endpoint on purpose). The seeds retried every failure, and
/// ChangeRelay's promise is at-least-once: a 401, 403 or 404 from an edge function is far
/// more often a rotated key or a half-finished deploy than a verdict on the request, and a
/// 400 or 422 can be cured by fixing the receiver. The attempt budget already bounds what a
/// truly permanent rejection costs (a few requests), while giving up early would turn a
/// transient mistake into dead letters someone must re-queue by hand.
public enum AttemptOutcome: Sendable, Hashable {
    /// A 2xx response.
    case succeeded
    /// The attempt failed; `after` is the wait the receiver asked for with Retry-After, if any.
    case retry(after: Duration?, failure: AttemptFailure)
    /// Retrying cannot help.
    case giveUp(GiveUpReason)

    /// Classifies a response that arrived. `retryAfter` is the raw header value; `now` (Unix
    /// seconds) resolves an HTTP-date in it.
    public init(status: Int, retryAfter: String? = nil, now: Int64, retryAfterCap: Duration = RetryAfter.defaultCap,
                goneEndsDelivery: Bool = false) {
        switch status {
        case 200...299:
            self = .succeeded
        case 410 where goneEndsDelivery:
            // Standard Webhooks: the receiver has removed the endpoint on purpose.
            self = .giveUp(.endpointGone)
        case 429, 503:
            // The only statuses for which Retry-After is a request to slow down; on a 3xx it
            // describes a redirect, which is never followed.
            let wait = retryAfter.flatMap { RetryAfter.delay(parsing: $0, now: now, cap: retryAfterCap) }
            self = .retry(after: wait, failure: .status(status))
        default:
            // 3xx (redirects are not followed, so the request did not land), 408, other 4xx,
            // 5xx, and anything outside 200...599.
            self = .retry(after: nil, failure: .status(status))
        }
    }

    /// Every transport failure is retried: none says anything about whether the receiver
    /// would accept the request once it is reachable and well-behaved again.
    public init(transportError: TransportError) {
        self = .retry(after: nil, failure: .transport(transportError))
    }
}

/// Why an attempt failed, kept for `last_error` and the dead-letter reason.
public enum AttemptFailure: Sendable, Hashable, CustomStringConvertible {
    case status(Int)
    case transport(TransportError)

    public var description: String {
        switch self {
        case .status(let status) where (300...399).contains(status):
            "HTTP \(status) (redirects are not followed)"
        case .status(let status):
            "HTTP \(status)"
        case .transport(let error):
            error.description
        }
    }
}

/// A request that produced no usable response.
public struct TransportError: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case nameResolution = "name resolution failed"
        case connectFailed = "connection failed"
        case tls = "TLS failed"
        case timedOut = "timed out"
        case connectionReset = "connection reset"
        case invalidResponse = "invalid HTTP response"
        case responseTooLarge = "response too large"
        case other = "transport error"
    }

    public var kind: Kind
    /// The HTTP client's own words (e.g. libcurl's error buffer); never request headers,
    /// which may carry credentials.
    public var detail: String

    public init(_ kind: Kind, detail: String = "") {
        self.kind = kind
        self.detail = detail
    }

    public var description: String {
        detail.isEmpty ? kind.rawValue : "\(kind.rawValue): \(detail)"
    }
}

public enum GiveUpReason: Sendable, Hashable, CustomStringConvertible {
    /// HTTP 410.
    case endpointGone
    /// Never sent: the SSRF guard refused the target (the reason names the address and the
    /// setting that would allow it), or the target cannot be signed for. Trying again would
    /// be refused again.
    case refused(String)

    public var description: String {
        switch self {
        case .endpointGone: "endpoint gone (HTTP 410)"
        case .refused(let reason): "refused: " + reason
        }
    }
}
