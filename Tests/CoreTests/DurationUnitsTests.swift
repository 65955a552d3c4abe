import Core
import Testing

@Suite struct DurationUnitsTests {
    @Test func wholeUnitsTruncateTowardZero() {
        #expect(Duration.milliseconds(1_999).wholeMilliseconds == 1_999)
        #expect(Duration.microseconds(1_999).wholeMilliseconds == 1)
        #expect(Duration.nanoseconds(1_999).wholeMicroseconds == 1)
        #expect(Duration.seconds(3).wholeMicroseconds == 3_000_000)
        #expect(Duration.microseconds(-1_999).wholeMilliseconds == -1)
        #expect(Duration.milliseconds(-2_500).wholeMicroseconds == -2_500_000)
    }

    /// A configured interval far beyond what Int64 holds is clamped, not a crash.
    @Test func wholeUnitsSaturate() {
        #expect(Duration.seconds(Int64.max).wholeMilliseconds == .max)
        #expect(Duration.seconds(Int64.min).wholeMicroseconds == .min)
        #expect(Duration.seconds(Int64.max / 1_000_000).wholeMicroseconds == Int64.max / 1_000_000 * 1_000_000)
    }

    @Test func inSecondsKeepsTheFraction() {
        #expect(Duration.milliseconds(1_500).inSeconds == 1.5)
        #expect(Duration.milliseconds(-250).inSeconds == -0.25)
        #expect(Duration.zero.inSeconds == 0)
    }
}
