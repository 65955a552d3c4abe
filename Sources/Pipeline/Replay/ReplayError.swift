import Core
import Decoding

/// Why a replay refuses to start, or stops: each names the slot, handler or table at fault
/// and, where there is one, the way out.
public enum ReplayError: Error, Sendable, Equatable, CustomStringConvertible {
    case ownSlot(String)
    case noSuchSlot(String, plugin: String)
    /// No slot could have the name: advice to create it would be refused too.
    case invalidSlotName(String)
    /// A live service's slot under another name than `source.slot`: `run` wrote its checkpoint.
    case liveSlot(String)
    /// `source.slot` names no slot, and no `--to-lsn` says where to end.
    case noLiveSlot(String)
    case physicalSlot(String)
    case otherDatabase(slot: String, database: String, connected: String)
    case otherPlugin(slot: String, plugin: String, configured: String)
    case lost(slot: String)
    case active(slot: String, pid: String?)
    case unknownHandler(String, known: [String])
    case noHandlerNamed
    case handlerRefused(String, reason: String)
    case handlerNotConfigured(String, hint: String)
    case noHandlers
    /// A handler planned rows replay does not know how to keep exactly once.
    case unreplayableRows(handler: String, table: TableName)
    /// A row that is written only with a new delivery of its change, in a change with none.
    case rowWithoutDelivery(handler: String, table: TableName, lsn: LSN)

    public var description: String {
        switch self {
        case .ownSlot(let slot):
            "slot \(slot) is the service's own (source.slot): replay drives another slot, a retained copy of the stream"
        case .noSuchSlot(let slot, let plugin):
            "slot \(quotedExcerpt(slot, limit: 64)) does not exist (pg_replication_slots); a retained slot is created with "
                + "SELECT pg_create_logical_replication_slot(\(quoteLiteral(slot)), \(quoteLiteral(plugin))) "
                + "and keeps WAL from then on"
        case .invalidSlotName(let slot):
            "\(quotedExcerpt(slot, limit: 64)) is not a slot name: a slot's name is 1 to 63 lower-case letters, digits "
                + "and underscores"
        case .liveSlot(let slot):
            "slot \(slot) is a live service's (changerelay run wrote its checkpoint): replay drives another slot, a retained "
                + "copy of the stream, and moving this one would make that service start past changes it never planned. "
                + "If no service will read it again, drop its checkpoint first: "
                + "DELETE FROM changerelay.checkpoints WHERE slot_name = \(quoteLiteral(slot))"
        case .noLiveSlot(let slot):
            "source.slot \(quotedExcerpt(slot, limit: 64)) names no slot on the source, so replay cannot tell where the "
                + "live service stands, and a key planned past it would stop the live service's batches: set source.slot "
                + "(CHANGERELAY_SOURCE_SLOT) to the live service's slot, or give --to-lsn to end the replay where you know "
                + "the live service has planned everything already"
        case .physicalSlot(let slot):
            "slot \(slot) is a physical slot: replay reads logical slots only"
        case .otherDatabase(let slot, let database, let connected):
            "slot \(slot) belongs to database \(database), not to \(connected), the source"
        case .otherPlugin(let slot, let plugin, let configured):
            "slot \(slot) uses \(plugin), but source.plugin is \(configured): replay decodes with the configured plugin"
        case .lost(let slot):
            "slot \(slot) has lost WAL it needed (wal_status = lost): its changes cannot be read any more; drop it"
        case .active(let slot, let pid):
            "slot \(slot) is active\(pid.map { " (held by process \($0))" } ?? ""): a slot has one reader at a time; "
                + "stop that reader first"
        case .unknownHandler(let name, let known):
            "unknown handler '\(name)' in --handlers: expected \(known.joined(separator: ", "))"
        case .noHandlerNamed:
            "--handlers names no handler: give one or more, comma-separated, or leave the option out for all"
        case .handlerRefused(let name, let reason):
            "replay cannot run the handler \(name): \(reason)"
        case .handlerNotConfigured(let name, let hint):
            "the handler \(name) is not configured, so replay cannot run it: \(hint)"
        case .noHandlers:
            "no handler that replay can run is configured: nothing would be planned"
        case .unreplayableRows(let handler, let table):
            "replay cannot keep the \(handler) handler's rows in \(table) exactly once: leave \(handler) out (--handlers)"
        case .rowWithoutDelivery(let handler, let table, let lsn):
            "the \(handler) handler planned a row in \(table) without a delivery (commit \(lsn)): replay writes such a row "
                + "only with a new delivery of the same change, so it cannot tell whether it is planned already"
        }
    }
}
