@testable import Delivery
import Replication
import Testing

/// The dispatcher reads the endpoints with work again only when its list is old or known to be stale.
@Suite struct EndpointCacheTests {
    final class Reads {
        var count = 0
        var answer = ["webhook:1"]
    }

    private static func current(_ cache: inout EndpointCache<[String]>, _ reads: Reads, at now: ContinuousClock.Instant) throws -> [String] {
        try cache.current(at: now) { () throws(PostgresError) in
            reads.count += 1
            return reads.answer
        }
    }

    @Test func aYoungListIsUsedAgainAndAnOldOneReadAgain() throws {
        var cache = EndpointCache<[String]>()
        let reads = Reads()
        let start = ContinuousClock.now
        #expect(try Self.current(&cache, reads, at: start) == ["webhook:1"])
        reads.answer = ["webhook:1", "webhook:2"]
        #expect(try Self.current(&cache, reads, at: start + EndpointCache<[String]>.maxAge - .milliseconds(1)) == ["webhook:1"])
        #expect(reads.count == 1)
        #expect(try Self.current(&cache, reads, at: start + EndpointCache<[String]>.maxAge) == ["webhook:1", "webhook:2"])
        #expect(reads.count == 2)
    }

    @Test func forgettingMakesTheNextClaimReadAgain() throws {
        var cache = EndpointCache<[String]>()
        let reads = Reads()
        let start = ContinuousClock.now
        _ = try Self.current(&cache, reads, at: start)
        cache.forget()
        reads.answer = []
        #expect(try Self.current(&cache, reads, at: start).isEmpty)
        #expect(reads.count == 2)
    }

    @Test func aFailedReadKeepsNothing() throws {
        var cache = EndpointCache<[String]>()
        let start = ContinuousClock.now
        #expect(throws: PostgresError.self) {
            try cache.current(at: start) { () throws(PostgresError) in
                throw PostgresError(.connectionLost, "gone", endpoint: "127.0.0.1:5432/postgres")
            }
        }
        let reads = Reads()
        #expect(try Self.current(&cache, reads, at: start) == ["webhook:1"])
        #expect(reads.count == 1)
    }
}
