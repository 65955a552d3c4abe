import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM ask the running command to stop at the next safe point
/// (after the transaction in hand is acknowledged), never mid-transaction.
enum Signals {
    static let stopRequested = Atomic<Bool>(false)

    static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in
            Signals.stopRequested.store(true, ordering: .relaxed)
        }
        signal(SIGINT, handler)
        signal(SIGTERM, handler)
        signal(SIGPIPE, SIG_IGN)
    }

    static var shouldStop: Bool { stopRequested.load(ordering: .relaxed) }
}
