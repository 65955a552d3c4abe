import Core
import Synchronization

/// Name lookups for the SSRF guard as the dispatcher runs it. The dispatcher's loop must
/// never wait on DNS: a name server that is slow or gone for one webhook's host would
/// stall every endpoint, the operator's own included. So a lookup runs on a thread of its
/// own and the try that wants it waits without holding a thread:
/// - tries that want a host whose lookup is running wait for that lookup, so a host whose
///   name server never answers holds one thread, not one per try;
/// - an answer is reused for `reuse`, so a busy endpoint does not ask DNS for every try.
///   Pinning is unaffected: a try still connects to an address the guard checked.
/// - a failure is not kept: the next try asks again (it is retried as a transport failure).
public final class HostLookups: Sendable {
    public typealias Answer = Result<[IPAddress], HostResolutionError>

    private struct Known {
        var addresses: [IPAddress]
        var until: ContinuousClock.Instant
    }

    private struct State {
        var known: [String: Known] = [:]
        var waiting: [String: [CheckedContinuation<Answer, Never>]] = [:]
    }

    private let resolver: any HostResolver
    private let reuse: Duration
    private let clock = ContinuousClock()
    private let state = Mutex(State())

    public init(resolver: any HostResolver = SystemResolver(), reuse: Duration = .seconds(5)) {
        self.resolver = resolver
        self.reuse = reuse
    }

    /// Every address `host` resolves to, as `HostResolver.addresses(of:)` gives them.
    public func addresses(of host: String) async -> Answer {
        await withCheckedContinuation { continuation in
            enum Step { case known([IPAddress]), wait, lookUp }
            let now = clock.now
            let step = state.withLock { state -> Step in
                if let known = state.known[host], known.until > now { return .known(known.addresses) }
                state.waiting[host, default: []].append(continuation)
                return state.waiting[host]!.count == 1 ? .lookUp : .wait
            }
            switch step {
            case .known(let addresses): continuation.resume(returning: .success(addresses))
            case .wait: return
            case .lookUp:
                let started = startThread(detached: true) { [self] in
                    answered(host, Answer { () throws(HostResolutionError) in try resolver.addresses(of: host) })
                }
                if started == nil { answered(host, .failure(HostResolutionError("no thread could be started for the lookup"))) }
            }
        }
    }

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
            return state.waiting.removeValue(forKey: host) ?? []
        }
        for waiter in waiters { waiter.resume(returning: answer) }
    }
}
