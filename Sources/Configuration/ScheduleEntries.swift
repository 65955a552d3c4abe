import Core
import Scheduling

/// Reads the `[[schedules]]` entries of a file. Each error names the entry by index and
/// name and the key or cron field at fault (`schedules[2] "vacuum": cron field "hour":
/// 24 is out of range 0-23`), with the line it is on, so a schedule that would never run
/// as meant stops `run` before anything starts.
enum ScheduleEntries {
    static let key = "schedules"
    static let accepted = ["name", "cron", "sql", "timeout_ms"]
    /// `statement_timeout` is an int4 of milliseconds.
    static let timeoutRange: ClosedRange<Int64> = 1...Int64(Int32.max)

    static func read(_ tables: [TOMLArrayTable], path: String) throws(ConfigError) -> [Config.Schedule] {
        var schedules: [Config.Schedule] = []
        var firstIndex: [String: Int] = [:]
        for (index, table) in tables.enumerated() {
            func fail(_ line: Int, _ reason: String, named name: String? = nil) -> ConfigError {
                let label = name.map { "schedules[\(index)] \"\($0)\"" } ?? "schedules[\(index)]"
                return ConfigError(key: key, origin: "\(path) line \(line)", reason: "\(label): \(reason)")
            }
            func string(_ name: String, in label: String?) throws(ConfigError) -> (text: String, line: Int) {
                guard let entry = table.values[name] else { throw fail(table.line, "missing key '\(name)'", named: label) }
                guard case .string(let text) = entry.value else {
                    throw fail(entry.line, "key '\(name)' must be a string, got \(entry.value.typeName)", named: label)
                }
                guard !text.allSatisfy(\.isWhitespace) else { throw fail(entry.line, "key '\(name)' must not be empty", named: label) }
                return (text, entry.line)
            }
            // An unknown key first: a misspelled `name` is better reported as itself than as missing.
            for (unknown, entry) in table.values.sorted(by: { $0.value.line < $1.value.line }) where !accepted.contains(unknown) {
                let named: String? = if case .string(let text)? = table.values["name"]?.value { text } else { nil }
                throw fail(entry.line, "unknown key '\(unknown)'; [[schedules]] accepts \(accepted.joined(separator: ", "))",
                           named: named)
            }
            let name = try string("name", in: nil).text
            // Names head the tab-separated lines of `schedules list` and go into log lines.
            if name.unicodeScalars.contains(where: \.isControlOrFormat) {
                throw fail(table.values["name"]!.line, "key 'name' holds a control character (tab, newline…)",
                           named: String(quotedExcerpt(name, limit: 64).dropFirst().dropLast()))
            }
            if name.hasPrefix(BuiltInJobNames.reservedPrefix) {
                throw fail(table.values["name"]!.line,
                           "names starting with '\(BuiltInJobNames.reservedPrefix)' are reserved for the built-in jobs", named: name)
            }
            if let first = firstIndex[name] {
                throw fail(table.values["name"]!.line, "the same name as schedules[\(first)]; each schedule needs its own",
                           named: name)
            }
            firstIndex[name] = index
            let cron = try string("cron", in: name)
            let schedule: CronSchedule
            do { schedule = try CronSchedule(parsing: cron.text) } catch { throw fail(cron.line, error.description, named: name) }
            let sql = try string("sql", in: name)
            var timeout: Duration?
            if let entry = table.values["timeout_ms"] {
                guard case .integer(let milliseconds) = entry.value else {
                    throw fail(entry.line, "key 'timeout_ms' must be an integer, got \(entry.value.typeName)", named: name)
                }
                guard timeoutRange.contains(milliseconds) else {
                    throw fail(entry.line, "key 'timeout_ms' must be between \(timeoutRange.lowerBound) and "
                               + "\(timeoutRange.upperBound) (milliseconds), got \(milliseconds)", named: name)
                }
                timeout = .milliseconds(milliseconds)
            }
            schedules.append(Config.Schedule(name: name, cron: schedule, sql: sql.text, timeout: timeout))
        }
        return schedules
    }
}
