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
        var candidates: [String] = []
        if let configured = ProcessInfo.processInfo.environment["CHANGERELAY_SQL_DIR"] { candidates.append(configured) }
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
        let existing = try connection.query(
            "SELECT plugin, slot_type FROM pg_replication_slots WHERE slot_name = $1", [slot])
        if let found = existing.value("plugin") {
            guard found == plugin.rawValue else {
                throw SetupError.slotPluginMismatch(slot: slot, existing: found, configured: plugin.rawValue)
            }
            return false
        }
        try connection.query("SELECT pg_create_logical_replication_slot($1, $2)", [slot, plugin.rawValue])
        return true
    }
}

public enum SetupError: Error, CustomStringConvertible {
    case migrationFailed(file: String, underlying: PostgresError)
    case slotPluginMismatch(slot: String, existing: String, configured: String)
    case sqlDirectoryMissing
    case migrationMissing(file: String, neededBy: String)

    public var description: String {
        switch self {
        case .migrationFailed(let file, let underlying):
            "migration \(file) failed (rolled back): \(underlying.kind == .connectionFailed ? underlying.description : underlying.message)"
        case .slotPluginMismatch(let slot, let existing, let configured):
            "slot '\(slot)' uses plugin \(existing) but source.plugin is \(configured); drop it with "
                + "SELECT pg_drop_replication_slot('\(slot)') or set source.plugin = \"\(existing)\""
        case .sqlDirectoryMissing:
            "cannot find the sql/ directory; set CHANGERELAY_SQL_DIR to the folder holding 001_changerelay_schema.sql"
        case .migrationMissing(let file, let neededBy):
            "\(neededBy) needs sql/\(file), which this database has not had: run changerelay setup"
        }
    }
}
