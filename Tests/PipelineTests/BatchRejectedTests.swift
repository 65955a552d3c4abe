import Core
@testable import Pipeline
import Replication
import Testing

/// Only what the batch itself holds makes it fail again on every read: the rest of what a
/// server can refuse may pass on another try, and is not said to be the batch's fault.
@Suite struct BatchRejectedTests {
    static func refused(_ state: String) -> PostgresError {
        PostgresError(.queryFailed(sqlState: state), "refused", endpoint: "127.0.0.1:5432/app")
    }

    @Test(arguments: ["22P02", "22003", "23505", "23514", "42703", "P0001"])
    func whatTheBatchHoldsIsNamedAsTheBatch(state: String) {
        let wrapped = BatchRejected.wrapping(Self.refused(state), after: LSN(0x100), through: LSN(0x200), writing: "copying rows into public.t")
        #expect((wrapped as? BatchRejected)?.underlying.sqlState == state)
    }

    @Test(arguments: ["40001", "40P01", "57014", "55P03", "53100", "25006", "57P01", "08006"])
    func whatAnotherTryMayPassStaysAsItIs(state: String) {
        let wrapped = BatchRejected.wrapping(Self.refused(state), after: LSN(0x100), through: LSN(0x200), writing: "copying rows into public.t")
        #expect((wrapped as? PostgresError)?.sqlState == state)
    }

    /// A view or function of ChangeRelay's own schema that is gone (an application table
    /// dropped with CASCADE took the sync's views) is said to be mended by `setup`; a missing
    /// application table, or another refusal, is not.
    @Test func aMissingObjectOfItsOwnSchemaPointsAtSetup() {
        func said(_ state: String, _ message: String) -> String {
            let error = PostgresError(.queryFailed(sqlState: state), message, endpoint: "127.0.0.1:5432/app")
            return "\(BatchRejected.wrapping(error, after: LSN(0x100), through: LSN(0x200), writing: "applying the rows"))"
        }
        #expect(said("42P01", "relation \"changerelay.actual_habits\" does not exist").contains("changerelay setup creates it again"))
        #expect(said("42883", "function changerelay.apply_staged_message_buffers() does not exist").contains("changerelay setup"))
        #expect(!said("42P01", "relation \"public.habit_tracker\" does not exist").contains("changerelay setup"))
        #expect(!said("23505", "duplicate key value violates unique constraint \"changerelay.x\"").contains("changerelay setup"))
    }
}
