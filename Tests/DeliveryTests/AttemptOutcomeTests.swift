import Core
import Delivery
import PlannedEffects
import Testing

@Suite struct AttemptOutcomeTests {
    /// 1994-11-06 08:49:37 UTC, the RFC's example date.
    static let rfcExample: Int64 = 784_111_777

    @Test(arguments: [200, 201, 202, 204, 226, 299])
    func twoHundredsSucceed(status: Int) {
        #expect(AttemptOutcome(status: status, now: 0) == .succeeded)
    }

    @Test(arguments: [300, 301, 302, 303, 304, 307, 308])
    func redirectsAreRetryableFailures(status: Int) {
        let outcome = AttemptOutcome(status: status, retryAfter: "5", now: 0)
        #expect(outcome == .retry(after: nil, failure: .status(status)))
        #expect(AttemptFailure.status(status).description == "HTTP \(status) (redirects are not followed)")
    }

    @Test func goneStopsAWebhookDeliveryAtOnceAndIsRetriedElsewhere() {
        #expect(AttemptOutcome(status: 410, retryAfter: "60", now: 0, goneEndsDelivery: true) == .giveUp(.endpointGone))
        #expect(GiveUpReason.endpointGone.description == "endpoint gone (HTTP 410)")
        #expect(AttemptOutcome(status: 410, retryAfter: "60", now: 0) == .retry(after: nil, failure: .status(410)))
    }

    @Test(arguments: [400, 401, 403, 404, 405, 408, 409, 413, 415, 422, 425, 451])
    func otherClientErrorsAreRetried(status: Int) {
        #expect(AttemptOutcome(status: status, now: 0) == .retry(after: nil, failure: .status(status)))
    }

    @Test(arguments: [500, 501, 502, 504, 507, 599])
    func serverErrorsAreRetriedWithoutReadingRetryAfter(status: Int) {
        #expect(AttemptOutcome(status: status, retryAfter: "120", now: 0) == .retry(after: nil, failure: .status(status)))
    }

    @Test(arguments: [0, 100, 101, 199, 600, 999])
    func statusesOutsideTheKnownClassesAreRetried(status: Int) {
        #expect(AttemptOutcome(status: status, now: 0) == .retry(after: nil, failure: .status(status)))
    }

    @Test(arguments: [429, 503])
    func retryAfterInSecondsIsHonoured(status: Int) {
        #expect(AttemptOutcome(status: status, retryAfter: "120", now: 0)
            == .retry(after: .seconds(120), failure: .status(status)))
        #expect(AttemptOutcome(status: status, retryAfter: nil, now: 0)
            == .retry(after: nil, failure: .status(status)))
    }

    @Test(arguments: [429, 503])
    func retryAfterAsAnHTTPDateIsRelativeToNow(status: Int) {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(AttemptOutcome(status: status, retryAfter: date, now: Self.rfcExample - 90)
            == .retry(after: .seconds(90), failure: .status(status)))
        #expect(AttemptOutcome(status: status, retryAfter: date, now: Self.rfcExample + 3_600)
            == .retry(after: .zero, failure: .status(status)))
    }

    @Test(arguments: [429, 503])
    func garbledRetryAfterIsIgnored(status: Int) {
        for garbage in ["", "soon", "-5", "1.5", "Sun, 06 Nov 1994 08:49:37 UTC"] {
            #expect(AttemptOutcome(status: status, retryAfter: garbage, now: 0)
                == .retry(after: nil, failure: .status(status)))
        }
    }

    @Test(arguments: [429, 503])
    func hugeRetryAfterIsClamped(status: Int) {
        #expect(AttemptOutcome(status: status, retryAfter: "86400", now: 0)
            == .retry(after: .seconds(3_600), failure: .status(status)))
        #expect(AttemptOutcome(status: status, retryAfter: "Fri, 31 Dec 9999 23:59:59 GMT", now: Self.rfcExample)
            == .retry(after: .seconds(3_600), failure: .status(status)))
        #expect(AttemptOutcome(status: status, retryAfter: "600", now: 0, retryAfterCap: .seconds(300))
            == .retry(after: .seconds(300), failure: .status(status)))
    }

    @Test(arguments: [
        TransportError.Kind.nameResolution, .connectFailed, .tls, .timedOut,
        .connectionReset, .invalidResponse, .responseTooLarge, .other,
    ])
    func transportErrorsAreRetried(kind: TransportError.Kind) {
        let error = TransportError(kind, detail: "from libcurl")
        #expect(AttemptOutcome(transportError: error) == .retry(after: nil, failure: .transport(error)))
    }

    @Test func transportErrorsDescribeThemselves() {
        #expect(TransportError(.connectFailed, detail: "Connection refused").description
            == "connection failed: Connection refused")
        #expect(TransportError(.timedOut).description == "timed out")
        #expect(AttemptFailure.transport(TransportError(.invalidResponse)).description == "invalid HTTP response")
        #expect(AttemptFailure.status(503).description == "HTTP 503")
    }
}
