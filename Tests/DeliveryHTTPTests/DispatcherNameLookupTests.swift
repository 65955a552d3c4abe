import Core
import Delivery
import Dispatch
import EmbeddedPostgres
import Foundation
import LocalReceiver
import Logging
import Replication
import TestSupport
import Testing

/// Every name is 127.0.0.1, except that a lookup of `hang.test` blocks until `release()`,
/// as a lookup does when the name server never answers, and then fails.
private final class StalledNameResolver: HostResolver {
    private let gate = DispatchSemaphore(value: 0)

    func addresses(of host: String) throws(HostResolutionError) -> [IPAddress] {
        guard host == "hang.test" else { return [IPAddress("127.0.0.1")!] }
        gate.wait()
        gate.signal()
        throw HostResolutionError("Temporary failure in name resolution")
    }

    func release() { gate.signal() }
}

/// The dispatcher against the schema `sql/` creates and a receiver on loopback, with the
/// SSRF guard's lookups answered by a table.
@Suite struct DispatcherNameLookupTests {
    /// A webhook whose host never resolves holds up its own tries only: the lookup runs
    /// off the dispatcher's loop, so another endpoint's deliveries, claimed after it, all
    /// arrive while it waits.
    @Test func aNameThatNeverResolvesHoldsUpOnlyItsOwnEndpoint() async throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let db = try cluster.connect()
        for migration in try SchemaFiles.migrations() { try db.execute(migration) }
        let receiver = try LocalReceiver()
        defer { receiver.stop() }
        let port = receiver.url.split(separator: ":").last!
        let ids = try db.query("""
            INSERT INTO public.webhook_configs (name, url, events)
            VALUES ('hang', 'http://hang.test:\(port)/hang', '{chat.message.created}'),
                   ('fast', 'http://fast.test:\(port)/fast', '{chat.message.created}')
            RETURNING id::text
            """, []).rows.map { $0[0]! }
        // The hanging endpoint's rows come first in the claim's order.
        try db.execute("""
            INSERT INTO changerelay.deliveries (idempotency_key, handler, source_lsn, target_url, body, retry_policy, auth, endpoint)
            SELECT 'msg_' || c.name || g, 'webhooks', '0/300', c.url, '{}', '{"kind":"fixed","delay_ms":60000,"max_attempts":2}',
                   'webhook:' || c.id, 'webhook:' || c.id
            FROM unnest(ARRAY['\(ids[0])', '\(ids[1])']::bigint[]) WITH ORDINALITY AS o(id, n)
            JOIN public.webhook_configs c ON c.id = o.id, generate_series(1, 20) g
            ORDER BY o.n, g
            """)

        let resolver = StalledNameResolver()
        let dispatcher = Dispatcher(.init(stateURL: cluster.url, concurrency: 8, timeout: .seconds(5),
                                          maxInFlightPerEndpoint: 4, allowPrivateTargets: true),
                                    client: try HTTPClient(), logger: Logger(label: "test"), resolver: resolver)
        let stop = StopSignal()
        let stopped = StopSignal()
        try #require(startThread(detached: true) {
            dispatcher.run(until: stop, drain: .seconds(5))
            stopped.request()
        } != nil)
        // Waits without holding a thread: the dispatcher's tries need the cooperative pool, which
        // the suite's blocking tests can hold for minutes; the deadlines are for a hung run only.
        let arrived = await receiver.waitForRequests(count: 20, timeout: .seconds(300))
        resolver.release()
        stop.request()
        let deadline = ContinuousClock.now + .seconds(300)
        while !stopped.isRequested, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(stopped.isRequested)

        #expect(arrived)
        #expect(receiver.requests.allSatisfy { $0.path == "/fast" })
        let states = try db.query("""
            SELECT endpoint, status, count(*)::text FROM changerelay.deliveries GROUP BY 1, 2 ORDER BY 1, 2
            """, []).rows.map { $0.map { $0 ?? "" }.joined(separator: " ") }
        // The hanging name's tries failed as a transport failure would (retried later), none dead.
        #expect(states.contains("webhook:\(ids[1]) succeeded 20"))
        #expect(!states.contains { $0.hasPrefix("webhook:\(ids[0]) dead") })
    }
}
