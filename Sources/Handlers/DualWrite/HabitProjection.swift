import Core
import Decoding
import PlannedEffects

/// What one `habit_tracker` row becomes in the new schema: its child, its week, one habit
/// per element of `habits` (position = index) and one record per non-empty day.
///
/// The rules for `habits`, chosen so that nothing is guessed:
/// - NULL, or an empty array, is a week without habits;
/// - otherwise it must be an array of objects, each with a non-blank string `name` (blank:
///   empty or ASCII whitespace only);
///   `time_period` is a string or absent/null;
/// - `times` is absent/null (no records) or an array of exactly 7 values, Monday first;
///   each is `"done"`, `"partial"`, `"missed"`, or `""`/null for no record.
/// Anything else is a `HabitProjectionError` naming the row, the element and the problem.
public struct HabitProjection: Sendable, Equatable {
    public struct Child: Sendable, Hashable {
        public var userID: String
        public var name: String

        public init(userID: String, name: String) {
            self.userID = userID
            self.name = name
        }
    }

    public struct Week: Sendable, Equatable {
        public var sourceID: Int64
        /// ISO `YYYY-MM-DD`.
        public var startDate: String
        public var period: String?

        public init(sourceID: Int64, startDate: String, period: String?) {
            self.sourceID = sourceID
            self.startDate = startDate
            self.period = period
        }
    }

    public struct Habit: Sendable, Equatable {
        public var name: String
        public var timePeriod: String?
        public var position: Int
        public var records: [Record]
    }

    public struct Record: Sendable, Equatable {
        /// ISO `YYYY-MM-DD`: the week's start plus the day's index.
        public var date: String
        public var status: String

        public init(date: String, status: String) {
            self.date = date
            self.status = status
        }
    }

    public static let statuses: Set<String> = ["done", "partial", "missed"]

    /// Empty or ASCII whitespace only: the same class as `sql/008`'s `[ \t\n\r\v\f]`, so
    /// the service and drift-check agree on every name, whatever the database's locale.
    static func isBlank(_ text: String) -> Bool {
        text.utf8.allSatisfy { [0x20, 0x09, 0x0A, 0x0D, 0x0B, 0x0C].contains($0) }
    }

    /// `children` is unique on (user_id, name) and a btree entry holds at most 2704 bytes: a
    /// longer name would fail its batch's transaction on every read and stop the stream.
    /// `sql/023` gives drift-check the same rule.
    static let maxChildNameBytes = 2000

    /// `8-4-4-4-12` hex digits in either case, as a uuid column prints them, lowercased as
    /// Postgres stores them; nil for anything else.
    static func canonicalUUID(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count == 36 else { return nil }
        for (index, byte) in bytes.enumerated() {
            if [8, 13, 18, 23].contains(index) {
                guard byte == UInt8(ascii: "-") else { return nil }
            } else if !(byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")),
                      !(byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "f")) {
                return nil
            }
        }
        return text.lowercased()
    }

    public var child: Child
    public var week: Week
    public var habits: [Habit]

    /// Projects a row given as its text values (`habits` as JSON text, `week_start_date` as ISO date).
    public init(id: String?, userID: String?, childName: String?, weekStartDate: String?, weekPeriod: String?,
                habits habitsJSON: String?) throws(HabitProjectionError) {
        guard let id, let sourceID = Int64(id) else { throw HabitProjectionError(row: id, problem: "id is not a bigint") }
        func fail(_ problem: String) -> HabitProjectionError { HabitProjectionError(row: id, problem: problem) }
        guard let userID else { throw fail("user_id is NULL") }
        // The new schema's user_id is a uuid: other text (a column changed to text) would
        // fail the batch's cast on every read of it.
        guard let canonicalUserID = Self.canonicalUUID(userID) else { throw fail("user_id is not a uuid") }
        guard let childName, !Self.isBlank(childName) else { throw fail("child_name is NULL or blank") }
        guard childName.utf8.count <= Self.maxChildNameBytes else {
            throw fail("child_name is longer than \(Self.maxChildNameBytes) bytes")
        }
        guard let weekStartDate, let start = CivilDate(iso: weekStartDate) else {
            throw fail("week_start_date is NULL or not a date")
        }
        child = Child(userID: canonicalUserID, name: childName)
        week = Week(sourceID: sourceID, startDate: start.iso, period: weekPeriod)
        habits = []
        guard let habitsJSON else { return }
        let document: JSONValue
        // Postgres stores jsonb at any depth and drift-check's SQL reads it so: members nested past
        // the parser's bound are never projected, so they must not make the row invalid.
        do { document = try JSONParser.parse(habitsJSON, deepValues: .emptied) } catch {
            throw fail("habits is not valid JSON: \(error)")
        }
        guard case .array(let elements) = document else { throw fail("habits is not a JSON array") }
        for (position, element) in elements.enumerated() {
            let path = "habits[\(position)]"
            guard case .object = element else { throw fail("\(path) is not an object") }
            guard case .string(let name)? = element["name"], !Self.isBlank(name) else {
                throw fail("\(path) has no non-blank string \"name\"")
            }
            // A json or text column may spell U+0000 (`\u0000`); a text column cannot hold it.
            guard !name.unicodeScalars.contains("\0") else { throw fail("\(path).name holds U+0000, which text cannot hold") }
            let timePeriod: String?
            switch element["time_period"] {
            case nil, .null?: timePeriod = nil
            case .string(let text)? where text.unicodeScalars.contains("\0"):
                throw fail("\(path).time_period holds U+0000, which text cannot hold")
            case .string(let text)?: timePeriod = text
            default: throw fail("\(path).time_period is not a string")
            }
            var records: [Record] = []
            switch element["times"] {
            case nil, .null?:
                break
            case .array(let days)?:
                guard days.count == 7 else { throw fail("\(path).times has \(days.count) values, not 7") }
                for (day, value) in days.enumerated() {
                    switch value {
                    case .null, .string(""):
                        continue
                    case .string(let status) where Self.statuses.contains(status):
                        records.append(Record(date: start.adding(days: day).iso, status: status))
                    default:
                        throw fail("\(path).times[\(day)] is not \"done\", \"partial\", \"missed\", \"\" or null")
                    }
                }
            default:
                throw fail("\(path).times is not an array")
            }
            habits.append(Habit(name: name, timePeriod: timePeriod, position: position, records: records))
        }
    }
}

extension HabitProjection {
    /// The form the service stages (`dual_write_staged.projection`), which `sql/019`'s
    /// `staged_*` views read: `{"user_id", "child_name", "week_start_date",
    /// "week_period", "habits": [{"name", "time_period", "records": [{"date", "status"}]}]}`.
    public var json: String {
        var writer = JSONWriter(capacity: 256 + habits.count * 256)
        writer.beginObject()
        writer.key("user_id")
        writer.string(child.userID)
        writer.key("child_name")
        writer.string(child.name)
        writer.key("week_start_date")
        writer.string(week.startDate)
        writer.key("week_period")
        if let period = week.period { writer.string(period) } else { writer.null() }
        writer.key("habits")
        writer.beginArray()
        for habit in habits {
            writer.beginObject()
            writer.key("name")
            writer.string(habit.name)
            writer.key("time_period")
            if let timePeriod = habit.timePeriod { writer.string(timePeriod) } else { writer.null() }
            writer.key("records")
            writer.beginArray()
            for record in habit.records {
                writer.beginObject()
                writer.key("date")
                writer.string(record.date)
                writer.key("status")
                writer.string(record.status)
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return writer.string
    }
}

/// A `habit_tracker` row whose `habits` (or key columns) cannot be projected.
public struct HabitProjectionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The row's id as text, when it has one.
    public var row: String?
    public var problem: String

    public var description: String { "habit_tracker row \(row ?? "?") cannot be projected: \(problem)" }
}

/// A date as days on Postgres' own calendar (`CivilCalendar`), for `week_start_date + index`.
struct CivilDate: Hashable {
    var daysSince2000: Int64

    init?(iso text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int64(parts[0]), let month = Int64(parts[1]), let day = Int64(parts[2]),
              (1...12).contains(month), (1...CivilCalendar.daysInMonth(year: year, month: month)).contains(day)
        else { return nil }
        daysSince2000 = CivilCalendar.daysSince2000(year: year, month: month, day: day)
    }

    private init(daysSince2000: Int64) { self.daysSince2000 = daysSince2000 }

    func adding(days: Int) -> CivilDate { CivilDate(daysSince2000: daysSince2000 + Int64(days)) }

    var iso: String {
        let (year, month, day) = CivilCalendar.date(daysSince2000: daysSince2000)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2)
    }
}
