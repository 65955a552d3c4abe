import ArgumentParser
import RelayConfiguration
import Core
import Decoding
import Foundation
import Handlers
import Pipeline
import PlannedEffects
import Replication

struct DriftCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drift-check",
        abstract: "Compares all of habit_tracker with the new schema at one snapshot; exits 1 above the threshold.",
        discussion: """
            habit_tracker is projected in SQL, independently of the service, and compared with children, weeks, \
            habits and habit_records. The drift ratio is rows with any difference over rows checked. Exit status: \
            0 at or below the threshold, 1 above it (a cut-over gate), 2 when the check cannot run.
            """)

    @OptionGroup var options: ConfigOptions

    // Read as text (a leading minus included) and checked in `run`: a gate script tells
    // "cannot run" (2) from "failed" (1), and a bad value given to a gate is the former, not
    // the parser's usage error (64).
    @Option(parsing: .unconditional, help: "The highest drift ratio that passes, between 0 and 1.")
    var threshold = "0.001"

    @Option(parsing: .unconditional, help: "How many differences to show, first by habit_tracker id.")
    var sample = "10"

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        guard let threshold = Double(threshold), threshold.isFinite, (0...1).contains(threshold) else {
            FileOutput.standardError.write(line: "changerelay: drift-check: --threshold must be a number between 0 and 1, got \(self.threshold)")
            throw ExitCode(2)
        }
        guard let sample = Int(sample), sample >= 0 else {
            FileOutput.standardError.write(line: "changerelay: drift-check: --sample must be a whole number, 0 or more, got \(self.sample)")
            throw ExitCode(2)
        }
        let report: DriftReport
        let started = ContinuousClock.now
        do {
            let config = try Config.load(path: options.config)
            bootstrapLogging(config)
            let connection = try PostgresConnection(url: try config.requireSourceURL())
            // One snapshot for every count; the comparison hashes millions of rows, so give it memory.
            try connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL work_mem = '256MB'")
            if let problem = try Self.unreadableShape(on: connection) { throw problem }
            let estimate = try connection.query("""
                SELECT greatest(reltuples, 0)::bigint AS n FROM pg_class WHERE oid = 'public.habit_tracker'::regclass
                """, []).value("n") ?? "?"
            // One statement compares everything, so there is no rate to show: only that it is working, and for how long.
            let text = try ElapsedReporter.whileRunning(
                label: "drift-check", detail: "comparing about \(estimate) habit_tracker rows at one snapshot") {
                try connection.query(HabitDifferences.report, [String(sample)]).value("report")
            }
            try connection.execute("COMMIT")
            report = try DriftReport(text ?? "")
        } catch let error as CustomStringConvertible & Error {
            FileOutput.standardError.write(line: "changerelay: drift-check: " + error.description)
            throw ExitCode(2)
        }
        let elapsed = ContinuousClock.now - started
        let passed = report.ratio <= threshold
        if json {
            FileOutput.standardOutput.write(line: report.json(threshold: threshold, passed: passed, elapsed: elapsed))
        } else {
            for line in report.lines(threshold: threshold, passed: passed, elapsed: elapsed) {
                FileOutput.standardOutput.write(line: line)
            }
        }
        if !passed { throw ExitCode(1) }
    }
}

extension DriftCheck {
    /// Why the comparison cannot read `habit_tracker` as the seed defines it, named by
    /// column, rather than the server's message about a function or column it did not find:
    /// a projected column renamed or dropped, or `habits`, `user_id` or `week_start_date` of
    /// a type other than the seed's (or a domain over it), which the projection rules
    /// (`changerelay.habit_tracker_problem`) take. The service itself reads such rows (or
    /// reports them as invalid).
    struct UnreadableShape: Error, CustomStringConvertible {
        var description: String
    }

    static func unreadableShape(on connection: PostgresConnection) throws(PostgresError) -> UnreadableShape? {
        let columns = try connection.query("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type,
                   format_type(\(DomainLookup.baseType(of: "a.atttypid")), NULL) AS base
            FROM pg_attribute a
            WHERE a.attrelid = 'public.habit_tracker'::regclass AND a.attnum > 0 AND NOT a.attisdropped
            """, []).rows
        let names = Set(columns.compactMap { $0[0] })
        let missing = ["id", "user_id", "child_name", "week_start_date", "week_period", "habits"].filter { !names.contains($0) }
        if !missing.isEmpty {
            return UnreadableShape(description: "public.habit_tracker has no column \(missing.joined(separator: ", ")) "
                + "(renamed or dropped?): drift-check compares the seed's columns; the service reports such rows as invalid_source")
        }
        for (name, type) in [("habits", "jsonb"), ("user_id", "uuid"), ("week_start_date", "date")] {
            guard let column = columns.first(where: { $0[0] == name }), column[2] != type else { continue }
            return UnreadableShape(description: "public.habit_tracker.\(name) is \(column[1] ?? "?"), not \(type): drift-check "
                + "reads it as \(type) (ALTER TABLE public.habit_tracker ALTER COLUMN \(name) TYPE \(type) USING \(name)::\(type))")
        }
        return nil
    }
}

/// What `HabitDifferences.report` returned.
struct DriftReport {
    var rowsChecked: Int64
    var rowsDrifted: Int64
    var differences: Int64
    var kinds: [(kind: String, count: Int64)]
    var childrenWithoutWeeks: Int64
    var sample: [JSONValue]

    var ratio: Double { rowsChecked == 0 ? 0 : Double(rowsDrifted) / Double(rowsChecked) }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    init(_ text: String) throws {
        let value: JSONValue
        do { value = try JSONParser.parse(text) } catch { throw Malformed(description: "unreadable report: \(error)") }
        func count(_ key: String) throws -> Int64 {
            guard case .number(let number)? = value[key], let count = Int64(number) else {
                throw Malformed(description: "the report has no count \(key)")
            }
            return count
        }
        rowsChecked = try count("rows_checked")
        rowsDrifted = try count("rows_drifted")
        differences = try count("differences")
        childrenWithoutWeeks = try count("children_without_weeks")
        var kinds: [(String, Int64)] = []
        if case .object(let members)? = value["kinds"] {
            for (kind, number) in members {
                if case .number(let text) = number, let count = Int64(text) { kinds.append((kind, count)) }
            }
        }
        let order = HabitDifferences.kinds
        self.kinds = kinds.sorted { (order.firstIndex(of: $0.0) ?? order.count) < (order.firstIndex(of: $1.0) ?? order.count) }
        if case .array(let sample)? = value["sample"] { self.sample = sample } else { sample = [] }
    }

    func lines(threshold: Double, passed: Bool, elapsed: Duration) -> [String] {
        var lines = [
            "rows checked: \(rowsChecked)",
            "rows drifted: \(rowsDrifted)",
            "drift ratio:  \(Self.format(ratio)) (threshold \(Self.format(threshold))): \(passed ? "PASS" : "FAIL")",
            "differences:  \(differences)",
        ]
        for (kind, count) in kinds { lines.append("  \(kind): \(count)") }
        if childrenWithoutWeeks > 0 { lines.append("children without weeks: \(childrenWithoutWeeks) (not counted as drift)") }
        if !sample.isEmpty {
            lines.append("first \(sample.count) differences:")
            for difference in sample {
                var writer = JSONWriter(capacity: 256)
                writer.value(difference)
                lines.append("  " + writer.string)
            }
        }
        lines.append("checked in \(elapsed.wholeMilliseconds) ms")
        return lines
    }

    func json(threshold: Double, passed: Bool, elapsed: Duration) -> String {
        var writer = JSONWriter(capacity: 1024)
        writer.beginObject()
        for (key, value) in [("rows_checked", rowsChecked), ("rows_drifted", rowsDrifted), ("differences", differences),
                             ("children_without_weeks", childrenWithoutWeeks)] {
            writer.key(key)
            writer.number(value)
        }
        writer.key("drift_ratio")
        writer.number(text: Array(Self.format(ratio).utf8))
        writer.key("threshold")
        writer.number(text: Array(Self.format(threshold).utf8))
        writer.key("passed")
        writer.bool(passed)
        writer.key("kinds")
        writer.beginObject()
        for (kind, count) in kinds {
            writer.key(kind)
            writer.number(count)
        }
        writer.endObject()
        writer.key("sample")
        writer.value(.array(sample))
        writer.key("elapsed_ms")
        writer.number(Int64(elapsed.wholeMilliseconds))
        writer.endObject()
        return writer.string
    }

    /// Six decimals: a ratio of 1 in a million is still visible.
    static func format(_ ratio: Double) -> String { String(format: "%.6f", ratio) }
}
