extension Duration {
    /// Truncated to whole milliseconds and saturated, so that encoding and timeouts never trap.
    public var wholeMilliseconds: Int64 { whole(unitsPerSecond: 1_000) }

    /// Truncated to whole microseconds and saturated: Postgres timestamps count microseconds.
    public var wholeMicroseconds: Int64 { whole(unitsPerSecond: 1_000_000) }

    /// Seconds as a `Double`, for arithmetic that would overflow `Duration` (exponential
    /// backoff) and for rates.
    public var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// Truncated toward zero: `components` gives both parts the duration's sign.
    private func whole(unitsPerSecond units: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: units)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflowAgain) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / units))
        if overflowAgain { return seconds < 0 ? .min : .max }
        return total
    }
}
