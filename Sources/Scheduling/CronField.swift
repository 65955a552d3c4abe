/// The five fields of a cron expression, in the order they are written.
public enum CronField: String, Sendable, CaseIterable {
    case minute
    case hour
    case dayOfMonth = "day-of-month"
    case month
    case dayOfWeek = "day-of-week"

    /// What a value may be; day-of-week takes 7 as well as 0 for Sunday, as cron does.
    var range: ClosedRange<Int> {
        switch self {
        case .minute: 0...59
        case .hour: 0...23
        case .dayOfMonth: 1...31
        case .month: 1...12
        case .dayOfWeek: 0...7
        }
    }

    /// Names accepted instead of numbers (any case), the first naming `range.lowerBound`.
    var names: [String] {
        switch self {
        case .month: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
        case .dayOfWeek: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
        case .minute, .hour, .dayOfMonth: []
        }
    }
}

/// Why a cron expression was refused, naming the field when one is at fault, so a
/// configuration error can point at it: `cron field "hour": 24 is out of range 0-23`.
public struct CronError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: CronField?
    public var reason: String

    public var description: String {
        guard let field else { return reason }
        return "cron field \"\(field.rawValue)\": \(reason)"
    }
}
