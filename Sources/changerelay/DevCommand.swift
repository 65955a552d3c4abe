import ArgumentParser
import Configuration
import Decoding
import EmbeddedPostgres
import Foundation
import Logging
import Pipeline
import Replication
import Schema

struct Dev: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The embedded default: a local Postgres it starts itself, the schema, sample rows, and their changes streaming.")

    @Option(help: "Where the local cluster lives (kept between runs).")
    var directory = ".dev/postgres"

    @Option(help: "Output plugin to stream with.")
    var plugin: Config.Plugin = .pgoutput

    func run() throws {
        bootstrapLogging()
        Signals.install()
        let logger = Logger(label: "changerelay.dev")
        do {
            let absolute = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
            let cluster = try LocalPostgres(.init(directory: absolute, removeOnStop: false, fsync: true))
            try cluster.start()
            defer { try? cluster.stop() }
            logger.info("local Postgres running", metadata: ["url": "\(cluster.url)", "data": "\(cluster.dataDirectory)"])
            guard let sql = SchemaInstaller.locateSQLDirectory() else { throw SetupError.sqlDirectoryMissing }
            let connection = try cluster.connect()
            let applied = try SchemaInstaller(sqlDirectory: sql).apply(to: connection)
            logger.info("schema applied", metadata: ["migrations": "\(applied.count)"])
            let settings = ChangeStream.Settings(databaseURL: cluster.url, plugin: plugin, slot: nil,
                                                 publication: "changerelay_pub", statusInterval: .seconds(1))
            let output = FileOutput(descriptor: 1)
            var writer = JSONWriter()
            logger.notice("streaming the changes of the local database; Ctrl-C stops", metadata: [
                "try": "psql '\(cluster.url)' -c \"UPDATE jobs SET status = 'failed'\"",
            ])
            var samplesWritten = false
            try ChangeStream(settings, logger: logger).run(shouldStop: { Signals.shouldStop }, onStreaming: {
                guard !samplesWritten else { return }
                samplesWritten = true
                DevSamples.write(to: cluster, logger: logger)
            }) { transaction in
                _ = try output.writeLines(of: transaction, using: &writer)
                return .proceed
            }
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }
}

/// Sample rows for the seed tables, so that `dev` shows changes flowing at once.
enum DevSamples {
    static func write(to cluster: LocalPostgres, logger: Logger) {
        do {
            let connection = try cluster.connect()
            try connection.execute("""
                INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id, status)
                VALUES ('dev_clerk', 'dev_agent', 'dev_elevenlabs_' || floor(random() * 1e6)::text, 'unknown');
                INSERT INTO jobs (user_id, title, status) VALUES (gen_random_uuid(), 'Sample job', 'pending');
                UPDATE jobs SET status = 'completed' WHERE title = 'Sample job' AND status = 'pending';
                INSERT INTO habit_tracker (child_name, week_start_date, week_period, habits, user_id)
                VALUES ('Ada', date_trunc('week', now())::date, 'morning',
                        '[{"name": "Brush teeth", "time_period": "morning", "times": ["done", "", "missed", null, "partial", "", ""]}]',
                        gen_random_uuid());
                """)
        } catch {
            logger.error("could not write the sample rows", metadata: ["error": "\(error)"])
        }
    }
}
