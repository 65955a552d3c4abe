import Core
import ServiceAssembly
import Synchronization
import Testing

/// The lifetime rules `run` and `dev` rely on, with loops standing in for the stream and
/// the dispatcher: a group ends when one service ends, the others are asked to stop in
/// reverse order of start, each only after the later one has finished, and the first
/// error comes out of the group.
@Suite struct ThreadServiceTests {
    /// The order things happened in, across threads.
    final class Journal: Sendable {
        private let entries = Mutex<[String]>([])
        func note(_ entry: String) { entries.withLock { $0.append(entry) } }
        var all: [String] { entries.withLock { $0 } }
    }

    struct Refused: Error {}

    /// A loop that runs until asked to stop, noting when it was asked and when it ended.
    static func loop(_ name: String, _ journal: Journal) -> ThreadService {
        ThreadService(name) { stop in
            while !stop.sleep(for: .seconds(3600)) {}
            journal.note("\(name) asked")
            journal.note("\(name) ended")
        }
    }

    @Test func whenTheLastServiceEndsTheOthersStopInReverseOrder() async throws {
        let journal = Journal()
        try await ThreadService.runGroup([
            Self.loop("dispatcher", journal),
            Self.loop("cleanup", journal),
            ThreadService("stream") { _ in journal.note("stream ended") },
        ])
        #expect(journal.all == ["stream ended", "cleanup asked", "cleanup ended", "dispatcher asked", "dispatcher ended"])
    }

    @Test func aFailingServiceStopsTheOthersAndItsErrorComesOut() async throws {
        let journal = Journal()
        await #expect(throws: Refused.self) {
            try await ThreadService.runGroup([
                Self.loop("dispatcher", journal),
                ThreadService("stream") { _ in throw Refused() },
            ])
        }
        #expect(journal.all == ["dispatcher asked", "dispatcher ended"])
    }

    @Test func cancellingTheGroupAsksEveryLoopToStop() async throws {
        let journal = Journal()
        let started = Atomic<Int>(0)
        let group = Task {
            try await ThreadService.runGroup([
                ThreadService("a") { stop in
                    started.add(1, ordering: .relaxed)
                    while !stop.sleep(for: .seconds(3600)) {}
                    journal.note("a ended")
                },
                ThreadService("b") { stop in
                    started.add(1, ordering: .relaxed)
                    while !stop.sleep(for: .seconds(3600)) {}
                    journal.note("b ended")
                },
            ])
        }
        while started.load(ordering: .relaxed) < 2 { try await Task.sleep(for: .milliseconds(5)) }
        group.cancel()
        _ = try? await group.value
        #expect(Set(journal.all) == ["a ended", "b ended"])
    }
}
