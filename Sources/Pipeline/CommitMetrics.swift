import Decoding
import Metrics

/// `changerelay_transactions_total` and `changerelay_changes_total{table,op}`, counted when a
/// batch commits: a batch thrown away and read again is counted once, when it lands.
final class CommitMetrics {
    struct ChangeKind: Hashable {
        var schema: String
        var table: String
        var operation: Change.Operation

        /// The table's name in `public`, where the seed's tables are; `schema.table`
        /// elsewhere, so that `public.jobs` and `archive.jobs` are not counted as one.
        var tableLabel: String { schema == "public" ? table : schema + "." + table }
    }

    private let transactions = Counter(label: "changerelay_transactions_total")
    /// One counter per (table, operation) seen, made on first use.
    private var changes: [ChangeKind: Counter] = [:]

    func committed(transactions count: Int, changes counts: [ChangeKind: Int]) {
        transactions.increment(by: count)
        for (kind, count) in counts {
            let counter = changes[kind] ?? Counter(label: "changerelay_changes_total",
                                                   dimensions: [("table", kind.tableLabel), ("op", kind.operation.rawValue)])
            changes[kind] = counter
            counter.increment(by: count)
        }
    }
}
