#if canImport(FoundationEssentials)
import Core
import PlannedEffects
import FoundationEssentials
#else
import Foundation
#endif
import Testing
import Delivery

@Suite struct RetryPolicyCodingTests {
    private func encode(_ policy: RetryPolicy) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(policy), as: UTF8.self)
    }

    private func decode(_ json: String) throws -> RetryPolicy {
        try JSONDecoder().decode(RetryPolicy.self, from: Data(json.utf8))
    }

    @Test(arguments: [
        RetryPolicy.fixed(delay: .seconds(10), maxAttempts: 3),
        .exponential(base: .milliseconds(1_500), multiplier: 2.5, cap: .seconds(3_600), maxAttempts: 6, jitter: .full),
        .exponential(base: .seconds(1), cap: .seconds(60), maxAttempts: 2, jitter: .none),
        .standardWebhooks,
        .schedule([], jitter: .none),
    ])
    func roundTrips(policy: RetryPolicy) throws {
        #expect(try decode(try encode(policy)) == policy)
    }

    @Test func theStoredFormIsReadable() throws {
        #expect(try encode(.fixed(delay: .seconds(10), maxAttempts: 3))
            == #"{"delay_ms":10000,"kind":"fixed","max_attempts":3}"#)
        #expect(try encode(.exponential(base: .seconds(1), cap: .seconds(3_600), maxAttempts: 4, jitter: .full))
            == #"{"base_ms":1000,"cap_ms":3600000,"jitter":"full","kind":"exponential","max_attempts":4,"multiplier":2}"#)
        #expect(try encode(.standardWebhooks)
            == #"{"delays_ms":[5000,300000,1800000,7200000,18000000,36000000,36000000],"jitter":"proportional","jitter_fraction":0.2,"kind":"schedule"}"#)
    }

    @Test func subMillisecondPartsAreTruncated() throws {
        #expect(try encode(.fixed(delay: .microseconds(1_999), maxAttempts: 1)) == #"{"delay_ms":1,"kind":"fixed","max_attempts":1}"#)
    }

    @Test(arguments: [
        (#"{"kind":"fixed","delay_ms":1000,"max_attempts":0}"#, "max_attempts"),
        (#"{"kind":"fixed","delay_ms":-1,"max_attempts":3}"#, "delay_ms"),
        (#"{"kind":"exponential","base_ms":1000,"multiplier":0.5,"cap_ms":1000,"max_attempts":3,"jitter":"full"}"#, "multiplier"),
        (#"{"kind":"exponential","base_ms":1000,"multiplier":2,"cap_ms":-1,"max_attempts":3,"jitter":"full"}"#, "cap_ms"),
        (#"{"kind":"exponential","base_ms":1000,"multiplier":2,"cap_ms":1000,"max_attempts":3,"jitter":"some"}"#, "jitter"),
        (#"{"kind":"schedule","delays_ms":[1000,-5],"jitter":"none"}"#, "delays_ms"),
        (#"{"kind":"schedule","delays_ms":[1000],"jitter":"proportional","jitter_fraction":1.5}"#, "jitter_fraction"),
        (#"{"kind":"linear","delay_ms":1000}"#, "kind"),
    ])
    func invalidStoredPoliciesNameTheKey(json: String, key: String) {
        #expect {
            try decode(json)
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.codingPath.last?.stringValue == key
        }
    }
}
