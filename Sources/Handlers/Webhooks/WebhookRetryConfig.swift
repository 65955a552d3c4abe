import Core
import Decoding
import PlannedEffects

/// A `webhook_configs.retry_config` value, e.g. `{"max_retries": 3, "retry_delay": 1000}`.
///
/// A missing or null member takes the column default (3 retries, 1000 ms), as the seed's
/// lookups did; other members are ignored so the row can carry more settings. A present
/// member must be an integer-valued JSON number in range: a string or a fraction is an
/// error naming the field, because guessing would silently change how often a customer's
/// endpoint is called.
public struct WebhookRetryConfig: Sendable, Hashable {
    public static let defaultMaxRetries = 3
    public static let defaultRetryDelayMilliseconds = 1_000
    /// The same bound the configuration file puts on attempts.
    public static let maxRetriesRange: ClosedRange<Int> = 0...100
    /// Up to a day, the bound the configuration file puts on retry delays.
    public static let retryDelayMillisecondsRange: ClosedRange<Int> = 0...86_400_000

    /// Retries after the first attempt.
    public let maxRetries: Int
    /// The first pause; each later one doubles.
    public let retryDelay: Duration

    public init(json: String) throws(RetryConfigError) {
        let document: JSONValue
        do { document = try JSONParser.parse(json, deepValues: .emptied) } catch {
            throw .malformedJSON(offset: error.offset, reason: String(error.description.prefix { $0 != "@" }))
        }
        guard case .object(let pairs) = document else { throw .notAnObject }
        // A repeated key keeps its last value, as jsonb does.
        let members = Dictionary(pairs.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        maxRetries = try Self.integer(
            "max_retries", in: members, range: Self.maxRetriesRange, default: Self.defaultMaxRetries)
        let milliseconds = try Self.integer(
            "retry_delay", in: members, range: Self.retryDelayMillisecondsRange, default: Self.defaultRetryDelayMilliseconds)
        retryDelay = .milliseconds(milliseconds)
    }

    /// Exponential backoff from `retryDelay` with full jitter. `cap` bounds both the backoff
    /// and any Retry-After the receiver sends; the default (an hour) matches the dispatcher's
    /// Retry-After clamp, so a receiver asking for up to an hour is obeyed.
    public func policy(cap: Duration = .seconds(3_600)) -> RetryPolicy {
        .exponential(base: retryDelay, multiplier: 2, cap: cap, maxAttempts: maxRetries + 1, jitter: .full)
    }

    private static func integer(
        _ name: String, in members: [String: JSONValue], range: ClosedRange<Int>, default fallback: Int
    ) throws(RetryConfigError) -> Int {
        guard let member = members[name], member != .null else { return fallback }
        var quoted = JSONWriter(capacity: 32)
        quoted.value(member)
        // Shown as JSON (escaped already), and cut: a megabyte string made a megabyte log line.
        let written = quoted.string.unicodeScalars
        let shown = written.count > 120 ? String(String.UnicodeScalarView(written.prefix(120))) + "…" : quoted.string
        let invalid = RetryConfigError.invalidField(
            name: name, value: shown,
            expected: "an integer from \(range.lowerBound) to \(range.upperBound)")
        // Double holds every integer in these ranges exactly, and reads `1e3` or `1000.0`
        // (which jsonb keeps as written) as the integers they denote.
        guard case .number(let text) = member, let value = Double(text), value.rounded() == value,
              value >= Double(range.lowerBound), value <= Double(range.upperBound) else { throw invalid }
        return Int(value)
    }
}

/// Why a `retry_config` value was refused; the description names the field so that the
/// log line points at the row to fix.
public enum RetryConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    case malformedJSON(offset: Int, reason: String)
    case notAnObject
    case invalidField(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .malformedJSON(let offset, let reason):
            "retry_config is not valid JSON at byte \(offset): \(reason)"
        case .notAnObject:
            "retry_config must be a JSON object"
        case .invalidField(let name, let value, let expected):
            "retry_config.\(name) must be \(expected), got \(value)"
        }
    }
}
