import Core
import Delivery
import PlannedEffects
import TestSupport
import Testing

@Suite struct RetryPolicyTests {
    @Test func splitMixMatchesTheReferenceOutput() {
        var generator = SplitMix64(seed: 0)
        #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
        #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func fixedPolicyWaitsTheSameBeforeEveryRetry() {
        let policy = RetryPolicy.fixed(delay: .seconds(10), maxAttempts: 3)
        var generator = SplitMix64(seed: 1)
        #expect(policy.maxAttempts == 3)
        #expect(policy.cap == nil)
        for attempt in 1...2 {
            #expect(policy.nominalDelay(afterAttempt: attempt) == .seconds(10))
            #expect(policy.delay(afterAttempt: attempt, using: &generator) == .seconds(10))
        }
    }

    @Test func exponentialPolicyDoublesUpToTheCap() {
        let policy = RetryPolicy.exponential(base: .seconds(1), cap: .seconds(30), maxAttempts: 10, jitter: .none)
        let schedule = (1...9).map { policy.nominalDelay(afterAttempt: $0) }
        #expect(schedule == [1, 2, 4, 8, 16, 30, 30, 30, 30].map { Duration.seconds($0) })
        var generator = SplitMix64(seed: 2)
        #expect(policy.delay(afterAttempt: 4, using: &generator) == .seconds(8))
        #expect(policy.maxAttempts == 10)
        #expect(policy.cap == .seconds(30))
    }

    @Test func exponentialPolicyHonoursItsMultiplier() {
        let policy = RetryPolicy.exponential(
            base: .milliseconds(500), multiplier: 3, cap: .seconds(3_600), maxAttempts: 5, jitter: .none)
        let schedule = (1...4).map { policy.nominalDelay(afterAttempt: $0) }
        #expect(schedule == [.milliseconds(500), .milliseconds(1_500), .milliseconds(4_500), .milliseconds(13_500)])
    }

    @Test func exponentialPolicyStaysAtTheCapForAbsurdAttemptNumbers() {
        let policy = RetryPolicy.exponential(base: .seconds(1), cap: .seconds(36_000), maxAttempts: 1_000_000, jitter: .none)
        #expect(policy.nominalDelay(afterAttempt: 999_999) == .seconds(36_000))
        let wild = RetryPolicy.exponential(
            base: .seconds(1), multiplier: .infinity, cap: .seconds(60), maxAttempts: 5, jitter: .none)
        #expect(wild.nominalDelay(afterAttempt: 4) == .seconds(1))
    }

    @Test func maxAttemptsIsNeverBelowOne() {
        #expect(RetryPolicy.fixed(delay: .seconds(1), maxAttempts: 0).maxAttempts == 1)
        #expect(RetryPolicy.schedule([], jitter: .none).maxAttempts == 1)
    }

    @Test func standardWebhooksScheduleHasEightAttempts() {
        let policy = RetryPolicy.standardWebhooks
        #expect(policy.maxAttempts == 8)
        let schedule = (1...7).map { policy.nominalDelay(afterAttempt: $0) }
        #expect(schedule == [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000].map { Duration.seconds($0) })
        #expect(policy.cap == nil)
    }

    @Test func standardWebhooksJitterStaysWithinTwentyPercent() {
        let policy = RetryPolicy.standardWebhooks
        var generator = SplitMix64(seed: 42)
        for attempt in 1...7 {
            let nominal = policy.nominalDelay(afterAttempt: attempt).inSeconds
            let samples = (0..<5_000).map { _ in policy.delay(afterAttempt: attempt, using: &generator).inSeconds }
            #expect(samples.allSatisfy { $0 >= nominal * 0.8 - 1e-9 && $0 <= nominal * 1.2 + 1e-9 })
            // The whole band is used, not just its middle.
            #expect(samples.min()! < nominal * 0.81)
            #expect(samples.max()! > nominal * 1.19)
        }
    }

    @Test func fullJitterIsUniformBetweenZeroAndTheComputedDelay() {
        let policy = RetryPolicy.exponential(base: .seconds(1), cap: .seconds(3_600), maxAttempts: 20, jitter: .full)
        var generator = SplitMix64(seed: 7)
        for attempt in 1...14 {
            let nominal = policy.nominalDelay(afterAttempt: attempt).inSeconds
            let samples = (0..<4_000).map { _ in policy.delay(afterAttempt: attempt, using: &generator).inSeconds }
            #expect(samples.allSatisfy { $0 >= 0 && $0 <= nominal })
            let mean = samples.reduce(0, +) / Double(samples.count)
            #expect(abs(mean - nominal / 2) < nominal * 0.03)
            #expect(samples.min()! < nominal * 0.01)
            #expect(samples.max()! > nominal * 0.99)
            let lowerHalf = samples.filter { $0 < nominal / 2 }.count
            #expect((1_800...2_200).contains(lowerHalf))
        }
    }

    @Test func jitterNeverExceedsTheCap() {
        let full = RetryPolicy.exponential(base: .seconds(10), cap: .seconds(60), maxAttempts: 30, jitter: .full)
        let proportional = RetryPolicy.exponential(
            base: .seconds(10), cap: .seconds(60), maxAttempts: 30, jitter: .proportional(0.5))
        var generator = SplitMix64(seed: 9)
        for _ in 0..<2_000 {
            #expect(full.delay(afterAttempt: 20, using: &generator) <= .seconds(60))
            #expect(proportional.delay(afterAttempt: 20, using: &generator) <= .seconds(60))
        }
    }

    @Test func theSameSeedGivesTheSameDelays() {
        let policy = RetryPolicy.exponential(base: .seconds(2), cap: .seconds(600), maxAttempts: 8, jitter: .full)
        var first = SplitMix64(seed: 1234)
        var second = SplitMix64(seed: 1234)
        let a = (1...7).map { policy.delay(afterAttempt: $0, using: &first) }
        let b = (1...7).map { policy.delay(afterAttempt: $0, using: &second) }
        #expect(a == b)
    }
}
