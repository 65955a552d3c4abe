import Core

extension PostgresTimestamp {
    /// A `timestamptz` value as a stream pinned to ISO DateStyle renders it (the same text
    /// wal2json prints for a commit time); nil for anything else.
    public init?(timestamptzText text: String) {
        var text = text
        guard let parsed = text.withUTF8({ PostgresTimestamp(wal2jsonText: $0) }) else { return nil }
        self = parsed
    }

    /// Parses a `timestamptz` as wal2json prints it with `timestamptz_to_str`: always ISO
    /// style in the session time zone, e.g. `2026-11-23 21:42:07.123456+00`,
    /// `2026-11-23 23:12:07.5+01:30`, `0044-03-15 10:00:00+00 BC`. Nil for anything else.
    init?(wal2jsonText text: UnsafeBufferPointer<UInt8>) {
        var reader = DigitReader(text: text)
        guard let yearDigits = reader.digits(minimum: 4, maximum: 9), reader.skip("-"),
              let month = reader.digits(exactly: 2), reader.skip("-"),
              let day = reader.digits(exactly: 2), reader.skip(" "),
              let hour = reader.digits(exactly: 2), reader.skip(":"),
              let minute = reader.digits(exactly: 2), reader.skip(":"),
              let second = reader.digits(exactly: 2)
        else { return nil }
        var fraction: Int64 = 0
        if reader.skip(".") {
            let start = reader.position
            guard let digits = reader.digits(minimum: 1, maximum: 6) else { return nil }
            fraction = digits
            for _ in (reader.position - start)..<6 { fraction *= 10 }
        }
        let sign: Int64
        if reader.skip("+") { sign = 1 } else if reader.skip("-") { sign = -1 } else { return nil }
        guard let offsetHours = reader.digits(exactly: 2) else { return nil }
        var offsetSeconds = offsetHours * 3600
        if reader.skip(":") {
            guard let offsetMinutes = reader.digits(exactly: 2) else { return nil }
            offsetSeconds += offsetMinutes * 60
            if reader.skip(":") {
                guard let extra = reader.digits(exactly: 2) else { return nil }
                offsetSeconds += extra
            }
        }
        let year = reader.skip(" BC") ? 1 - yearDigits : yearDigits
        guard reader.atEnd, yearDigits > 0, (1...12).contains(month),
              (1...CivilCalendar.daysInMonth(year: year, month: month)).contains(day),
              hour < 24, minute < 60, second < 60
        else { return nil }
        // Postgres stops at 294276 AD; a longer year from a hostile stream must be refused, not trap.
        guard yearDigits <= 294_277 else { return nil }
        let days = CivilCalendar.daysSince2000(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - sign * offsetSeconds
        let (whole, overflowed) = seconds.multipliedReportingOverflow(by: 1_000_000)
        let (microseconds, overflowedAgain) = whole.addingReportingOverflow(fraction)
        guard !overflowed, !overflowedAgain else { return nil }
        self.init(microsecondsSince2000: microseconds)
    }
}

private struct DigitReader {
    let text: UnsafeBufferPointer<UInt8>
    var position = 0

    var atEnd: Bool { position == text.count }

    mutating func skip(_ literal: StaticString) -> Bool {
        let length = literal.utf8CodeUnitCount
        guard position + length <= text.count else { return false }
        for index in 0..<length where text[position + index] != literal.utf8Start[index] { return false }
        position += length
        return true
    }

    mutating func digits(exactly count: Int) -> Int64? { digits(minimum: count, maximum: count) }

    mutating func digits(minimum: Int, maximum: Int) -> Int64? {
        var value: Int64 = 0
        var count = 0
        while count < maximum, position < text.count, text[position] &- UInt8(ascii: "0") < 10 {
            value = value * 10 + Int64(text[position] - UInt8(ascii: "0"))
            position += 1
            count += 1
        }
        return count >= minimum ? value : nil
    }
}
