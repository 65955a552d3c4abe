#if canImport(Glibc)
import Glibc
#endif

/// Named instants where a crash tests a guarantee: a kill test arms one through the
/// environment (`CHANGERELAY_CRASH_POINT=batch-copied`), waits for the process to say it
/// got there, and kills it, so each kill proves something definite instead of landing at
/// a random moment. Unarmed, reaching a point costs one comparison.
///
/// An armed process that reaches its point writes `crash point <name> reached` to stderr
/// and stops itself (SIGSTOP), holding every lock and connection as they are: the test's
/// SIGKILL then lands exactly there.
public enum CrashPoint: String, Sendable, CaseIterable {
    /// A batch's rows are in the state database's transaction; COMMIT has not been sent.
    case batchCopied = "batch-copied"
    /// The checkpoint is committed; the slot has not been told.
    case checkpointCommitted = "checkpoint-committed"
    /// A try's response has arrived; the try is not recorded.
    case trySent = "try-sent"

    /// The point armed for this process, read once.
    public static let armed: CrashPoint? = getenv("CHANGERELAY_CRASH_POINT").flatMap { CrashPoint(rawValue: String(cString: $0)) }

    public func reach() {
        guard Self.armed == self else { return }
        let line = Array("crash point \(rawValue) reached\n".utf8)
        _ = line.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count) }
        raise(SIGSTOP)
    }
}
