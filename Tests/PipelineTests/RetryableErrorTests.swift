@testable import Pipeline
import Replication
import Testing

/// Which failures of the stream (the replication connection, or the batch the state
/// database refused) are retried from the checkpoint, and which stop the service.
@Suite struct RetryableErrorTests {
    @Test(arguments: ["40P01", "40001", "57P01", "08006", "55006"])
    func aDeadlockASerializationFailureAndALostServerAreRetried(_ state: String) {
        #expect(PostgresError(.queryFailed(sqlState: state), "refused", endpoint: "db").isRetryable)
    }

    @Test(arguments: ["23503", "23505", "22P02", "42703", "42501", "P0001"])
    func aRefusedRowOrStatementIsNot(_ state: String) {
        #expect(!PostgresError(.queryFailed(sqlState: state), "refused", endpoint: "db").isRetryable)
    }
}
