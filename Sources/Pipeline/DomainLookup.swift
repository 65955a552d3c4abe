import Decoding
import Logging
import Replication
import Synchronization

/// `BaseTypes` read from the source's catalog, on a connection of its own opened at the
/// first user type a relation names, each answer kept for the stream. A domain's base type
/// cannot change (`ALTER DOMAIN` has no such form), so an answer never goes stale while the
/// domain lives. A catalog that cannot be read leaves the type as it is, and asks again next
/// time: the value then renders as a string, as a domain always did. So does a type dropped
/// since the change was written (a backlog read after `DROP DOMAIN`): that is said once per
/// type, since the same change read before the drop rendered as its base type.
public final class DomainLookup: Sendable {
    private struct State {
        var connection: PostgresConnection?
        var bases: [UInt32: UInt32] = [:]
    }

    private let url: String
    private let state = Mutex(State())
    private let logger = Logger(label: "changerelay.source")

    init(url: String) {
        self.url = url
    }

    var baseTypes: BaseTypes { BaseTypes { [self] oid in base(of: oid) } }

    /// SQL for the base type of the type `oid` (an SQL expression of type oid): down through
    /// domains over domains to the first type that is not one, the type itself when it is
    /// not a domain. The stream's look-ups, a backfill's column list and `drift-check` read it.
    public static func baseType(of oid: String) -> String {
        """
        (WITH RECURSIVE chain (oid, depth) AS (
             SELECT \(oid), 0
             UNION ALL
             SELECT t.typbasetype, c.depth + 1 FROM chain c JOIN pg_type t ON t.oid = c.oid WHERE t.typtype = 'd')
         SELECT oid FROM chain ORDER BY depth DESC LIMIT 1)
        """
    }

    private func base(of oid: UInt32) -> UInt32 {
        state.withLock { state in
            if let known = state.bases[oid] { return known }
            do {
                let connection = try state.connection ?? PostgresConnection(url: url)
                state.connection = connection
                let found = try connection.query(prepared: "changerelay_domain_base", """
                    SELECT \(Self.baseType(of: "$1::oid"))::text AS base, EXISTS (SELECT FROM pg_type WHERE oid = $1::oid) AS known
                    """, [String(oid)])
                let type = found.value("base").flatMap(UInt32.init) ?? oid
                if found.value("known") != "t" {
                    logger.warning("a column's type is no longer in the source's catalog (dropped since the change was written): its values are rendered as strings",
                                   metadata: ["type_oid": "\(oid)"])
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
