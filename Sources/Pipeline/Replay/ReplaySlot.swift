import RelayConfiguration
import Core
import Replication

/// The slot a replay reads, as `pg_replication_slots` shows it, and whether it may be read.
public struct ReplaySlot: Sendable, Equatable {
    public var name: String
    public var isLogical: Bool
    public var plugin: String?
    public var database: String?
    public var isActive: Bool
    public var activePID: String?
    /// `reserved`, `extended`, `unreserved` or `lost`.
    public var walStatus: String?
    public var confirmedFlush: LSN?

    public init(name: String, isLogical: Bool = true, plugin: String?, database: String?, isActive: Bool = false,
                activePID: String? = nil, walStatus: String? = "reserved", confirmedFlush: LSN?) {
        self.name = name
        self.isLogical = isLogical
        self.plugin = plugin
        self.database = database
        self.isActive = isActive
        self.activePID = activePID
        self.walStatus = walStatus
        self.confirmedFlush = confirmedFlush
    }

    /// The slot named `name`; nil when there is none.
    public static func read(_ name: String, on db: PostgresConnection) throws(PostgresError) -> ReplaySlot? {
        let result = try db.query("""
            SELECT slot_type, plugin, database, active, active_pid::text AS active_pid, wal_status,
                   confirmed_flush_lsn::text AS confirmed_flush
            FROM pg_replication_slots WHERE slot_name = $1
            """, [name])
        guard !result.rows.isEmpty else { return nil }
        return ReplaySlot(name: name, isLogical: result.value("slot_type") == "logical", plugin: result.value("plugin"),
                          database: result.value("database"), isActive: result.value("active") == "t",
                          activePID: result.value("active_pid"), walStatus: result.value("wal_status"),
                          confirmedFlush: result.value("confirmed_flush").flatMap { LSN($0) })
    }

    /// Postgres' rule for a slot's name: lower-case letters, digits and underscores, 1 to 63 of them.
    static func isValidName(_ name: String) -> Bool {
        (1...63).contains(name.utf8.count) && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    /// Why replay must not read the slot named `name` (`slot` is what the server holds under
    /// that name, nil for nothing), or nil when it may. The service's own slot is refused
    /// first, whatever its state: its position is the live service's to move.
    public static func refusal(_ name: String, slot: ReplaySlot?, serviceSlot: String, plugin: Config.Plugin,
                               database: String) -> ReplayError? {
        if name == serviceSlot { return .ownSlot(name) }
        guard let slot else {
            return isValidName(name) ? .noSuchSlot(name, plugin: plugin.rawValue) : .invalidSlotName(name)
        }
        guard slot.isLogical else { return .physicalSlot(name) }
        if let other = slot.database, other != database {
            return .otherDatabase(slot: name, database: other, connected: database)
        }
        if slot.plugin != plugin.rawValue {
            return .otherPlugin(slot: name, plugin: slot.plugin ?? "no plugin", configured: plugin.rawValue)
        }
        if slot.walStatus == "lost" { return .lost(slot: name) }
        if slot.isActive { return .active(slot: name, pid: slot.activePID) }
        return nil
    }
}
