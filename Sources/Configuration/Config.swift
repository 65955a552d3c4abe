#if canImport(Glibc)
import Glibc
#endif
import Logging
import Scheduling

/// ChangeRelay's configuration: one TOML file, every key overridable by
/// `CHANGERELAY_<SECTION>_<KEY>`. Reading it validates everything at once.
public struct Config: Sendable {
    public enum Plugin: String, Sendable { case pgoutput, wal2json }
    public enum DualWriteMode: String, Sendable { case off, log, shadow, apply }

    public struct Source: Sendable {
        public var databaseURL: String?
        public var plugin: Plugin
        public var slot: String
        public var publication: String
        public var statusInterval: Duration
    }

    public struct Functions: Sendable {
        public var baseURL: String?
        public var serviceKeyFile: String?
    }

    public struct ConversationChecks: Sendable {
        public var enabled: Bool
        public var maxAttempts: Int
        public var retryDelay: Duration
    }

    public struct Automations: Sendable {
        public var enabled: Bool
        public var maxAttempts: Int
        public var rateLimitWindow: Duration
    }

    public struct DualWrite: Sendable {
        public var mode: DualWriteMode
        /// Whether the service deletes expired `idempotency_log` rows (the seed's hourly pg_cron
        /// job, now a built-in scheduled job); false when `cleanup_interval_s = 0` leaves that to
        /// something else. Any other value keeps the job on, at minute 0 of every hour.
        public var cleanupEnabled: Bool
    }

    public struct Webhooks: Sendable {
        public var enabled: Bool
        public var allowPrivateTargets: Bool
        /// At most this many deliveries to one endpoint are in flight at once.
        public var maxInFlightPerEndpoint: Int
        /// The operator's own event rules (`webhooks.rules`), in the order given.
        public var rules: [WebhookRule]
    }

    public struct MessageBuffer: Sendable {
        public var enabled: Bool
        public var duration: Duration
        public var maxSize: Int
        public var maxAge: Duration
        /// Between the three tries of a flush.
        public var retryDelay: Duration
    }

    public struct Delivery: Sendable {
        public var concurrency: Int
        public var timeout: Duration
        /// Succeeded deliveries (and their attempts) older than this many days are deleted hourly.
        public var retentionDays: Int
    }

    public struct Log: Sendable {
        public enum Format: String, Sendable { case plain, json }

        public var format: Format
        public var level: Logger.Level
    }

    /// A `[[schedules]]` entry: one SQL statement run against the source database whenever
    /// `cron` (UTC) is due, once across all running instances.
    public struct Schedule: Sendable {
        public var name: String
        public var cron: CronSchedule
        public var sql: String
        /// How long one run may take (`timeout_ms`, the session's `statement_timeout`); none
        /// when unset, as pg_cron had none. A run past it is cancelled by the server and
        /// recorded as failed, so a job that hangs (a lock it waits for) lets the others,
        /// which run one at a time, and shutdown go on.
        public var timeout: Duration?
    }

    public var source: Source
    /// Where effects and checkpoints are written; the source database unless set.
    public var stateDatabaseURL: String?
    public var functions: Functions
    public var conversationChecks: ConversationChecks
    public var automations: Automations
    public var dualWrite: DualWrite
    public var webhooks: Webhooks
    public var messageBuffer: MessageBuffer
    public var delivery: Delivery
    public var adminListen: String
    /// The file holding the admin API's bearer token; required when `adminListen` is not loopback.
    public var adminTokenFile: String?
    public var log: Log
    public var pipeline: Pipeline
    public var echo: Echo
    /// The `[[schedules]]` entries, in file order.
    public var schedules: [Schedule]
    /// `CHANGERELAY_*` variables that name no section, no key and nothing else ChangeRelay
    /// reads (`CHANGERELAY_WEBHOOK_ALLOW_PRIVATE_TARGETS`, one letter short): a command logs
    /// each as a warning. Not an error, as scripts around the service may keep their own
    /// variables under the same prefix.
    public var unrecognizedVariables: [String] = []

    /// The `CHANGERELAY_*` variables read outside the configuration's sections.
    public static let otherVariables: Set<String> = [
        "CHANGERELAY_SERVICE_KEY", "CHANGERELAY_SQL_DIR", "CHANGERELAY_PG_BINDIR", "CHANGERELAY_CRASH_POINT",
    ]

    public struct Pipeline: Sendable {
        /// A batch of source transactions commits once it holds this many changes…
        public var batchMaxChanges: Int
        /// …or once its first transaction has waited this long.
        public var batchMaxAge: Duration
        /// Bytes of buffered changes past which large transactions move to spill files.
        public var spillThreshold: Int
        /// Where spill files go; nil for `$TMPDIR` (or /tmp).
        public var spillDirectory: String?
        /// How often to write a heartbeat message into the source's WAL; nil for never.
        public var heartbeatInterval: Duration?
    }

    /// `[handlers.echo]`: one delivery per change of `tables` to `url`.
    public struct Echo: Sendable {
        public var url: String?
        public var tables: [String]
        public var maxAttempts: Int
        /// Exponential backoff with full jitter from 500 ms, capped here.
        public var retryCap: Duration
    }

    /// Reads `path` (when given) and the environment.
    public static func load(path: String?, environment: [String: String] = Config.processEnvironment())
        throws(ConfigError) -> Config
    {
        var values: [String: TOMLValue] = [:]
        var schedules: [Schedule] = []
        if let path {
            let document: TOMLDocument
            do {
                document = try TOMLDocument(parsing: try readFile(path))
            } catch let error as TOMLError {
                throw ConfigError(key: nil, origin: "\(path) line \(error.line)", reason: error.reason)
            } catch let error as ConfigError {
                throw error
            } catch {
                throw ConfigError(key: nil, origin: path, reason: "\(error)")
            }
            for (name, entry) in document.values.sorted(by: { $0.value.line < $1.value.line }) {
                let origin = "\(path) line \(entry.line)"
                guard let key = ConfigSchema.byPath[name] else {
                    throw ConfigError(key: name, origin: origin, reason: "unknown key\(suggestion(for: name))")
                }
                let elementOrigins = document.elementLines[name, default: []].map { "\(path) line \($0)" }
                values[name] = try ConfigSchema.validate(entry.value, for: key, origin: origin, elementOrigins: elementOrigins)
            }
            for (name, tables) in document.arrayTables.sorted(by: { $0.value[0].line < $1.value[0].line }) {
                guard name == ScheduleEntries.key else {
                    throw ConfigError(key: name, origin: "\(path) line \(tables[0].line)",
                                      reason: "unknown array of tables [[\(name)]]; the only one is [[\(ScheduleEntries.key)]]")
                }
                schedules = try ScheduleEntries.read(tables, path: path)
            }
        }
        try applyEnvironment(environment, to: &values)
        var config = Config(values, schedules: schedules)
        config.unrecognizedVariables = unrecognizedVariables(in: environment)
        return config
    }

    /// Overrides from `CHANGERELAY_<SECTION>_<KEY>`. A variable naming a known section
    /// but no known key is an error: a typo there would otherwise be silently ignored.
    static func applyEnvironment(_ environment: [String: String], to values: inout [String: TOMLValue])
        throws(ConfigError)
    {
        let byName = Dictionary(uniqueKeysWithValues: ConfigSchema.keys.map { ($0.environmentName, $0) })
        for (name, text) in environment.sorted(by: { $0.key < $1.key }) where name.hasPrefix("CHANGERELAY_") {
            let origin = "environment \(name)"
            if name.hasPrefix("CHANGERELAY_SCHEDULES_") {
                throw ConfigError(key: name, origin: origin,
                                  reason: "schedules are set in the configuration file only, as [[schedules]] entries")
            }
            if let key = byName[name] {
                values[key.path] = try ConfigSchema.validate(environmentText: text, for: key, origin: origin)
            } else if sectionPrefixes.contains(where: { name.hasPrefix($0) }) {
                throw ConfigError(key: name, origin: origin, reason: "unknown configuration variable")
            }
        }
    }

    /// `CHANGERELAY_SOURCE_`, `CHANGERELAY_HANDLERS_ECHO_`, …
    private static let sectionPrefixes = Set(ConfigSchema.keys.map(\.environmentPrefix))

    static func unrecognizedVariables(in environment: [String: String]) -> [String] {
        environment.keys.filter { name in
            name.hasPrefix("CHANGERELAY_") && !otherVariables.contains(name)
                && !sectionPrefixes.contains(where: { name.hasPrefix($0) })
        }.sorted()
    }

    init(_ values: [String: TOMLValue], schedules: [Schedule]) {
        func value(_ path: String) -> TOMLValue? { values[path] ?? ConfigSchema.byPath[path]?.defaultValue }
        func string(_ path: String) -> String? {
            if case .string(let text)? = value(path) { return text }
            return nil
        }
        func integer(_ path: String) -> Int {
            if case .integer(let number)? = value(path) { return Int(number) }
            preconditionFailure("\(path) has an integer default")
        }
        func boolean(_ path: String) -> Bool {
            if case .boolean(let flag)? = value(path) { return flag }
            preconditionFailure("\(path) has a boolean default")
        }
        /// Without the line break a secret's file (or `kubectl create secret --from-file`)
        /// ends with, which libpq read as part of the database name.
        func databaseURL(_ path: String) -> String? {
            string(path).map { String($0.reversed().drop { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }.reversed()) }
        }
        func strings(_ path: String) -> [String] {
            guard case .array(let elements)? = value(path) else { return [] }
            return elements.compactMap { if case .string(let text) = $0 { text } else { nil } }
        }
        source = Source(
            databaseURL: databaseURL("source.database_url"),
            plugin: Plugin(rawValue: string("source.plugin")!)!,
            slot: string("source.slot")!,
            publication: string("source.publication")!,
            statusInterval: .milliseconds(integer("source.status_interval_ms")))
        stateDatabaseURL = databaseURL("state.database_url") ?? source.databaseURL
        functions = Functions(baseURL: string("functions.base_url"), serviceKeyFile: string("functions.service_key_file"))
        conversationChecks = ConversationChecks(
            enabled: boolean("conversation_checks.enabled"),
            maxAttempts: integer("conversation_checks.max_attempts"),
            retryDelay: .milliseconds(integer("conversation_checks.retry_delay_ms")))
        automations = Automations(
            enabled: boolean("automations.enabled"),
            maxAttempts: integer("automations.max_attempts"),
            rateLimitWindow: .seconds(integer("automations.rate_limit_window_s")))
        dualWrite = DualWrite(mode: DualWriteMode(rawValue: string("dual_write.mode")!)!,
                              cleanupEnabled: integer("dual_write.cleanup_interval_s") != 0)
        webhooks = Webhooks(enabled: boolean("webhooks.enabled"),
                            allowPrivateTargets: boolean("webhooks.allow_private_targets"),
                            maxInFlightPerEndpoint: integer("webhooks.max_in_flight_per_endpoint"),
                            rules: strings("webhooks.rules").map { text in
                                do { return try WebhookRule(parsing: text) } catch {
                                    preconditionFailure("webhooks.rules was validated when read: \(error)")
                                }
                            })
        messageBuffer = MessageBuffer(
            enabled: boolean("message_buffer.enabled"),
            duration: .milliseconds(integer("message_buffer.duration_ms")),
            maxSize: integer("message_buffer.max_size"),
            maxAge: .milliseconds(integer("message_buffer.max_age_ms")),
            retryDelay: .milliseconds(integer("message_buffer.retry_delay_ms")))
        delivery = Delivery(concurrency: integer("delivery.concurrency"),
                            timeout: .milliseconds(integer("delivery.timeout_ms")),
                            retentionDays: integer("delivery.retention_days"))
        adminListen = string("admin.listen")!
        adminTokenFile = string("admin.token_file")
        log = Log(format: Log.Format(rawValue: string("log.format")!)!, level: Logger.Level(rawValue: string("log.level")!)!)
        let heartbeat = integer("pipeline.heartbeat_interval_ms")
        pipeline = Pipeline(batchMaxChanges: integer("pipeline.batch_max_changes"),
                            batchMaxAge: .milliseconds(integer("pipeline.batch_max_age_ms")),
                            spillThreshold: integer("pipeline.spill_threshold_mb") << 20,
                            spillDirectory: string("pipeline.spill_directory"),
                            heartbeatInterval: heartbeat > 0 ? .milliseconds(heartbeat) : nil)
        echo = Echo(url: string("handlers.echo.url"), tables: strings("handlers.echo.tables"),
                    maxAttempts: integer("handlers.echo.max_attempts"),
                    retryCap: .milliseconds(integer("handlers.echo.retry_cap_ms")))
        self.schedules = schedules
    }

    /// The source URL, or an error naming the key when it is not set anywhere.
    public func requireSourceURL() throws(ConfigError) -> String {
        guard let url = source.databaseURL else {
            throw ConfigError(key: "source.database_url", origin: "configuration",
                              reason: "not set; put it in the file or set CHANGERELAY_SOURCE_DATABASE_URL")
        }
        return url
    }

    public static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    private static func suggestion(for name: String) -> String {
        let section = name.split(separator: ".").first.map(String.init) ?? ""
        if section == ScheduleEntries.key {
            return "; a scheduled job is a [[\(ScheduleEntries.key)]] entry, with two brackets: [\(section)] is a section"
        }
        let known = ConfigSchema.keys.filter { $0.section == section }.map(\.name)
        if known.isEmpty {
            let sections = Array(Set(ConfigSchema.keys.map(\.section))).sorted()
            return "; known sections: \(sections.joined(separator: ", "))"
        }
        return "; [\(section)] accepts \(known.joined(separator: ", "))"
    }

    private static func readFile(_ path: String) throws(ConfigError) -> String {
        guard let file = fopen(path, "rb") else {
            throw ConfigError(key: nil, origin: path, reason: "cannot read the file: \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        // fopen opens a directory too, and reading it gives nothing: an empty configuration.
        // (A pipe, `--config <(…)`, is read like a file.)
        var status = stat()
        guard fstat(fileno(file), &status) == 0, status.st_mode & S_IFMT != S_IFDIR else {
            throw ConfigError(key: nil, origin: path, reason: "a directory, not a configuration file")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count == 0 {
                guard ferror(file) == 0 else {
                    throw ConfigError(key: nil, origin: path, reason: "cannot read the file: \(String(cString: strerror(errno)))")
                }
                break
            }
            bytes += chunk[..<count]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConfigError(key: nil, origin: path, reason: "the file is not valid UTF-8")
        }
        return text
    }
}
