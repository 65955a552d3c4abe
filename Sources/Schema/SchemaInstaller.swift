import RelayConfiguration
import Core
import Foundation
import Replication

/// Applies `sql/` in order and creates the slot: what `changerelay setup` does.
/// Every file is idempotent, so running setup again changes nothing.
public struct SchemaInstaller {
    public var sqlDirectory: String

    public init(sqlDirectory: String) { self.sqlDirectory = sqlDirectory }

    /// `CHANGERELAY_SQL_DIR`, then `sql/` beside the repository the binary was built in, then `./sql`.
    public static func locateSQLDirectory(executablePath: String = CommandLine.arguments[0]) -> String? {
        // A folder named on purpose is the one meant: falling back past it would install
        // whatever sql/ happens to lie near the binary.
        if let configured = ProcessInfo.processInfo.environment["CHANGERELAY_SQL_DIR"] {
            return FileManager.default.fileExists(atPath: configured + "/001_changerelay_schema.sql") ? configured : nil
        }
        var candidates: [String] = []
        var directory = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("sql").path)
            directory.deleteLastPathComponent()
        }
        candidates.append(FileManager.default.currentDirectoryPath + "/sql")
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/001_changerelay_schema.sql") }
    }

    /// The forward migrations, in order: `NNN_name.sql`, not the `.rollback.sql` beside them.
    public func migrations() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: sqlDirectory)
            .filter { $0.hasSuffix(".sql") && !$0.hasSuffix(".rollback.sql") && $0.first?.isNumber == true }
            .sorted()
    }

    /// Applies every migration, each in its own transaction; returns the files applied.
    @discardableResult
    /// `starting` is told each migration before it runs (its index from 0, the count, its
    /// file): a migration that rewrites a large table can take minutes.
    public func apply(to connection: PostgresConnection,
                      starting: (_ index: Int, _ count: Int, _ file: String) -> Void = { _, _, _ in }) throws -> [String] {
        let files = try migrations()
        guard files.first == "001_changerelay_schema.sql" else { throw SetupError.sqlDirectoryMissing }
        // Every migration runs again on each setup: its `IF NOT EXISTS` notices ("relation …
        // already exists, skipping", 84 lines a run) went to stderr raw, between the log
        // lines, unreadable as JSON logs. The warnings a migration raises on purpose stay.
        try connection.execute("SET client_min_messages = warning")
        for (index, file) in files.enumerated() {
            starting(index, files.count, file)
            let sql = try String(contentsOfFile: sqlDirectory + "/" + file, encoding: .utf8)
            do {
                try connection.execute("BEGIN;\n" + sql + "\nCOMMIT;")
            } catch {
                _ = try? connection.execute("ROLLBACK")
                throw SetupError.migrationFailed(file: file, underlying: error)
            }
        }
        return files
    }

    /// Creates the logical slot unless it exists; a slot with another plugin is an error.
    /// Returns true when it created one.
    @discardableResult
    public static func ensureSlot(_ slot: String, plugin: Config.Plugin, on connection: PostgresConnection)
        throws -> Bool
    {
        let existing = try connection.query("""
            SELECT plugin, slot_type, database, database IS DISTINCT FROM current_database() AS elsewhere
            FROM pg_replication_slots WHERE slot_name = $1
            """, [slot])
        if let found = existing.value("plugin") ?? existing.value("slot_type") {
            // Slot names are the cluster's, not a database's: one made for another database
            // would be accepted here and refused by the stream.
            guard existing.value("elsewhere") != "t" else {
                throw SetupError.slotInAnotherDatabase(slot: slot, database: existing.value("database") ?? "none (a physical slot)")
            }
            guard found == plugin.rawValue else {
                throw SetupError.slotPluginMismatch(slot: slot, existing: found, configured: plugin.rawValue)
            }
            return false
        }
        try connection.query("SELECT pg_create_logical_replication_slot($1, $2)", [slot, plugin.rawValue])
        return true
    }
}

extension SchemaInstaller {
    /// The publication `sql/004` creates and keeps.
    public static let defaultPublication = "changerelay_pub"

    /// A configured publication of another name gets the members of `changerelay_pub`
    /// (`sql/004`'s, row filters included) that it lacks: created when missing, added to
    /// otherwise; members added by hand stay. Returns the members added.
    public static func ensurePublication(_ name: String, on connection: PostgresConnection) throws -> [String] {
        guard name != defaultPublication else { return [] }
        let exists = try connection.query("SELECT EXISTS (SELECT FROM pg_publication WHERE pubname = $1) AS found", [name])
            .value("found") == "t"
        let missing = try connection.query("""
            SELECT format('%I.%I', d.schemaname, d.tablename) || coalesce(' WHERE (' || d.rowfilter || ')', '') AS member
            FROM pg_publication_tables d
            WHERE d.pubname = $2
              AND NOT EXISTS (SELECT FROM pg_publication_tables o
                              WHERE o.pubname = $1 AND o.schemaname = d.schemaname AND o.tablename = d.tablename)
            ORDER BY d.schemaname, d.tablename
            """, [name, defaultPublication]).rows.compactMap { $0[0] }
        if !exists {
            try connection.execute("CREATE PUBLICATION \(quoteIdentifier(name))"
                + (missing.isEmpty ? "" : " FOR TABLE " + missing.joined(separator: ", ")))
        } else {
            for member in missing { try connection.execute("ALTER PUBLICATION \(quoteIdentifier(name)) ADD TABLE \(member)") }
        }
        return missing
    }
}

public enum SetupError: Error, CustomStringConvertible {
    case migrationFailed(file: String, underlying: PostgresError)
    case slotPluginMismatch(slot: String, existing: String, configured: String)
    case slotInAnotherDatabase(slot: String, database: String)
    case sqlDirectoryMissing
    /// `alsoMissing`: the other migrations the database lacks, which the next start would
    /// refuse one at a time.
    case migrationMissing(file: String, neededBy: String, alsoMissing: [String] = [])

    public var description: String {
        switch self {
        case .migrationFailed(let file, let underlying):
            "migration \(file) failed (rolled back): \(underlying.kind == .connectionFailed ? underlying.description : underlying.message)"
        case .slotPluginMismatch(let slot, let existing, let configured):
            "slot '\(slot)' uses plugin \(existing) but source.plugin is \(configured); drop it with "
                + "SELECT pg_drop_replication_slot('\(slot)') or set source.plugin = \"\(existing)\""
        case .slotInAnotherDatabase(let slot, let database):
            "slot '\(slot)' belongs to database \(database), not this one; set source.slot to another name, "
                + "or drop it there with SELECT pg_drop_replication_slot('\(slot)') if it is unused"
        case .sqlDirectoryMissing:
            "cannot find the migrations: CHANGERELAY_SQL_DIR (or setup's --sql-dir) must name the folder holding "
                + "001_changerelay_schema.sql (without either, the sql/ beside the binary or in the working directory)"
        case .migrationMissing(let file, let neededBy, let alsoMissing):
            "\(neededBy) needs sql/\(file), which this database has not had"
                + (alsoMissing.isEmpty ? "" : " (nor " + alsoMissing.map { "sql/" + $0 }.joined(separator: ", ") + ")")
                + ": run changerelay setup as a superuser (or the database's owner); the service's own role cannot"
        }
    }
}
