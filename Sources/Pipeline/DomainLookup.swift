import Decoding
import Replication
import Synchronization

/// `BaseTypes` read from the source's catalog, on a connection of its own opened at the
/// first user type a relation names, each answer kept for the stream. A domain's base type
/// cannot change (`ALTER DOMAIN` has no such form), so an answer never goes stale while the
/// domain lives. A catalog that cannot be read leaves the type as it is, and asks again next
/// time: the value then renders as a string, as a domain always did.
final class DomainLookup: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var bases: [UInt32: UInt32] = [:]
    }

    private let url: String
    private let state = Mutex(State())

    init(url: String) {
        self.url = url
    }

    var baseTypes: BaseTypes { BaseTypes { [self] oid in base(of: oid) } }

    private func base(of oid: UInt32) -> UInt32 {
        state.withLock { state in
            if let known = state.bases[oid] { return known }
            do {
                let connection = try state.connection ?? PostgresConnection(url: url)
                state.connection = connection
                var type = oid
                // A domain over a domain: down to the first type that is not one.
                for _ in 0..<32 {
                    let row = try connection.query(prepared: "changerelay_domain_base", """
                        SELECT typbasetype::text AS base FROM pg_type WHERE oid = $1::oid AND typtype = 'd'
                        """, [String(type)])
                    guard let base = row.value("base").flatMap(UInt32.init) else { break }
                    type = base
                }
                state.bases[oid] = type
                return type
            } catch {
                state.connection = nil
                return oid
            }
        }
    }
}
