@testable import Delivery
import Dispatch
import Synchronization
import Testing

/// Answers 127.0.0.1 for every name and counts the lookups of each. A lookup of a name in
/// `gated` blocks its thread until `open()`, as a name server that never answers would;
/// a name in `failing` does not resolve.
private final class GatedResolver: HostResolver {
    private let gate = DispatchSemaphore(value: 0)
    private let gated: Set<String>
    private let failing: Set<String>
    private let counts = Mutex<[String: Int]>([:])

    init(gated: Set<String> = [], failing: Set<String> = []) {
        self.gated = gated
        self.failing = failing
    }

    func addresses(of host: String) throws(HostResolutionError) -> [IPAddress] {
        counts.withLock { $0[host, default: 0] += 1 }
        if gated.contains(host) {
            gate.wait()
            gate.signal()
        }
        if failing.contains(host) { throw HostResolutionError("Name or service not known") }
        return [IPAddress("127.0.0.1")!]
    }

    func open() { gate.signal() }

    func lookups(of host: String) -> Int { counts.withLock { $0[host, default: 0] } }
}

/// Why `host` did not resolve; nil when it did.
private func failure(of host: String, in lookups: HostLookups) async -> String? {
    guard case .failure(let error) = await lookups.addresses(of: host) else { return nil }
    return error.message
}

@Suite struct HostLookupsTests {
    /// A name whose lookup hangs holds up only the tries that want it.
    @Test func aHangingLookupDoesNotHoldUpAnotherHost() async throws {
        let resolver = GatedResolver(gated: ["hang.test"])
        let lookups = HostLookups(resolver: resolver)
        let hanging = Task { await lookups.addresses(of: "hang.test") }
        #expect(try await lookups.addresses(of: "fast.test").get() == [IPAddress("127.0.0.1")!])
        resolver.open()
        #expect(try await hanging.value.get() == [IPAddress("127.0.0.1")!])
    }

    /// Tries that want a host while its lookup runs share that lookup: a dead name server
    /// costs one thread, not one per try.
    @Test func triesWaitingForOneHostShareItsLookup() async throws {
        let resolver = GatedResolver(gated: ["hang.test"])
        let lookups = HostLookups(resolver: resolver, reuse: .zero)
        let waiting = (0..<20).map { _ in Task { await lookups.addresses(of: "hang.test") } }
        let deadline = ContinuousClock.now + .seconds(300)
        while lookups.waiting(for: "hang.test") < 20, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(lookups.waiting(for: "hang.test") == 20)
        resolver.open()
        for task in waiting { #expect(try await task.value.get() == [IPAddress("127.0.0.1")!]) }
        #expect(resolver.lookups(of: "hang.test") == 1)
    }

    /// A try answered before its patience ends stops its timer: a sleeping timer holds a
    /// task, and the lookups with it, for all of `patience`.
    @Test func anAnsweredTryStopsItsPatienceTimer() async throws {
        let resolver = GatedResolver(gated: ["hang.test"])
        let lookups = HostLookups(resolver: resolver, reuse: .zero, patience: .seconds(3600))
        let waiting = (0..<5).map { _ in Task { await lookups.addresses(of: "hang.test") } }
        let deadline = ContinuousClock.now + .seconds(300)
        while lookups.timersRunning() < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(lookups.timersRunning() == 5)
        resolver.open()
        for task in waiting { #expect(try await task.value.get() == [IPAddress("127.0.0.1")!]) }
        #expect(lookups.timersRunning() == 0)

        weak var released: HostLookups?
        do {
            let answered = HostLookups(resolver: GatedResolver(), patience: .seconds(3600))
            #expect(try await answered.addresses(of: "fast.test").get() == [IPAddress("127.0.0.1")!])
            released = answered
        }
        let gone = ContinuousClock.now + .seconds(30)
        while released != nil, ContinuousClock.now < gone { try await Task.sleep(for: .milliseconds(5)) }
        #expect(released == nil, "a cancelled timer still holds the lookups")
    }

    @Test func anAnswerIsReusedForItsTime() async throws {
        let resolver = GatedResolver()
        let reused = HostLookups(resolver: resolver, reuse: .seconds(3600))
        _ = await reused.addresses(of: "hooks.test")
        _ = await reused.addresses(of: "hooks.test")
        #expect(resolver.lookups(of: "hooks.test") == 1)

        let expired = HostLookups(resolver: resolver, reuse: .zero)
        _ = await expired.addresses(of: "other.test")
        _ = await expired.addresses(of: "other.test")
        #expect(resolver.lookups(of: "other.test") == 2)
    }

    /// A failure is the caller's to retry, and the retry asks again.
    @Test func aFailureIsNotKept() async {
        let resolver = GatedResolver(failing: ["gone.test"])
        let lookups = HostLookups(resolver: resolver, reuse: .seconds(60))
        for _ in 0..<2 { #expect(await failure(of: "gone.test", in: lookups) == "Name or service not known") }
        #expect(resolver.lookups(of: "gone.test") == 2)
    }

    /// A try waits for a hanging lookup only so long, and fails as a failed lookup would;
    /// the lookup is not started again while it runs, and its answer serves the next try.
    @Test func aTryWaitsAtMostItsPatience() async throws {
        let resolver = GatedResolver(gated: ["hang.test"])
        let lookups = HostLookups(resolver: resolver, patience: .milliseconds(50))
        for _ in 0..<2 { #expect(await failure(of: "hang.test", in: lookups)?.hasPrefix("no answer within") == true) }
        #expect(resolver.lookups(of: "hang.test") == 1)
        resolver.open()
        let deadline = ContinuousClock.now + .seconds(300)
        var answer = await lookups.addresses(of: "hang.test")
        while case .failure = answer, ContinuousClock.now < deadline { answer = await lookups.addresses(of: "hang.test") }
        #expect(try answer.get() == [IPAddress("127.0.0.1")!])
    }

    /// The dispatcher's check: a refusal for a name that resolves to loopback, the pinned
    /// address with the flag, and an unresolvable name refused as retryable.
    @Test func theGuardLooksNamesUpThroughIt() async throws {
        let resolver = GatedResolver(failing: ["gone.test"])
        let lookups = HostLookups(resolver: resolver, reuse: .seconds(3600))
        await #expect(throws: TargetRefused.self) {
            try await TargetGuard(lookups: lookups).check(url: "http://hooks.test/x")
        }
        let pinned = try await TargetGuard(allowPrivateTargets: true, lookups: lookups).check(url: "http://hooks.test/x")
        #expect(pinned.pinnedAddress == "127.0.0.1")
        do {
            _ = try await TargetGuard(lookups: lookups).check(url: "http://gone.test/x")
            Issue.record("gone.test passed the guard")
        } catch {
            #expect(error.isRetryable)
            #expect(error.description.contains("host gone.test did not resolve"))
        }
        #expect(resolver.lookups(of: "hooks.test") == 1)
    }
}
