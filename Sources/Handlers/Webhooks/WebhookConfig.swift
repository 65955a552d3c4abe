import Core
import Decoding
import PlannedEffects

/// One `webhook_configs` row as the handler plans with it. The secret is not kept: the
/// dispatcher reads it when it signs a try, so it never sits in the stream's memory, a
/// delivery row or a log.
public struct WebhookConfig: Sendable, Hashable {
    /// The row's id as text (a bigint in the seed's table, a uuid in older installs).
    public var id: String
    public var name: String
    public var url: String
    public var events: [WebhookEventPattern]
    public var headers: [PlannedDelivery.Header]
    public var retryPolicy: RetryPolicy
    public var isActive: Bool

    /// Why a row can never fire, with what is wrong named; the row stays known (so a later
    /// fix replaces it) but plans nothing.
    public struct Unusable: Error, Sendable, Hashable, CustomStringConvertible {
        public var id: String
        public var reason: String
        /// Whether the row says it should fire: only then is it worth a warning.
        public var isActive = false
        public var description: String { "webhook config \(id) cannot fire: \(reason)" }
    }

    /// The columns a config is read from: the secret is not among them.
    public static let columns: Set<String> = ["id", "name", "url", "events", "headers", "retry_config", "is_active"]

    /// Reads a whole row by column name (text values as pgoutput sends them; NULL absent).
    /// `WebhookConfigCache.record` fills the columns an UPDATE left in TOAST first.
    public static func parse(_ row: [String: String]) -> Result<WebhookConfig, Unusable> {
        let isActive = row["is_active"].flatMap(postgresBoolean) == true
        guard let id = row["id"] else { return .failure(Unusable(id: "?", reason: "the row has no id", isActive: isActive)) }
        func unusable(_ reason: String) -> Result<WebhookConfig, Unusable> {
            .failure(Unusable(id: id, reason: reason, isActive: isActive))
        }
        guard let url = row["url"], HTTPURLShape.isValid(url) else {
            // Not quoted: its user-info, path or query may be a credential.
            return unusable(row["url"] == nil ? "url is NULL" : "url is not an http:// or https:// URL with a host (and a port up to 65535, if any)")
        }
        guard let eventsText = row["events"], let types = PostgresTextArray.parse(eventsText) else {
            return unusable("events \(row["events"].map { quotedExcerpt($0) } ?? "NULL") is not a text array")
        }
        if types.contains(where: \.isEmpty) { return unusable("events holds an empty event type") }
        let headers: [PlannedDelivery.Header]
        switch Self.headers(row["headers"] ?? "{}") {
        case .success(let parsed): headers = parsed
        case .failure(let problem): return unusable(problem.reason)
        }
        let retryPolicy: RetryPolicy
        do { retryPolicy = try WebhookRetryConfig(json: row["retry_config"] ?? "{}").policy() } catch {
            return unusable(error.description)
        }
        return .success(WebhookConfig(id: id, name: row["name"] ?? "", url: url, events: types.map(WebhookEventPattern.init),
                                      headers: headers, retryPolicy: retryPolicy, isActive: isActive))
    }

    public func wants(_ eventType: String) -> Bool { events.contains { $0.matches(eventType) } }

    private struct HeaderProblem: Error { var reason: String }

    /// `headers` must be a JSON object of string values whose names are HTTP tokens and
    /// whose values hold no line breaks: anything else could smuggle a header in.
    private static func headers(_ json: String) -> Result<[PlannedDelivery.Header], HeaderProblem> {
        // A repeated name is sent once, with its last value: what a jsonb column would hold.
        guard let members = (try? JSONParser.parse(json, deepValues: .emptied))?.distinctMembers else {
            return .failure(HeaderProblem(reason: "headers is not a JSON object"))
        }
        var headers: [PlannedDelivery.Header] = []
        for member in members {
            guard case .string(let value) = member.value else {
                return .failure(HeaderProblem(reason: "header \(quotedExcerpt(member.key, limit: 64)) is not a string"))
            }
            guard isToken(member.key) else {
                return .failure(HeaderProblem(reason: "\(quotedExcerpt(member.key, limit: 64)) is not a header name"))
            }
            guard !value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) else {
                return .failure(HeaderProblem(reason: "header \(quotedExcerpt(member.key, limit: 64)) holds a line break"))
            }
            headers.append(.init(member.key, value))
        }
        return .success(headers)
    }

    static func isToken(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

/// Postgres's text output of a one-dimensional `text[]`: `{a,"b c","d\"e",NULL}`.
enum PostgresTextArray {
    /// nil when the text is not such an array; NULL elements are left out. An array whose
    /// lower bound is not 1 prints its bounds first (`[0:1]={a,b}`): they are skipped.
    static func parse(_ text: String) -> [String]? {
        var scalars = Substring(text).unicodeScalars[...]
        if scalars.first == "[" {
            guard let equals = scalars.firstIndex(of: "="),
                  scalars[..<equals].allSatisfy({ "[]:-0123456789".unicodeScalars.contains($0) }) else { return nil }
            scalars = scalars[scalars.index(after: equals)...]
        }
        guard scalars.popFirst() == "{", scalars.popLast() == "}" else { return nil }
        var elements: [String] = []
        while !scalars.isEmpty {
            var element = String.UnicodeScalarView()
            if scalars.first == "\"" {
                scalars.removeFirst()
                var closed = false
                while let scalar = scalars.popFirst() {
                    if scalar == "\\" {
                        guard let escaped = scalars.popFirst() else { return nil }
                        element.append(escaped)
                    } else if scalar == "\"" {
                        closed = true
                        break
                    } else {
                        element.append(scalar)
                    }
                }
                guard closed else { return nil }
                elements.append(String(element))
            } else {
                while let scalar = scalars.first, scalar != "," {
                    guard scalar != "{", scalar != "}", scalar != "\"" else { return nil }
                    element.append(scalar)
                    scalars.removeFirst()
                }
                let bare = String(element)
                guard !bare.isEmpty else { return nil }
                if bare.uppercased() != "NULL" { elements.append(bare) }
            }
            if let next = scalars.popFirst() {
                guard next == ",", !scalars.isEmpty else { return nil }
            }
        }
        return elements
    }
}
