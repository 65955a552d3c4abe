import Decoding
@testable import Pipeline
import Testing

/// `changerelay_changes_total`'s table label: the seed's tables by their names, as the
/// dashboards and alerts know them, and any other schema's qualified, so that two tables of
/// one name are two series.
@Suite struct CommitMetricsTests {
    @Test(arguments: [("public", "jobs", "jobs"), ("archive", "jobs", "archive.jobs"), ("Public", "jobs", "Public.jobs"),
                      ("we.ird", "t", "we.ird.t")])
    func theTableLabelKeepsSchemasApart(schema: String, table: String, label: String) {
        #expect(CommitMetrics.ChangeKind(schema: schema, table: table, operation: .insert).tableLabel == label)
    }
}
