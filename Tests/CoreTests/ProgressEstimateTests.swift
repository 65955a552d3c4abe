import Core
import Testing

@Suite struct ProgressEstimateTests {
    @Test func rateFractionAndTimeLeftFollowTheAverageSoFar() {
        let estimate = ProgressEstimate(done: 300, total: 1200, elapsed: .seconds(3))
        #expect(estimate.rate == 100)
        #expect(estimate.fraction == 0.25)
        #expect(estimate.remaining == .seconds(9))
    }

    @Test func nothingIsEstimatedBeforeThereIsSomethingToGoOn() {
        #expect(ProgressEstimate(done: 0, total: 100, elapsed: .seconds(5)).rate == nil)
        #expect(ProgressEstimate(done: 10, total: 100, elapsed: .zero).remaining == nil)
        let unknown = ProgressEstimate(done: 10, total: nil, elapsed: .seconds(1))
        #expect(unknown.fraction == nil && unknown.remaining == nil && unknown.rate == 10)
        // An empty range is done; past the total (a target that moved) stays at 100 %.
        #expect(ProgressEstimate(done: 0, total: 0, elapsed: .zero).fraction == 1)
        #expect(ProgressEstimate(done: 150, total: 100, elapsed: .seconds(1)).fraction == 1)
        #expect(ProgressEstimate(done: 150, total: 100, elapsed: .seconds(1)).remaining == .zero)
    }

    @Test func quantitiesAreBinaryBytesOrWholeUnits() {
        #expect(ProgressEstimate.quantity(512, unit: "B") == "512 B")
        #expect(ProgressEstimate.quantity(1536, unit: "B") == "1.5 KiB")
        #expect(ProgressEstimate.quantity(12_900_000, unit: "B") == "12.3 MiB")
        #expect(ProgressEstimate.quantity(3 << 30, unit: "B") == "3.0 GiB")
        #expect(ProgressEstimate.quantity(1234, unit: "rows") == "1234 rows")
    }

    @Test func durationsRoundUpToWholeSeconds() {
        #expect(ProgressEstimate.duration(.milliseconds(200)) == "1s")
        #expect(ProgressEstimate.duration(.seconds(45)) == "45s")
        #expect(ProgressEstimate.duration(.seconds(185)) == "3m05s")
        #expect(ProgressEstimate.duration(.seconds(7620)) == "2h07m")
    }

    @Test func aBarForATerminalAndALineForALog() {
        let estimate = ProgressEstimate(done: 1 << 20, total: 4 << 20, elapsed: .seconds(2))
        #expect(estimate.barLine(label: "replay s", unit: "B", detail: "3 skipped", width: 8)
            == "replay s [##------] 25% 1.0 MiB/4.0 MiB 512.0 KiB/s ETA 6s 3 skipped")
        #expect(estimate.plainLine(label: "replay s", unit: "B", detail: "3 skipped")
            == "replay s: 1.0 MiB of 4.0 MiB (25%), 512.0 KiB/s, ETA 6s; 3 skipped")
        let open = ProgressEstimate(done: 40, total: nil, elapsed: .seconds(4))
        #expect(open.barLine(label: "backfill", unit: "rows", detail: "") == "backfill 40 rows 10 rows/s")
        #expect(open.plainLine(label: "backfill", unit: "rows", detail: "") == "backfill: 40 rows, 10 rows/s")
    }
}
