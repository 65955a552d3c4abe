import PlannedEffects
/// What the dispatcher does with a delivery after an attempt: the row's next status.
public enum RetryDecision: Sendable, Hashable {
    /// Status `succeeded`.
    case succeeded
    /// Status `failed`, next attempt due this long from now.
    case retry(after: Duration)
    /// Status `dead`: only an operator's `deliveries retry` sends it again.
    case dead(DeadReason)

    /// `attempt` is the 1-based number of the attempt just made. The generator is injected
    /// so that tests can pin the jitter.
    ///
    /// A Retry-After longer than the policy's (jittered) pause wins, because the receiver
    /// knows when it will recover and retrying earlier only earns another 429/503; it is
    /// still held to the policy's cap so that no receiver can park a delivery indefinitely.
    public init<R: RandomNumberGenerator>(
        policy: RetryPolicy, attempt: Int, outcome: AttemptOutcome, using generator: inout R
    ) {
        precondition(attempt >= 1, "attempts are counted from 1")
        switch outcome {
        case .succeeded:
            self = .succeeded
        case .giveUp(let reason):
            self = .dead(.gaveUp(reason))
        case .retry(let requested, let failure):
            guard attempt < policy.maxAttempts else {
                self = .dead(.attemptsExhausted(attempts: attempt, lastFailure: failure))
                return
            }
            var wait = policy.delay(afterAttempt: attempt, using: &generator)
            if let requested, requested > wait { wait = requested }
            if let cap = policy.cap { wait = min(wait, max(cap, .zero)) }
            self = .retry(after: wait)
        }
    }
}

/// Why a delivery was dead-lettered, for `last_error` and the log line.
public enum DeadReason: Sendable, Hashable, CustomStringConvertible {
    case attemptsExhausted(attempts: Int, lastFailure: AttemptFailure)
    case gaveUp(GiveUpReason)

    public var description: String {
        switch self {
        case .attemptsExhausted(let attempts, let lastFailure):
            "gave up after \(attempts) attempt\(attempts == 1 ? "" : "s"), last: \(lastFailure)"
        case .gaveUp(let reason):
            "gave up: \(reason)"
        }
    }
}
