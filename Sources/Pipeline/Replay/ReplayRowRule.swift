import Decoding
import Handlers
import PlannedEffects
import StateStore

/// A statement that returns which of a chunk of keys are present already; `$1` is a text array.
struct KeyLookup: Sendable, Hashable {
    /// The prepared statement's name.
    var name: String
    var sql: String

    static let deliveries = KeyLookup(name: "changerelay_replay_delivery_keys", sql: PlannedDeliveryKeys.lookup)
    /// The dual-write sync's own record of the changes it handled (the seed's table, 24 h).
    /// Only a change it applied (`success`), or refused as invalid (`failed`), is done: one it
    /// only logged (`not_implemented`) or compared (`shadow`) is planned again, so a replay in
    /// apply mode fills the new schema with what a live service in log or shadow mode let by.
    /// Its log row is then brought up to date, not written twice.
    static let idempotencyLog = KeyLookup(
        name: "changerelay_replay_idempotency_log_keys",
        sql: "SELECT key FROM public.idempotency_log WHERE key = ANY ($1::text[]) AND status IN ('success', 'failed')")
}

/// How a replay keeps one kind of planned row exactly once. The live committer does not need
/// this: it never plans a change twice (the checkpoint skips what it planned). A replay plans
/// changes something has planned before, so each row must either carry a key that says so, or
/// ride with a delivery that does. Rows of any other table are refused by name rather than
/// written twice.
enum ReplayRowRule: Sendable, Equatable {
    /// The row carries its own key in `column`, found by `lookup` when it was planned before:
    /// a staged dual-write change, keyed as its `idempotency_log` row.
    case keyed(column: String, lookup: KeyLookup)
    /// The row has no key of its own and belongs to its change's deliveries: written when one
    /// of them is new. The queued `trigger_execution_logs` row of a conversation check (a
    /// second one would be a second check in the seed's logs). A webhook's `webhook_logs` row
    /// is no row of its own: it rides in its delivery's report, and is numbered and written
    /// only with the delivery (`NumberedLogRows`).
    case followsDeliveries

    static func rule(for table: TableName) -> ReplayRowRule? {
        switch table {
        case DualWriteHandler.stagingTable: .keyed(column: "idempotency_key", lookup: .idempotencyLog)
        case ConversationCheckHandler.logTable: .followsDeliveries
        default: nil
        }
    }
}
