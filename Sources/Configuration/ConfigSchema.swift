import Core
/// Every key the configuration accepts, with its type and default. The typed
/// `Config` is read through this table, so an unknown key or a bad value can be
/// reported by name before anything starts.
struct ConfigKey: Sendable {
    enum Kind: Sendable {
        case string
        case strings
        case integer(ClosedRange<Int64>)
        case boolean
        case choice([String])
        /// An array of `WebhookRule`s in their compact syntax; from the environment, comma-separated
        /// (commas inside double quotes are part of a rule).
        case webhookRules
        /// An `http://` or `https://` URL with a host: refused at start rather than by every
        /// delivery that would go dead with it.
        case httpURL
        /// An `httpURL` that paths are appended to (`{base_url}/check-conversation`), so
        /// without a query or fragment, which would end up before the path.
        case httpBaseURL
        /// A replication slot's name as Postgres accepts it (`a-z`, `0-9`, `_`, at most 63
        /// bytes): refused before `setup` applies anything, and never cut short by the server.
        case slotName
        /// `schema.table` names, or `table` for one in `public`.
        case tableNames
        /// `host:port`, `[v6-address]:port`, or `off`.
        case listenAddress
        /// A libpq connection string. In URI form its percent escapes must be whole: a
        /// password with a bare `%` made every command say only that the connection string
        /// could not be read, naming neither the key nor the fix.
        case connectionString
    }

    var section: String
    var name: String
    var kind: Kind
    var defaultValue: TOMLValue?

    var path: String { section + "." + name }
    /// `CHANGERELAY_SOURCE_DATABASE_URL` for `source.database_url`.
    var environmentName: String { environmentPrefix + Self.environmentSpelling(name) }
    /// `CHANGERELAY_HANDLERS_ECHO_` for every key of `handlers.echo`.
    var environmentPrefix: String { "CHANGERELAY_" + Self.environmentSpelling(section) + "_" }

    private static func environmentSpelling(_ text: String) -> String {
        text.uppercased().map { $0 == "." ? "_" : String($0) }.joined()
    }
}

enum ConfigSchema {
    static let keys: [ConfigKey] = [
        ConfigKey(section: "source", name: "database_url", kind: .connectionString),
        ConfigKey(section: "source", name: "plugin", kind: .choice(["pgoutput", "wal2json"]), defaultValue: .string("pgoutput")),
        ConfigKey(section: "source", name: "slot", kind: .slotName, defaultValue: .string("changerelay")),
        ConfigKey(section: "source", name: "publication", kind: .string, defaultValue: .string("changerelay_pub")),
        ConfigKey(section: "source", name: "status_interval_ms", kind: .integer(100...3_600_000), defaultValue: .integer(10_000)),
        ConfigKey(section: "state", name: "database_url", kind: .connectionString),
        ConfigKey(section: "functions", name: "base_url", kind: .httpBaseURL),
        ConfigKey(section: "functions", name: "service_key_file", kind: .string),
        ConfigKey(section: "conversation_checks", name: "enabled", kind: .boolean, defaultValue: .boolean(true)),
        ConfigKey(section: "conversation_checks", name: "max_attempts", kind: .integer(1...100), defaultValue: .integer(3)),
        ConfigKey(section: "conversation_checks", name: "retry_delay_ms", kind: .integer(0...86_400_000), defaultValue: .integer(10_000)),
        ConfigKey(section: "automations", name: "enabled", kind: .boolean, defaultValue: .boolean(true)),
        ConfigKey(section: "automations", name: "max_attempts", kind: .integer(1...100), defaultValue: .integer(5)),
        ConfigKey(section: "automations", name: "rate_limit_window_s", kind: .integer(0...31_536_000), defaultValue: .integer(3600)),
        ConfigKey(section: "dual_write", name: "mode", kind: .choice(["off", "log", "shadow", "apply"]), defaultValue: .string("off")),
        ConfigKey(section: "dual_write", name: "cleanup_interval_s", kind: .integer(0...604_800), defaultValue: .integer(3600)),
        ConfigKey(section: "webhooks", name: "enabled", kind: .boolean, defaultValue: .boolean(true)),
        ConfigKey(section: "webhooks", name: "allow_private_targets", kind: .boolean, defaultValue: .boolean(false)),
        ConfigKey(section: "webhooks", name: "max_in_flight_per_endpoint", kind: .integer(1...1024), defaultValue: .integer(16)),
        ConfigKey(section: "webhooks", name: "rules", kind: .webhookRules, defaultValue: .array([])),
        ConfigKey(section: "message_buffer", name: "enabled", kind: .boolean, defaultValue: .boolean(true)),
        ConfigKey(section: "message_buffer", name: "duration_ms", kind: .integer(0...86_400_000), defaultValue: .integer(30_000)),
        ConfigKey(section: "message_buffer", name: "max_size", kind: .integer(1...100_000), defaultValue: .integer(50)),
        ConfigKey(section: "message_buffer", name: "max_age_ms", kind: .integer(0...86_400_000), defaultValue: .integer(300_000)),
        ConfigKey(section: "message_buffer", name: "retry_delay_ms", kind: .integer(0...86_400_000), defaultValue: .integer(5_000)),
        ConfigKey(section: "delivery", name: "concurrency", kind: .integer(1...1024), defaultValue: .integer(64)),
        ConfigKey(section: "delivery", name: "timeout_ms", kind: .integer(100...600_000), defaultValue: .integer(15_000)),
        ConfigKey(section: "delivery", name: "retention_days", kind: .integer(1...36_500), defaultValue: .integer(7)),
        ConfigKey(section: "admin", name: "listen", kind: .listenAddress, defaultValue: .string("127.0.0.1:9187")),
        ConfigKey(section: "admin", name: "token_file", kind: .string),
        ConfigKey(section: "log", name: "format", kind: .choice(["plain", "json"]), defaultValue: .string("plain")),
        ConfigKey(section: "log", name: "level", kind: .choice(["trace", "debug", "info", "notice", "warning", "error", "critical"]),
                  defaultValue: .string("info")),
        ConfigKey(section: "pipeline", name: "batch_max_changes", kind: .integer(1...1_000_000), defaultValue: .integer(1000)),
        ConfigKey(section: "pipeline", name: "batch_max_age_ms", kind: .integer(1...60_000), defaultValue: .integer(20)),
        ConfigKey(section: "pipeline", name: "spill_threshold_mb", kind: .integer(1...1_048_576), defaultValue: .integer(64)),
        ConfigKey(section: "pipeline", name: "spill_directory", kind: .string),
        ConfigKey(section: "pipeline", name: "heartbeat_interval_ms", kind: .integer(0...86_400_000), defaultValue: .integer(0)),
        ConfigKey(section: "handlers.echo", name: "url", kind: .httpURL),
        ConfigKey(section: "handlers.echo", name: "tables", kind: .tableNames, defaultValue: .array([])),
        ConfigKey(section: "handlers.echo", name: "max_attempts", kind: .integer(1...100), defaultValue: .integer(10)),
        ConfigKey(section: "handlers.echo", name: "retry_cap_ms", kind: .integer(1...86_400_000), defaultValue: .integer(60_000)),
    ]

    static let byPath: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.path, $0) })

    /// Checks a value against the key's kind; environment values arrive as text and are parsed here.
    /// `elementOrigins` name where each element of an array came from (its line in a file), when
    /// that is more precise than `origin`.
    static func validate(_ value: TOMLValue, for key: ConfigKey, origin: String, elementOrigins: [String] = [])
        throws(ConfigError) -> TOMLValue
    {
        func fail(_ reason: String) -> ConfigError { ConfigError(key: key.path, origin: origin, reason: reason) }
        switch (key.kind, value) {
        case (.string, .string(let text)):
            guard !text.isEmpty else { throw fail("must not be empty") }
            return value
        case (.choice(let choices), .string(let text)):
            guard choices.contains(text) else {
                throw fail("must be one of \(choices.joined(separator: ", ")), got '\(text)'")
            }
            return value
        case (.integer(let range), .integer(let number)):
            guard range.contains(number) else {
                throw fail("must be between \(range.lowerBound) and \(range.upperBound), got \(number)")
            }
            return value
        case (.boolean, .boolean):
            return value
        case (.strings, .array(let elements)):
            guard elements.allSatisfy({ if case .string = $0 { true } else { false } }) else {
                throw fail("must be an array of strings")
            }
            return value
        case (.webhookRules, .array(let elements)):
            let texts = elements.compactMap { if case .string(let text) = $0 { text } else { nil } }
            guard texts.count == elements.count else { throw fail("must be an array of strings") }
            try checkWebhookRules(texts, key: key, origins: texts.indices.map { $0 < elementOrigins.count ? elementOrigins[$0] : origin })
            return value
        case (.httpURL, .string(let text)):
            // Quoted redacted: a URL may carry a password or a token in its query.
            guard HTTPURLShape.isValid(text) else {
                throw fail("must be an http:// or https:// URL with a host, got '\(redactedURL(text))'")
            }
            return value
        case (.httpBaseURL, .string(let text)):
            guard HTTPURLShape.isValid(text) else {
                throw fail("must be an http:// or https:// URL with a host, got '\(redactedURL(text))'")
            }
            guard !text.contains("?"), !text.contains("#") else {
                throw fail("must have no query or fragment (each function's name is appended to its path), got '\(redactedURL(text))'")
            }
            return value
        case (.slotName, .string(let text)):
            guard !text.isEmpty, text.utf8.count <= 63,
                  text.utf8.allSatisfy({ (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F })
            else { throw fail("must be 1 to 63 lowercase letters, digits or underscores (a replication slot's name), got '\(text)'") }
            return value
        case (.tableNames, .array(let elements)):
            for element in elements {
                guard case .string(let text) = element else { throw fail("must be an array of strings") }
                let parts = text.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count <= 2, parts.allSatisfy({ !$0.isEmpty }) else {
                    throw fail("each table must be written schema.table (or table, in public), got '\(text)'")
                }
            }
            return value
        case (.listenAddress, .string(let text)):
            if text != "off" {
                do throws(ListenAddressError) { _ = try ListenAddress(parsing: text) } catch {
                    throw fail("\(error.reason) (host:port, [v6-address]:port, or off), got '\(text)'")
                }
            }
            return value
        case (.connectionString, .string(let text)):
            guard !text.isEmpty else { throw fail("must not be empty") }
            // Not quoted: the string may hold a password.
            if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://"), let problem = Self.brokenEscape(in: text) {
                throw fail(problem + " (the value is not shown: it may hold a password)")
            }
            return value
        case (.string, _), (.choice, _), (.httpURL, _), (.httpBaseURL, _), (.slotName, _), (.connectionString, _),
             (.listenAddress, _):
            throw fail("must be a string, got \(value.typeName)")
        case (.integer, _):
            throw fail("must be an integer, got \(value.typeName)")
        case (.strings, _), (.webhookRules, _), (.tableNames, _):
            throw fail("must be an array of strings, got \(value.typeName)")
        case (.boolean, _):
            throw fail("must be true or false, got \(value.typeName)")
        }
    }

    /// Why a URI's percent escapes cannot be decoded, naming the first bad one's place; nil
    /// when they all can.
    static func brokenEscape(in uri: String) -> String? {
        let bytes = Array(uri.utf8)
        func isHex(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte)
        }
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "%") {
            guard index + 2 < bytes.count, isHex(bytes[index + 1]), isHex(bytes[index + 2]) else {
                return "the '%' at byte \(index + 1) is not followed by two hex digits: "
                    + "a connection URI writes a literal % as %25 (in a password too)"
            }
            guard bytes[index + 1] != UInt8(ascii: "0") || bytes[index + 2] != UInt8(ascii: "0") else {
                return "the %00 at byte \(index + 1) encodes a NUL, which libpq refuses in a connection URI"
            }
        }
        return nil
    }

    /// A variable's text as a value of its key's type, then validated: a variable has no types,
    /// so `10`, `true` or `a,b` are read here. In the file a value must have its key's own
    /// type (`concurrency = "10"` is an error, as a typo of another kind would be).
    static func validate(environmentText text: String, for key: ConfigKey, origin: String) throws(ConfigError) -> TOMLValue {
        func fail(_ reason: String) -> ConfigError { ConfigError(key: key.path, origin: origin, reason: reason) }
        let value: TOMLValue
        switch key.kind {
        case .string, .choice, .httpURL, .httpBaseURL, .slotName, .connectionString, .listenAddress:
            value = .string(text)
        case .integer:
            guard let number = Int64(text) else { throw fail("must be an integer, got '\(text)'") }
            value = .integer(number)
        case .boolean:
            switch text.lowercased() {
            case "true", "1", "yes", "on": value = .boolean(true)
            case "false", "0", "no", "off": value = .boolean(false)
            default: throw fail("must be true or false, got '\(text)'")
            }
        case .strings, .tableNames:
            value = .array(text.split(separator: ",").map { .string($0.trimmingCharacters()) })
        case .webhookRules:
            value = .array(WebhookRule.splitList(text).map(TOMLValue.string))
        }
        return try validate(value, for: key, origin: origin)
    }

    /// Parses each rule; an error names the rule's index, its text, where it came from and what
    /// is wrong with it. The same rule twice is refused: it would deliver each change twice.
    static func checkWebhookRules(_ texts: [String], key: ConfigKey, origins: [String]) throws(ConfigError) {
        var firstIndex: [WebhookRule: Int] = [:]
        for (index, text) in texts.enumerated() {
            func fail(_ reason: String) -> ConfigError {
                ConfigError(key: key.path, origin: origins[index],
                            reason: "rule [\(index)] \(quotedExcerpt(text.unicodeScalars, limit: 120)): \(reason)")
            }
            let rule: WebhookRule
            do { rule = try WebhookRule(parsing: text) } catch { throw fail(error.reason) }
            if let first = firstIndex[rule] { throw fail("the same rule as rule [\(first)]; remove one") }
            firstIndex[rule] = index
        }
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
