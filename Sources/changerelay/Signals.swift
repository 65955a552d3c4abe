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
        // A parent may have started us with these blocked; they are how we are asked to stop.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGINT)
        sigaddset(&handled, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &handled, nil)
    }

    static var shouldStop: Bool { stopRequested.load(ordering: .relaxed) }
}
