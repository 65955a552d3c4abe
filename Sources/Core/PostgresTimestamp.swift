#if canImport(Glibc)
import Glibc
#endif

/// A point in time as the replication protocol carries it: microseconds since
/// 2000-01-01 00:00:00 UTC (the Postgres epoch), not the Unix epoch.
public struct PostgresTimestamp: Sendable, Hashable, Comparable {
    public var microseconds: Int64

    /// Seconds between 1970-01-01 and 2000-01-01.
    static let unixOffsetSeconds: Int64 = 946_684_800

    public init(microsecondsSince2000 microseconds: Int64) { self.microseconds = microseconds }

    public init(unixMicroseconds: Int64) {
        microseconds = unixMicroseconds - Self.unixOffsetSeconds * 1_000_000
    }

    public var unixMicroseconds: Int64 { microseconds + Self.unixOffsetSeconds * 1_000_000 }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.microseconds < rhs.microseconds }

    /// This time moved on by `duration`, to the microsecond.
    public func advanced(by duration: Duration) -> PostgresTimestamp {
        PostgresTimestamp(microsecondsSince2000: microseconds + duration.wholeMicroseconds)
    }

    /// The time now, by this machine's clock.
    public static var now: PostgresTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return PostgresTimestamp(unixMicroseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1_000)
    }

    /// The text Postgres prints for a `timestamptz` with `TimeZone=UTC` and
    /// `DateStyle=ISO`: `2026-11-23 21:42:07.1234+00`, trailing fraction zeros dropped.
    public var postgresText: String {
        var seconds = microseconds / 1_000_000
        var fraction = microseconds % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (year, month, day) = CivilCalendar.date(daysSince2000: days)
        var text = Self.pad(year, 4) + "-" + Self.pad(month, 2) + "-" + Self.pad(day, 2) + " "
            + Self.pad(secondOfDay / 3600, 2) + ":" + Self.pad(secondOfDay / 60 % 60, 2) + ":"
            + Self.pad(secondOfDay % 60, 2)
        if fraction != 0 {
            var digits = Self.pad(fraction, 6)
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "+00"
    }

    /// RFC 3339 in UTC (`2026-11-23T21:42:07.1234Z`), as webhook bodies carry times.
    public var rfc3339: String {
        String(postgresText.dropLast(3).map { $0 == " " ? "T" : $0 }) + "Z"
    }

    /// RFC 3339 in UTC with exactly three fraction digits (`2026-11-23T21:42:07.120Z`), as log lines
    /// carry times: fixed width, so lines sort by time as text.
    public var rfc3339Milliseconds: String {
        var seconds = microseconds / 1_000_000
        var fraction = microseconds % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        return PostgresTimestamp(microsecondsSince2000: seconds * 1_000_000).rfc3339.dropLast() + "." + Self.pad(fraction / 1000, 3) + "Z"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
