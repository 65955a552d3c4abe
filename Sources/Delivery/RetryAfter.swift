import Core
import PlannedEffects
import Replication

/// Reading a `Retry-After` header (RFC 9110 §10.2.3): delta-seconds or an HTTP-date.
public enum RetryAfter {
    /// A receiver may ask for any wait; past an hour it is more likely a bug or a
    /// misconfigured proxy than a plan, and obeying it would hold the delivery (and, with an
    /// ordering key, everything queued behind it) for that long.
    public static let defaultCap: Duration = .seconds(3_600)

    /// The wait the header asks for, at most `cap`; nil when the value is neither form, so
    /// that a garbled header falls back to the retry policy instead of failing the delivery.
    /// A date in the past means "now" (zero). `now` is Unix seconds, passed in so that the
    /// result is reproducible.
    public static func delay(parsing header: String, now: Int64, cap: Duration = defaultCap) -> Duration? {
        let value = trimmingOptionalWhitespace(Array(header.utf8))
        guard !value.isEmpty else { return nil }
        let seconds: Int64
        if let delta = deltaSeconds(value) {
            seconds = delta
        } else if let date = HTTPDate.unixSeconds(imfFixdate: Array(value)) {
            let (difference, overflow) = date.subtractingReportingOverflow(now)
            seconds = overflow ? (date > now ? .max : 0) : max(difference, 0)
        } else {
            return nil
        }
        return min(.seconds(seconds), max(cap, .zero))
    }

    /// Strips the OWS (spaces and tabs) that may surround a field value.
    private static func trimmingOptionalWhitespace(_ bytes: [UInt8]) -> ArraySlice<UInt8> {
        let isWhitespace = { (byte: UInt8) in byte == 0x20 || byte == 0x09 }
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }),
              let last = bytes.lastIndex(where: { !isWhitespace($0) }) else { return [] }
        return bytes[first...last]
    }

    /// `1*DIGIT`, saturating: an absurdly long number is still a request to wait very long.
    private static func deltaSeconds(_ value: ArraySlice<UInt8>) -> Int64? {
        var seconds: Int64 = 0
        for byte in value {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 10)
            let (sum, overflowAgain) = scaled.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            seconds = overflow || overflowAgain ? .max : sum
        }
        return seconds
    }
}

/// HTTP dates in the preferred IMF-fixdate form, `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// The obsolete RFC 850 and asctime forms are not read: senders have been required to use
/// IMF-fixdate since RFC 2616, and the only consumer here is Retry-After, where an unread
/// date just falls back to the retry policy.
public enum HTTPDate {
    private static let dayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    private static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Unix seconds, or nil unless the text is exactly an IMF-fixdate with a real calendar
    /// date. Names are case-sensitive, as the grammar says. The day name is checked for
    /// spelling only, not against the date: a wrong weekday does not make the instant unclear.
    public static func unixSeconds(imfFixdate text: String) -> Int64? {
        unixSeconds(imfFixdate: Array(text.utf8))
    }

    static func unixSeconds(imfFixdate b: [UInt8]) -> Int64? {
        guard b.count == 29,
              dayNames.contains(where: { Array($0.utf8) == Array(b[0..<3]) }),
              b[3] == UInt8(ascii: ","), b[4] == UInt8(ascii: " "), b[7] == UInt8(ascii: " "),
              b[11] == UInt8(ascii: " "), b[16] == UInt8(ascii: " "), b[19] == UInt8(ascii: ":"),
              b[22] == UInt8(ascii: ":"), b[25] == UInt8(ascii: " "), Array(b[26..<29]) == Array("GMT".utf8),
              let monthIndex = monthNames.firstIndex(where: { Array($0.utf8) == Array(b[8..<11]) }),
              let day = number(b[5..<7]), let year = number(b[12..<16]),
              let hour = number(b[17..<19]), let minute = number(b[20..<22]), let second = number(b[23..<25])
        else { return nil }
        let month = Int64(monthIndex + 1)
        // Second 60 is a leap second; Unix time folds it into the next minute.
        guard (1...CivilCalendar.daysInMonth(year: year, month: month)).contains(day),
              hour < 24, minute < 60, second <= 60 else { return nil }
        return CivilCalendar.daysSince1970(year: year, month: month, day: day) * 86_400
            + hour * 3_600 + minute * 60 + second
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int64? {
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
