#if canImport(Glibc)
import Glibc
#endif

/// What the process needs before a service group takes SIGINT and SIGTERM over.
enum ProcessSignals {
    static func prepare() {
        // A receiver closing its socket mid-write must fail that write, not end the process.
        signal(SIGPIPE, SIG_IGN)
        // A parent may have started us with these blocked; they are how we are asked to stop.
        var handled = sigset_t()
        sigemptyset(&handled)
        sigaddset(&handled, SIGINT)
        sigaddset(&handled, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &handled, nil)
    }
}
