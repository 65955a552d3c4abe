import Core
import Logging
import ServiceLifecycle

/// A loop that blocks its thread in C calls (libpq's waits, `poll`) run as a lifecycle
/// service: it gets a thread of its own, never one of the cooperative pool's, and a
/// graceful shutdown or a cancellation asks it to stop through its `StopSignal`. The
/// service ends when the loop returns, with the loop's error if it threw.
public struct ThreadService: Service, CustomStringConvertible {
    public let description: String
    private let body: @Sendable (StopSignal) throws -> Void

    public init(_ name: String, _ body: @escaping @Sendable (StopSignal) throws -> Void) {
        description = name
        self.body = body
    }

    public func run() async throws {
        let stop = StopSignal()
        let name = description
        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                    let thread = startThread(detached: true) { [body] in
                        do {
                            try body(stop)
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    if thread == nil { continuation.resume(throwing: ThreadServiceError(service: name)) }
                }
            } onGracefulShutdown: {
                stop.request()
            }
        } onCancel: {
            stop.request()
        }
    }
}

/// The system would not start another thread.
public struct ThreadServiceError: Error, CustomStringConvertible {
    public var service: String
    public var description: String { "cannot start a thread for the \(service)" }
}

extension ThreadService {
    /// Runs `services` as one group until SIGTERM or SIGINT, or until one of them ends:
    /// either way the others are shut down gracefully, in reverse order of `services`,
    /// and the first error (if any) is rethrown.
    public static func runGroup(_ services: [any Service]) async throws {
        let group = ServiceGroup(configuration: .init(
            services: services.map {
                .init(service: $0, successTerminationBehavior: .gracefullyShutdownGroup,
                      failureTerminationBehavior: .gracefullyShutdownGroup)
            },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "changerelay.lifecycle")))
        try await group.run()
    }
}
