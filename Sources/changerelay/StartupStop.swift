#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// SIGINT or SIGTERM while `dev` starts (initdb, the server, the schema) ends it at the next
/// step with the local server stopped: by default either signal ended the process there and
/// then, and the server, in a session of its own, ran on. Once the service runs, its
/// lifecycle takes both signals over.
struct StartupStop: Error {
    private static let asked = Atomic<Bool>(false)

    static func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber) { _ in StartupStop.asked.store(true, ordering: .relaxed) }
        }
    }

    /// Throws when a stop was asked since `install`.
    static func check() throws(StartupStop) {
        if asked.load(ordering: .relaxed) { throw StartupStop() }
    }
}
