import Core
import Delivery
import PlannedEffects
import TestSupport
import Testing

@Suite struct RetryDecisionTests {
    private static let serverError = AttemptOutcome.retry(after: nil, failure: .status(500))

    private func decide(_ policy: RetryPolicy, attempt: Int, _ outcome: AttemptOutcome, seed: UInt64 = 1) -> RetryDecision {
        var generator = SplitMix64(seed: seed)
        return RetryDecision(policy: policy, attempt: attempt, outcome: outcome, using: &generator)
    }

    @Test func successIsFinalAtAnyAttempt() {
        for attempt in 1...3 {
            #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: attempt, .succeeded) == .succeeded)
        }
    }

    @Test func conversationChecksTryThreeTimesTenSecondsApart() {
        let policy = RetryPolicy.fixed(delay: .seconds(10), maxAttempts: 3)
        #expect(decide(policy, attempt: 1, Self.serverError) == .retry(after: .seconds(10)))
        #expect(decide(policy, attempt: 2, Self.serverError) == .retry(after: .seconds(10)))
        let last = decide(policy, attempt: 3, Self.serverError)
        #expect(last == .dead(.attemptsExhausted(attempts: 3, lastFailure: .status(500))))
        if case .dead(let reason) = last {
            #expect(reason.description == "gave up after 3 attempts, last: HTTP 500")
        }
    }

    @Test func attemptsPastTheLimitAreDeadToo() {
        let policy = RetryPolicy.fixed(delay: .seconds(10), maxAttempts: 3)
        let timeout = TransportError(.timedOut)
        #expect(decide(policy, attempt: 7, AttemptOutcome(transportError: timeout))
            == .dead(.attemptsExhausted(attempts: 7, lastFailure: .transport(timeout))))
    }

    @Test func aSingleAttemptPolicyDiesOnTheFirstFailure() {
        let decision = decide(.fixed(delay: .seconds(1), maxAttempts: 1), attempt: 1, Self.serverError)
        #expect(decision == .dead(.attemptsExhausted(attempts: 1, lastFailure: .status(500))))
        if case .dead(let reason) = decision {
            #expect(reason.description == "gave up after 1 attempt, last: HTTP 500")
        }
    }

    @Test func standardWebhooksRetrySevenTimesThenDie() {
        for attempt in 1...7 {
            guard case .retry(let wait) = decide(.standardWebhooks, attempt: attempt, Self.serverError) else {
                Issue.record("attempt \(attempt) should be retried")
                continue
            }
            let nominal = RetryPolicy.standardWebhooks.nominalDelay(afterAttempt: attempt)
            #expect(wait >= nominal * 0.8 && wait <= nominal * 1.2)
        }
        #expect(decide(.standardWebhooks, attempt: 8, Self.serverError)
            == .dead(.attemptsExhausted(attempts: 8, lastFailure: .status(500))))
    }

    @Test func goneStopsAtOnceWhateverTheBudget() {
        let decision = decide(.standardWebhooks, attempt: 1, AttemptOutcome(status: 410, now: 0, goneEndsDelivery: true))
        #expect(decision == .dead(.gaveUp(.endpointGone)))
        if case .dead(let reason) = decision {
            #expect(reason.description == "gave up: endpoint gone (HTTP 410)")
        }
    }

    @Test func redirectIsRetriedLikeAnyFailure() {
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: 1, AttemptOutcome(status: 302, now: 0))
            == .retry(after: .seconds(10)))
    }

    @Test func transportErrorsAreRetried() {
        let refused = AttemptOutcome(transportError: TransportError(.connectFailed, detail: "Connection refused"))
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: 1, refused) == .retry(after: .seconds(10)))
    }

    @Test(arguments: [429, 503])
    func longerRetryAfterWins(status: Int) {
        let outcome = AttemptOutcome(status: status, retryAfter: "120", now: 0)
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: 1, outcome) == .retry(after: .seconds(120)))
    }

    @Test(arguments: [429, 503])
    func shorterRetryAfterLosesToThePolicy(status: Int) {
        let outcome = AttemptOutcome(status: status, retryAfter: "2", now: 0)
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: 1, outcome) == .retry(after: .seconds(10)))
    }

    @Test(arguments: [429, 503])
    func retryAfterFromAnHTTPDateWins(status: Int) {
        let outcome = AttemptOutcome(status: status, retryAfter: "Sun, 06 Nov 1994 08:50:37 GMT", now: 784_111_777)
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 3), attempt: 2, outcome) == .retry(after: .seconds(60)))
    }

    @Test func retryAfterIsHeldToThePolicyCap() {
        let policy = RetryPolicy.exponential(base: .seconds(1), cap: .seconds(60), maxAttempts: 5, jitter: .full)
        let outcome = AttemptOutcome(status: 429, retryAfter: "3000", now: 0)
        #expect(decide(policy, attempt: 1, outcome) == .retry(after: .seconds(60)))
    }

    @Test func retryAfterIsAFloorUnderFullJitter() {
        let policy = RetryPolicy.exponential(base: .seconds(20), cap: .seconds(300), maxAttempts: 5, jitter: .full)
        let outcome = AttemptOutcome(status: 503, retryAfter: "30", now: 0)
        var generator = SplitMix64(seed: 99)
        var sawPolicyDelay = false
        for _ in 0..<2_000 {
            guard case .retry(let wait) = RetryDecision(policy: policy, attempt: 3, outcome: outcome, using: &generator) else {
                Issue.record("expected a retry")
                return
            }
            #expect(wait >= .seconds(30) && wait <= .seconds(80))
            if wait > .seconds(30) { sawPolicyDelay = true }
        }
        #expect(sawPolicyDelay)
    }

    @Test func retryAfterOnTheLastAttemptDoesNotRevive() {
        let outcome = AttemptOutcome(status: 429, retryAfter: "5", now: 0)
        #expect(decide(.fixed(delay: .seconds(10), maxAttempts: 2), attempt: 2, outcome)
            == .dead(.attemptsExhausted(attempts: 2, lastFailure: .status(429))))
    }

    @Test func webhookDefaultsGiveFourAttemptsWithJitteredBackoff() {
        // What `WebhookRetryConfig` makes of the column default (tested in HandlersTests).
        let policy = RetryPolicy.exponential(base: .seconds(1), multiplier: 2, cap: .seconds(3_600), maxAttempts: 4,
                                             jitter: .full)
        var generator = SplitMix64(seed: 5)
        for (attempt, ceiling) in [(1, 1), (2, 2), (3, 4)] as [(Int, Int64)] {
            guard case .retry(let wait) = RetryDecision(
                policy: policy, attempt: attempt, outcome: Self.serverError, using: &generator) else {
                Issue.record("attempt \(attempt) should be retried")
                continue
            }
            #expect(wait >= .zero && wait <= .seconds(ceiling))
        }
        #expect(RetryDecision(policy: policy, attempt: 4, outcome: Self.serverError, using: &generator)
            == .dead(.attemptsExhausted(attempts: 4, lastFailure: .status(500))))
    }
}
