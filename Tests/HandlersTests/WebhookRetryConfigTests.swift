import Core
import Handlers
import PlannedEffects
import Testing

@Suite struct WebhookRetryConfigTests {
    @Test func theColumnDefault() throws {
        let config = try WebhookRetryConfig(json: #"{"max_retries": 3, "retry_delay": 1000}"#)
        #expect(config.maxRetries == 3)
        #expect(config.retryDelay == .seconds(1))
        let policy = config.policy()
        #expect(policy == .exponential(base: .seconds(1), multiplier: 2, cap: .seconds(3_600), maxAttempts: 4, jitter: .full))
        #expect((1...3).map { policy.nominalDelay(afterAttempt: $0) } == [.seconds(1), .seconds(2), .seconds(4)])
    }

    @Test func aCustomCap() throws {
        let policy = try WebhookRetryConfig(json: #"{"max_retries": 20, "retry_delay": 500}"#).policy(cap: .seconds(60))
        #expect(policy.maxAttempts == 21)
        #expect(policy.nominalDelay(afterAttempt: 20) == .seconds(60))
    }

    @Test(arguments: [
        ("{}", 3, 1_000),
        (#"{"max_retries": null, "retry_delay": null}"#, 3, 1_000),
        (#"{"max_retries": 0}"#, 0, 1_000),
        (#"{"retry_delay": 0}"#, 3, 0),
        (" \n{ \"retry_delay\" :\t250 ,\r\n \"max_retries\":5 } \n", 5, 250),
        (#"{"max_retries": 1e1, "retry_delay": 1000.0}"#, 10, 1_000),
        (#"{"max_retries": 2, "max_retries": 4}"#, 4, 1_000),
        (#"{"max_retries": 100, "retry_delay": 86400000}"#, 100, 86_400_000),
        (#"{"max_retries": -0}"#, 0, 1_000),
        (#"{"note": "caf\u00e9 \ud83d\ude00 \"q\" \\ \/", "backoff": {"kind": ["x", {"y": null}], "n": -1.5e-3}, "on": true, "off": false, "max_retries": 2}"#, 2, 1_000),
        (#"{"max\u005fretries": 7}"#, 7, 1_000),
    ] as [(String, Int, Int64)])
    func acceptedForms(json: String, maxRetries: Int, retryDelayMilliseconds: Int64) throws {
        let config = try WebhookRetryConfig(json: json)
        #expect(config.maxRetries == maxRetries)
        #expect(config.retryDelay == .milliseconds(retryDelayMilliseconds))
    }

    @Test(arguments: [
        (#"{"max_retries": "3"}"#, "max_retries", #""3""#),
        (#"{"max_retries": -1}"#, "max_retries", "-1"),
        (#"{"max_retries": 2.5}"#, "max_retries", "2.5"),
        (#"{"max_retries": 101}"#, "max_retries", "101"),
        (#"{"max_retries": true}"#, "max_retries", "true"),
        (#"{"max_retries": {"n": 3}}"#, "max_retries", #"{"n":3}"#),
        (#"{"retry_delay": -5}"#, "retry_delay", "-5"),
        (#"{"retry_delay": 86400001}"#, "retry_delay", "86400001"),
        (#"{"retry_delay": 1e400}"#, "retry_delay", "1e400"),
        (#"{"retry_delay": [1000]}"#, "retry_delay", "[1000]"),
        (#"{"retry_delay": "1s"}"#, "retry_delay", #""1s""#),
    ])
    func badFieldsAreNamed(json: String, field: String, value: String) {
        #expect(throws: RetryConfigError.invalidField(
            name: field, value: value,
            expected: field == "max_retries" ? "an integer from 0 to 100" : "an integer from 0 to 86400000"
        )) {
            try WebhookRetryConfig(json: json)
        }
    }

    /// A value as long as a row can hold is named by its first 120 characters, not quoted whole.
    @Test func aLongBadValueIsCutInTheMessage() {
        let long = String(repeating: "A", count: 1_000_000)
        #expect(throws: RetryConfigError.invalidField(
            name: "max_retries", value: "\"" + String(repeating: "A", count: 119) + "…", expected: "an integer from 0 to 100"
        )) {
            try WebhookRetryConfig(json: #"{"max_retries": ""# + long + #""}"#)
        }
    }

    @Test func theErrorMessageNamesTheField() {
        do {
            _ = try WebhookRetryConfig(json: #"{"max_retries": "3"}"#)
            Issue.record("expected an error")
        } catch {
            #expect(error.description == #"retry_config.max_retries must be an integer from 0 to 100, got "3""#)
        }
    }

    @Test(arguments: ["[]", "3", #""max_retries""#, "null", " [1, {\"a\": 2}] "])
    func nonObjectsAreRefused(json: String) {
        #expect(throws: RetryConfigError.notAnObject) { try WebhookRetryConfig(json: json) }
    }

    @Test(arguments: [
        "", "   ", "{", #"{"max_retries": 3,}"#, #"{"max_retries" 3}"#, #"{"max_retries": 03}"#,
        #"{"a": tru}"#, "{} x", "[] x", "{'max_retries': 1}", #"{"max_retries": 3 "retry_delay": 1}"#,
        #"{"a": "\x"}"#, #"{"a": "\u12"}"#, "{\"a\": \"tab\tinside\"}", #"{"a": 1.}"#, #"{"a": -}"#,
        #"{"a": 1e}"#, #"{"a": "open}"#, #"{max_retries: 3}"#,
        // Deeper than the parser's nesting limit and unclosed: refused, never a stack overflow.
        "{\"a\": " + String(repeating: "[", count: 600) + String(repeating: "]", count: 599) + "}",
    ])
    func malformedJSONIsRefused(json: String) {
        #expect {
            try WebhookRetryConfig(json: json)
        } throws: { error in
            guard let error = error as? RetryConfigError, case .malformedJSON = error else { return false }
            return error.description.hasPrefix("retry_config is not valid JSON at byte ")
        }
    }
}
