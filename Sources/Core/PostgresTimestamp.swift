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
    public var postgresText: String { formatted(dateTimeSeparator: UInt8(ascii: " "), zone: "+00") }

    /// RFC 3339 in UTC (`2026-11-23T21:42:07.1234Z`), as webhook bodies carry times.
    public var rfc3339: String { formatted(dateTimeSeparator: UInt8(ascii: "T"), zone: "Z") }

    /// Written digit by digit into one buffer: a webhook's body carries its commit time, so
    /// this runs for every event planned.
    private func formatted(dateTimeSeparator: UInt8, zone: StaticString) -> String {
        var seconds = microseconds / 1_000_000
        var fraction = microseconds % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (year, month, day) = CivilCalendar.date(daysSince2000: days)
        var text: [UInt8] = []
        text.reserveCapacity(32)
        /// The year: at least four digits, more past 9999.
        func appendYear(_ value: Int64) {
            let decimal = Array(String(value).utf8)
            if decimal.count < 4 { text.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: 4 - decimal.count)) }
            text.append(contentsOf: decimal)
        }
        /// A field below 100, in two digits, then its separator.
        func appendTwoDigits(_ value: Int64, then separator: UInt8?) {
            text.append(UInt8(ascii: "0") + UInt8(value / 10))
            text.append(UInt8(ascii: "0") + UInt8(value % 10))
            if let separator { text.append(separator) }
        }
        appendYear(year)
        text.append(UInt8(ascii: "-"))
        appendTwoDigits(month, then: UInt8(ascii: "-"))
        appendTwoDigits(day, then: dateTimeSeparator)
        appendTwoDigits(secondOfDay / 3600, then: UInt8(ascii: ":"))
        appendTwoDigits(secondOfDay / 60 % 60, then: UInt8(ascii: ":"))
        appendTwoDigits(secondOfDay % 60, then: nil)
        if fraction != 0 {
            text.append(UInt8(ascii: "."))
            var divisor: Int64 = 100_000
            while fraction != 0 {
                text.append(UInt8(ascii: "0") + UInt8(fraction / divisor))
                fraction %= divisor
                divisor /= 10
            }
        }
        zone.withUTF8Buffer { text.append(contentsOf: $0) }
        return String(decoding: text, as: UTF8.self)
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
