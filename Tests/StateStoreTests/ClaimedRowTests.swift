import Foundation
import PlannedEffects
@testable import StateStore
import Testing

/// A claimed row as the claim statement returns it, read into what a dispatcher sends.
@Suite struct ClaimedRowTests {
    private static func row(policy: String? = #"{"kind":"fixed","delay_ms":10000,"max_attempts":3}"#,
                            headers: String? = #"{"Content-Type":"application/json","X-Count":3}"#,
                            previousStatus: String? = "failed") -> [String?] {
        ["42", "echo:0/20:3:echo", "http://receiver.test/hook", "POST", headers, "service_key", #"{"a":1}"#,
         policy, "5", "public.items:id=1", previousStatus, "attempt", "3", "webhook:7", "echo", "1764720000.25"]
    }

    private static func decode(_ row: [String?]) -> ClaimedDelivery.Decoded? {
        var policies: [String: Result<RetryPolicy, any Error>] = [:]
        return ClaimedDelivery.decode(claimedRow: row, policies: &policies)
    }

    @Test func aRowReadsIntoTheDeliveryItNames() throws {
        let decoded = try #require(Self.decode(Self.row()))
        #expect(decoded.unreadablePolicy == nil)
        let delivery = decoded.delivery
        #expect(delivery.id == 42 && delivery.idempotencyKey == "echo:0/20:3:echo")
        #expect(delivery.url == "http://receiver.test/hook" && delivery.method == "POST")
        #expect(delivery.auth == "service_key" && delivery.body == #"{"a":1}"# && delivery.attemptField == "attempt")
        #expect(delivery.policy == .fixed(delay: .seconds(10), maxAttempts: 3))
        #expect(delivery.attempt == 5 && delivery.requeuedAtAttempt == 3 && delivery.policyAttempt == 2)
        #expect(delivery.orderingKey == "public.items:id=1" && delivery.previousStatus == .failed)
        #expect(delivery.endpoint == "webhook:7" && delivery.handler == "echo")
        #expect(delivery.createdAt == Date(timeIntervalSince1970: 1_764_720_000.25))
        // Only string members are headers.
        #expect(delivery.headers.map(\.0) == ["Content-Type"] && delivery.headers.map(\.1) == ["application/json"])
    }

    @Test func anUnreadablePolicyGivesOneAttemptAndSaysWhy() throws {
        let decoded = try #require(Self.decode(Self.row(policy: #"{"kind":"lunar"}"#)))
        #expect(decoded.unreadablePolicy != nil)
        #expect(decoded.delivery.policy == .fixed(delay: .zero, maxAttempts: 1))
    }

    @Test func unreadableHeadersAreNone() throws {
        #expect(try #require(Self.decode(Self.row(headers: "[1]"))).delivery.headers.isEmpty)
        #expect(try #require(Self.decode(Self.row(headers: nil))).delivery.headers.isEmpty)
    }

    @Test func aRowMissingWhatTheTableRequiresIsNotADelivery() {
        #expect(Self.decode(Self.row(policy: nil)) == nil)
        #expect(Self.decode(Self.row(previousStatus: "lost")) == nil)
        #expect(Self.decode(Array(Self.row().dropLast())) == nil)
    }

    /// A claim reads each stored policy once: rows with the same text share it, a row with
    /// another text gets its own, and every row with an unreadable one is told so.
    @Test func aClaimReadsEachStoredPolicyOnce() throws {
        var policies: [String: Result<RetryPolicy, any Error>] = [:]
        let rows = [Self.row(), Self.row(policy: #"{"kind":"fixed","delay_ms":500,"max_attempts":2}"#), Self.row(), Self.row(policy: #"{"kind":"lunar"}"#),
                    Self.row(policy: #"{"kind":"lunar"}"#)]
        let decoded = try rows.map { try #require(ClaimedDelivery.decode(claimedRow: $0, policies: &policies)) }
        #expect(policies.count == 3)
        #expect(decoded[0].delivery.policy == .fixed(delay: .seconds(10), maxAttempts: 3))
        #expect(decoded[2].delivery.policy == decoded[0].delivery.policy)
        #expect(decoded[1].delivery.policy == .fixed(delay: .milliseconds(500), maxAttempts: 2))
        #expect(decoded.map { $0.unreadablePolicy == nil } == [true, true, true, false, false])
        #expect(decoded[4].delivery.policy == .fixed(delay: .zero, maxAttempts: 1))
    }
}
