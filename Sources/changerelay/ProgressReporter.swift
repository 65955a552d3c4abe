#if canImport(Glibc)
import Glibc
#endif

/// Progress of a long-running command on stderr: a bar with rate and ETA on a terminal, one
/// plain line every few seconds otherwise (a log file or CI keeps every line it gets).
struct ProgressReporter {
    let label: String
    let unit: String
    let isTerminal: Bool
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastPrinted: ContinuousClock.Instant?
    private var drawn = false

    init(label: String, unit: String, isTerminal: Bool = isatty(STDERR_FILENO) != 0) {
        self.label = label
        self.unit = unit
        self.isTerminal = isTerminal
        started = clock.now
    }

    /// Throttled: redraws at most 5 times a second on a terminal, a plain line every 3 s otherwise.
    mutating func update(done: Int64, total: Int64?, detail: String = "") {
        let now = clock.now
        if let lastPrinted, now - lastPrinted < (isTerminal ? .milliseconds(200) : .seconds(3)) { return }
        lastPrinted = now
        let line = ProgressLine(label: label, unit: unit, done: done, total: total, elapsed: now - started, detail: detail)
        if isTerminal {
            FileOutput.standardError.write("\r\u{1B}[2K" + line.bar(width: 30))
            drawn = true
        } else {
            FileOutput.standardError.write(line: line.plain)
        }
    }

    /// Ends the bar (a newline on a terminal) and prints `summary`.
    mutating func finish(_ summary: String) {
        if drawn { FileOutput.standardError.write("\n") }
        drawn = false
        FileOutput.standardError.write(line: summary)
    }
}

/// The text of one progress report: pure, so its arithmetic is tested without a terminal.
struct ProgressLine {
    var label: String
    var unit: String
    var done: Int64
    var total: Int64?
    var elapsed: Duration
    var detail: String

    var rate: Double? {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 && done > 0 ? Double(done) / seconds : nil
    }

    /// Seconds left at the rate so far; nil without a total or a rate. An estimate the work
    /// has outgrown (more done than estimated) has nothing left.
    var etaSeconds: Double? {
        guard let total, let rate, rate > 0 else { return nil }
        return Double(max(total - done, 0)) / rate
    }

    var fraction: Double? {
        guard let total, total > 0 else { return nil }
        return min(Double(done) / Double(total), 1)
    }

    var plain: String {
        var parts = ["\(label): \(done)" + (total.map { " of ~\($0)" } ?? "") + " \(unit)"]
        if let fraction { parts.append(String(percent: fraction)) }
        if let rate { parts.append("\(Int64(rate.rounded())) \(unit)/s") }
        if let etaSeconds { parts.append("ETA " + Self.duration(etaSeconds)) }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: ", ")
    }

    func bar(width: Int) -> String {
        let filled = Int(((fraction ?? 0) * Double(width)).rounded(.down))
        let bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
        return label + " " + bar + " " + plain.dropFirst(label.count + 2)
    }

    /// `42s`, `3m05s`, `2h07m`.
    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m" + String(twoDigits: whole % 60) + "s" }
        return "\(whole / 3600)h" + String(twoDigits: whole % 3600 / 60) + "m"
    }
}

extension String {
    init(twoDigits value: Int) { self = value < 10 ? "0\(value)" : "\(value)" }

    /// `42.5%`.
    init(percent fraction: Double) {
        let tenths = Int((fraction * 1000).rounded(.down))
        self = "\(tenths / 10).\(tenths % 10)%"
    }
}

extension FileOutput {
    func write(_ text: String) { try? write(Array(text.utf8)) }
}
