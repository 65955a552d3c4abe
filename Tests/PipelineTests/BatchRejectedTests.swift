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
}
