import Core
import Synchronization

/// Name lookups for the SSRF guard as the dispatcher runs it. The dispatcher's loop must
/// never wait on DNS: a name server that is slow or gone for one webhook's host would
/// stall every endpoint, the operator's own included. So a lookup runs on a thread of its
/// own and the try that wants it waits without holding a thread:
/// - tries that want a host whose lookup is running wait for that lookup, so a host whose
///   name server never answers holds one thread, not one per try (nor one per `patience`);
/// - an answer is reused for `reuse`, so a busy endpoint does not ask DNS for every try.
///   Pinning is unaffected: a try still connects to an address the guard checked.
/// - a failure is not kept: the next try asks again (it is retried as a transport failure);
/// - a try waits at most `patience`, then fails as a failed lookup would: the system
///   resolver's own timeouts are the operator's (resolv.conf), and an NSS module can hang
///   for good, while a try must end within its own timeout.
public final class HostLookups: Sendable {
    public typealias Answer = Result<[IPAddress], HostResolutionError>

    private struct Known {
        var addresses: [IPAddress]
        var until: ContinuousClock.Instant
    }

    private struct Waiter {
        var number: Int
        var continuation: CheckedContinuation<Answer, Never>
    }

    private struct State {
        var known: [String: Known] = [:]
        var waiting: [String: [Waiter]] = [:]
        /// Hosts whose lookup runs: one at a time, even after every try waiting for it gave up.
        var running: Set<String> = []
        var waiters = 0
        /// Each waiting try's patience timer, cancelled when the lookup answers first: a
        /// sleeping timer holds a task, and this object, for all of `patience`.
        var timers: [Int: Task<Void, Never>] = [:]
    }

    private let resolver: any HostResolver
    private let reuse: Duration
    private let patience: Duration
    private let clock = ContinuousClock()
    private let state = Mutex(State())

    public init(resolver: any HostResolver = SystemResolver(), reuse: Duration = .seconds(5),
                patience: Duration = .seconds(15)) {
        self.resolver = resolver
        self.reuse = reuse
        self.patience = patience
    }

    /// Every address `host` resolves to, as `HostResolver.addresses(of:)` gives them.
    public func addresses(of host: String) async -> Answer {
        await withCheckedContinuation { continuation in
            enum Step { case known([IPAddress]), wait(Int), lookUp(Int) }
            let now = clock.now
            let step = state.withLock { state -> Step in
                if let known = state.known[host], known.until > now { return .known(known.addresses) }
                state.waiters += 1
                state.waiting[host, default: []].append(Waiter(number: state.waiters, continuation: continuation))
                return state.running.insert(host).inserted ? .lookUp(state.waiters) : .wait(state.waiters)
            }
            let number: Int
            switch step {
            case .known(let addresses):
                continuation.resume(returning: .success(addresses))
                return
            case .wait(let waiter):
                number = waiter
            case .lookUp(let waiter):
                number = waiter
                let started = startThread(detached: true) { [self] in
                    answered(host, Answer { () throws(HostResolutionError) in try resolver.addresses(of: host) })
                }
                if started == nil { answered(host, .failure(HostResolutionError("no thread could be started for the lookup"))) }
            }
            let timer = Task { [self, patience] in
                try? await Task.sleep(for: patience)
                gaveUp(on: host, waiter: number)
            }
            let answeredAlready = state.withLock { state -> Bool in
                guard state.waiting[host]?.contains(where: { $0.number == number }) == true else { return true }
                state.timers[number] = timer
                return false
            }
            if answeredAlready { timer.cancel() }
        }
    }

    /// How many tries' patience timers are running.
    func timersRunning() -> Int { state.withLock { $0.timers.count } }

    /// How many tries wait for the running lookup of `host`.
    func waiting(for host: String) -> Int { state.withLock { $0.waiting[host]?.count ?? 0 } }

    private func answered(_ host: String, _ answer: Answer) {
        let now = clock.now
        let waiters = state.withLock { state in
            if case .success(let addresses) = answer {
                // Hosts come from config rows: few, but a row can change its URL often.
                state.known = state.known.filter { $0.value.until > now }
                state.known[host] = Known(addresses: addresses, until: now + reuse)
            }
            state.running.remove(host)
            let waiters = state.waiting.removeValue(forKey: host) ?? []
            return waiters.map { ($0, state.timers.removeValue(forKey: $0.number)) }
        }
        for (waiter, timer) in waiters {
            timer?.cancel()
            waiter.continuation.resume(returning: answer)
        }
    }

    /// Ends one try's wait, if the lookup has not answered it yet; the lookup goes on for
    /// the tries that came later.
    private func gaveUp(on host: String, waiter number: Int) {
        let waiter = state.withLock { state -> Waiter? in
            state.timers[number] = nil
            guard let index = state.waiting[host]?.firstIndex(where: { $0.number == number }) else { return nil }
            return state.waiting[host]!.remove(at: index)
        }
        waiter?.continuation.resume(returning: .failure(HostResolutionError("no answer within \(patience)")))
    }
}
