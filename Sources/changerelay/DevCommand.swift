import Admin
import ArgumentParser
import RelayConfiguration
import Decoding
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Logging
import Replication
import Schema
import ServiceAssembly

struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The embedded default: a local Postgres it starts itself, the schema, the whole service, "
            + "a local receiver standing in for the edge functions, and sample rows flowing through.")

    @Option(help: """
        Where the local cluster lives, kept between runs with the slot and what was sent (default: .dev/postgres; \
        run as root from a directory the postgres user cannot reach, /var/tmp/changerelay-dev/… instead).
        """)
    var directory: String?

    @Option(help: "Output plugin to stream with.")
    var plugin: Config.Plugin = .pgoutput

    func run() async throws {
        ProcessSignals.prepare()
        StartupStop.install()
        let defaults: Config
        do { defaults = try Self.defaults() } catch { throw failure(error.description) }
        bootstrapLogging(defaults)
        let logger = Logger(label: "changerelay.dev")
        do {
            // Before the server starts: without them it would start only to be stopped.
            guard let sql = SchemaInstaller.locateSQLDirectory() else { throw SetupError.sqlDirectoryMissing }
            let cluster = try LocalPostgres(.init(directory: Self.clusterDirectory(directory, logger: logger),
                                                  removeOnStop: false, fsync: true))
            try cluster.start()
            defer { try? cluster.stop() }
            logger.info("local Postgres running", metadata: ["url": "\(cluster.url)", "data": "\(cluster.dataDirectory)"])
            try StartupStop.check()
            let connection = try cluster.connect()
            let applied = try SchemaInstaller(sqlDirectory: sql).apply(to: connection)
            // One slot per plugin: switching plugins between runs must not meet a slot of the other.
            let slot = "changerelay_dev_" + plugin.rawValue
            try Self.dropOtherPluginsSlots(keeping: slot, on: connection, logger: logger)
            try SchemaInstaller.ensureSlot(slot, plugin: plugin, on: connection)
            logger.info("schema applied", metadata: ["migrations": "\(applied.count)", "slot": "\(slot)"])

            let receiver = try LocalReceiver(behavior: .dynamic { request in
                DevReceiverOutput.print(request)
                return .status(200, body: #"{"ok":true}"#, headers: [("Content-Type", "application/json")])
            })
            defer { receiver.stop() }
            let baseURL = receiver.url(path: "/functions/v1")
            // A key made up for this run: the local receiver accepts anything, and nothing real can leak.
            let service = try ChangeRelayService(
                Self.configuration(defaults, url: cluster.url, slot: slot, plugin: plugin, functionsBaseURL: baseURL),
                credentials: ["service_key": UUID().uuidString], metrics: .process)
            logger.warning("""
                dev allows webhooks to private addresses (webhooks.allow_private_targets = true) so that they reach \
                the local receiver; never run a production service that way
                """)
            DevSamples.write(to: connection, webhookURL: receiver.url(path: "/webhooks"), logger: logger)
            logger.notice("the service is running against the local database; Ctrl-C stops", metadata: [
                "edge_functions": "\(baseURL)",
                // A new job each time: the rate limit skips a second run for the same job and status within the hour.
                "try": .string("psql '\(cluster.url)' -c \"INSERT INTO jobs (user_id, title, status) VALUES ('\(DevSamples.user)', 'Try me', 'pending')\" "
                    + "-c \"UPDATE jobs SET status = 'completed' WHERE title = 'Try me' AND status = 'pending'\""),
            ])
            try StartupStop.check()
            try await service.run()
        } catch is StartupStop {
            logger.notice("asked to stop during start-up; the local Postgres is stopped")
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }

    /// `requested` as an absolute path, or the default. Run as root, the cluster runs as the
    /// postgres user: a default under a directory closed to it (a checkout in /root) moves to
    /// /var/tmp, under a name made from the checkout's path so each keeps its own; a directory
    /// asked for by name is used as it is, and refused by `LocalPostgres` if it cannot be.
    static func clusterDirectory(_ requested: String?, logger: Logger) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        if let requested { return requested.hasPrefix("/") ? requested : cwd + "/" + requested }
        let local = cwd + "/.dev/postgres"
        guard !LocalPostgres.serverCanReach(cwd) else { return local }
        // One directory per checkout: a `-` of the path doubled, so /a-b and /a/b differ.
        let name = cwd.replacingOccurrences(of: "-", with: "--").split(separator: "/").joined(separator: "-")
        let moved = "/var/tmp/changerelay-dev/" + (name.isEmpty ? "root" : name)
        logger.notice("the postgres user cannot reach \(local), so the local cluster lives in \(moved)",
                      metadata: ["hint": "--directory chooses another place"])
        return moved
    }

    /// The slot of the other plugin is dropped: its position is where that plugin's last
    /// run left it, and a later run with it would read again what the runs in between
    /// planned, stopping on their idempotency keys.
    static func dropOtherPluginsSlots(keeping slot: String, on connection: PostgresConnection, logger: Logger) throws {
        let dropped = try connection.query("""
            SELECT slot_name, pg_drop_replication_slot(slot_name) FROM pg_replication_slots
            WHERE slot_name LIKE 'changerelay\\_dev\\_%' AND slot_name <> $1 AND NOT active
            """, [slot]).rows.compactMap { $0[0] }
        for name in dropped {
            logger.notice("dropped the other plugin's slot, which would read again what this one plans", metadata: ["slot": "\(name)"])
        }
    }

    /// The defaults with only the environment's `CHANGERELAY_LOG_*` and `CHANGERELAY_ADMIN_*`: dev
    /// points everything else at what it starts itself, but how it logs and where its admin
    /// server listens stay the developer's choice.
    static func defaults() throws(ConfigError) -> Config {
        try Config.load(path: nil, environment: Config.processEnvironment().filter {
            $0.key.hasPrefix("CHANGERELAY_LOG_") || $0.key.hasPrefix("CHANGERELAY_ADMIN_")
        })
    }

    /// `defaults`, pointed at the local cluster and receiver, with every seed handler on
    /// (the dual-write sync applying) and a one-second status interval, so that what a
    /// developer does shows at once.
    static func configuration(_ defaults: Config, url: String, slot: String, plugin: Config.Plugin, functionsBaseURL: String)
        -> Config
    {
        var config = defaults
        config.source.databaseURL = url
        config.stateDatabaseURL = url
        config.source.slot = slot
        config.source.plugin = plugin
        config.source.publication = "changerelay_pub"
        config.source.statusInterval = .seconds(1)
        config.functions.baseURL = functionsBaseURL
        config.conversationChecks.enabled = true
        config.automations.enabled = true
        config.dualWrite.mode = .apply
        config.webhooks.allowPrivateTargets = true
        config.delivery.concurrency = 16
        return config
    }
}

/// One JSON line per request the stand-in edge functions receive, on standard output:
/// what a developer watches to see the handlers work.
enum DevReceiverOutput {
    static func print(_ request: RecordedRequest) {
        var writer = JSONWriter(capacity: request.body.count + 256)
        writer.beginObject()
        writer.key("received")
        writer.string(request.method + " " + request.target)
        writer.key("idempotency_key")
        if let key = request.header("Idempotency-Key") { writer.string(key) } else { writer.null() }
        writer.key("body")
        if let body = try? JSONParser.parse(request.body) { writer.value(body) } else { writer.string(request.bodyText) }
        writer.endObject()
        writer.newline()
        FileHandle.standardOutput.write(Data(writer.bytes))
    }
}

/// Sample rows for the seed tables, so `dev` shows a conversation check, an automation
/// run and a webhook fan-out end to end at once: a conversation with an ElevenLabs id, a
/// workflow that fires when a job completes, a job that completes, a webhook config that
/// wants every event (pointed at the local receiver), a chat message, and two incoming
/// messages of one conversation, flushed together when their window closes.
enum DevSamples {
    static let user = "d0000000-0000-4000-8000-000000000001"
    static let workflow = "d0000000-0000-4000-8000-0000000000f1"

    static func write(to connection: PostgresConnection, webhookURL: String, logger: Logger) {
        do {
            try connection.query("""
                INSERT INTO webhook_configs (name, url, secret, events)
                VALUES ('dev-receiver', $1, 'whsec_' || encode(decode(md5(random()::text), 'hex'), 'base64'), '{*}')
                ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, is_active = true
                """, [webhookURL])
            try connection.execute("""
                INSERT INTO automation_workflows (id, user_id, name, trigger_type, trigger_config, is_active, status)
                VALUES ('\(workflow)', '\(user)', 'Notify the customer when a job completes', 'job_status_changed',
                        '{"conditions": [{"field": "status", "value": "completed"}]}', true, 'active')
                ON CONFLICT (id) DO NOTHING;
                INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id, status)
                VALUES ('dev_clerk', 'dev_agent', 'dev_elevenlabs_' || floor(random() * 1e6)::text, 'unknown');
                INSERT INTO jobs (user_id, title, status) VALUES ('\(user)', 'Sample job', 'pending');
                UPDATE jobs SET status = 'completed' WHERE title = 'Sample job' AND status = 'pending';
                INSERT INTO habit_tracker (child_name, week_start_date, week_period, habits, user_id)
                VALUES ('Ada', date_trunc('week', now())::date, 'morning',
                        '[{"name": "Brush teeth", "time_period": "morning", "times": ["done", "", "missed", null, "partial", "", ""]}]',
                        '\(user)');
                WITH session AS (INSERT INTO chat_sessions (user_id) VALUES ('\(user)') RETURNING id)
                INSERT INTO chat_messages (session_id, role, content) SELECT id, 'user', 'Plan a weekend in Lisbon' FROM session;
                INSERT INTO buffered_messages (conversation_id, content, message_type) VALUES (1, 'Hi!', 'incoming');
                INSERT INTO buffered_messages (conversation_id, content, message_type)
                VALUES (1, 'Is the Lisbon trip still on?', 'incoming');
                """)
        } catch {
            logger.error("could not write the sample rows", metadata: ["error": "\(error)"])
        }
    }
}
