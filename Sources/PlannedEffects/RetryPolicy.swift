import Core

/// How a failed delivery is retried. A copy is stored with every delivery row (see the
/// `Codable` conformance), so editing the configuration never rewrites the schedule of
/// deliveries that were already planned.
public enum RetryPolicy: Sendable, Hashable {
    /// The same pause before every retry: the seeds' conversation checks (3 tries, 10 s apart)
    /// behaved this way and their receivers expect it.
    case fixed(delay: Duration, maxAttempts: Int)

    /// The pause after attempt n is `base × multiplier^(n−1)`, never above `cap`. Growing pauses
    /// give a struggling endpoint room; jitter keeps many deliveries that failed together from
    /// returning in lockstep. A multiplier that is not a finite number ≥ 1 is treated as 1.
    case exponential(base: Duration, multiplier: Double = 2, cap: Duration, maxAttempts: Int, jitter: Jitter)

    /// Explicit pauses, one before each retry. The first attempt is not delayed, so the policy
    /// makes `delays.count + 1` attempts.
    case schedule([Duration], jitter: Jitter)

    /// The Standard Webhooks schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h,
    /// each pause ±20 %. It rides out more than a day of receiver downtime in eight requests.
    public static let standardWebhooks: RetryPolicy = .schedule(
        [.seconds(5), .seconds(300), .seconds(1_800), .seconds(7_200),
         .seconds(18_000), .seconds(36_000), .seconds(36_000)],
        jitter: .proportional(0.2))

    /// Attempts in total, the first one included. At least 1: a delivery is always tried once.
    public var maxAttempts: Int {
        switch self {
        case .fixed(_, let attempts), .exponential(_, _, _, let attempts, _): max(attempts, 1)
        case .schedule(let delays, _): delays.count + 1
        }
    }

    /// The longest pause the policy allows, Retry-After included; nil where only the
    /// Retry-After clamp applies.
    public var cap: Duration? {
        if case .exponential(_, _, let cap, _, _) = self { return cap }
        return nil
    }

    /// The pause after failed attempt `attempt` (1-based) before jitter: what operators and
    /// the dashboard show as "the schedule".
    public func nominalDelay(afterAttempt attempt: Int) -> Duration {
        precondition(attempt >= 1, "attempts are counted from 1")
        switch self {
        case .fixed(let delay, _):
            return max(delay, .zero)
        case .exponential(let base, let multiplier, let cap, _, _):
            // Double seconds, because base × multiplier^n overflows Duration long before it
            // reaches a sensible cap; the loop stops as soon as the cap is reached.
            let capSeconds = cap.inSeconds
            var seconds = base.inSeconds
            var step = 1
            while step < attempt, multiplier > 1, multiplier.isFinite, seconds < capSeconds {
                seconds *= multiplier
                step += 1
            }
            return .seconds(max(min(seconds, capSeconds), 0))
        case .schedule(let delays, _):
            guard let last = delays.last else { return .zero }
            return max(attempt <= delays.count ? delays[attempt - 1] : last, .zero)
        }
    }

    /// The pause after failed attempt `attempt` with jitter applied and the cap enforced.
    public func delay<R: RandomNumberGenerator>(afterAttempt attempt: Int, using generator: inout R) -> Duration {
        let nominal = nominalDelay(afterAttempt: attempt)
        let jittered: Duration
        switch self {
        case .fixed: jittered = nominal
        case .exponential(_, _, _, _, let jitter), .schedule(_, let jitter):
            jittered = jitter.apply(to: nominal, using: &generator)
        }
        guard let cap else { return jittered }
        return min(jittered, max(cap, .zero))
    }
}

/// How far a computed pause is randomised.
public enum Jitter: Sendable, Hashable {
    /// Exactly the computed pause.
    case none
    /// Uniform in [0, pause] ("full jitter"): the spread that best breaks up a herd of
    /// retries, at the price of sometimes retrying early.
    case full
    /// Uniform in [pause × (1 − f), pause × (1 + f)], f clamped to 0...1: keeps a published
    /// schedule recognisable while still spreading retries.
    case proportional(Double)

    func apply<R: RandomNumberGenerator>(to delay: Duration, using generator: inout R) -> Duration {
        switch self {
        case .none:
            return delay
        case .full:
            return delay * Double.random(in: 0...1, using: &generator)
        case .proportional(let fraction):
            let spread = fraction.isNaN ? 0 : min(max(fraction, 0), 1)
            return delay * Double.random(in: (1 - spread)...(1 + spread), using: &generator)
        }
    }
}
