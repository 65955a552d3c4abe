import RelayConfiguration
import Foundation
import Scheduling
import ServiceAssembly
import StateStore
import Testing

@Suite struct ScheduleListingTests {
    static func date(_ seconds: TimeInterval) -> Date { Date(timeIntervalSince1970: seconds) }

    @Test func builtInJobsUseReservedNamesAndComeFirst() throws {
        let config = try Config.load(path: nil, environment: ["CHANGERELAY_DUAL_WRITE_MODE": "apply"])
        let names = ScheduledJob.all(config).map(\.name)
        #expect(names == [BuiltInJobNames.idempotencyLogCleanup, BuiltInJobNames.deliveryRetention, BuiltInJobNames.bufferMarks])
        #expect(names.allSatisfy { $0.hasPrefix(BuiltInJobNames.reservedPrefix) })
        // With the dual-write sync off, idempotency_log is not this service's to clean.
        #expect(ScheduledJob.all(try Config.load(path: nil, environment: [:])).map(\.name)
            == [BuiltInJobNames.deliveryRetention, BuiltInJobNames.bufferMarks])
        let off = try Config.load(path: nil, environment: ["CHANGERELAY_DUAL_WRITE_MODE": "apply",
                                                             "CHANGERELAY_DUAL_WRITE_CLEANUP_INTERVAL_S": "0",
                                                             "CHANGERELAY_MESSAGE_BUFFER_ENABLED": "false"])
        // With message buffering off too, only the retention of deliveries is left.
        #expect(ScheduledJob.all(off).map(\.name) == [BuiltInJobNames.deliveryRetention])
    }

    @Test func eachJobIsOneLineWithItsLastOutcomeAndNextRun() throws {
        let jobs = ScheduledJob.all(try Config.load(path: nil, environment: ["CHANGERELAY_MESSAGE_BUFFER_ENABLED": "false"]))
        let now = Self.date(1_772_368_230) // 2026-03-01T12:30:30Z
        let never = ScheduleListing.lines(jobs: jobs, lastRuns: [:], now: now)
        #expect(never == ["changerelay.delivery_retention\t0 * * * *\t-\tnever run\t-\t2026-03-01T13:00:00Z"])
        let ok = ScheduleRuns.LastRun(dueAt: Self.date(1_772_366_400), startedAt: Self.date(1_772_366_400.004),
                                      finishedAt: Self.date(1_772_366_401), rows: 42, error: nil)
        #expect(ScheduleListing.lines(jobs: jobs, lastRuns: ["changerelay.delivery_retention": ok], now: now)
            == ["changerelay.delivery_retention\t0 * * * *\t2026-03-01T12:00:00Z\tok\t42\t2026-03-01T13:00:00Z"])
        let failed = ScheduleRuns.LastRun(dueAt: ok.dueAt, startedAt: ok.startedAt, finishedAt: ok.finishedAt, rows: nil,
                                          error: "relation \"x\" does not exist\nLINE 1: …")
        #expect(ScheduleListing.lines(jobs: jobs, lastRuns: ["changerelay.delivery_retention": failed], now: now)
            == ["changerelay.delivery_retention\t0 * * * *\t2026-03-01T12:00:00Z\terror: relation \"x\" does not exist\t-\t2026-03-01T13:00:00Z"])
    }
}
