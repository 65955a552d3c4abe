#if canImport(Glibc)
import Glibc
#endif
import Core
import Foundation

/// Progress of a long-running command on stderr: a bar with rate and ETA on a terminal, one plain line every few seconds otherwise.
///
/// The figures and both renderings are `ProgressEstimate`'s; this only keeps the clock and
/// decides when to draw, so a command may call `update` as often as it likes (once a
/// transaction) without flooding a terminal or a log.
struct ProgressReporter {
    private let label: String
    private let unit: String
    private let isTerminal: Bool
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastDrawn: ContinuousClock.Instant?
    private var latest = ProgressEstimate(done: 0, total: nil, elapsed: .zero)
    private var latestDetail = ""

    /// How often a terminal's bar is redrawn, and a plain line printed.
    static let terminalInterval: Duration = .milliseconds(200)
    static let plainInterval: Duration = .seconds(3)

    init(label: String, unit: String, isTerminal: Bool = isatty(STDERR_FILENO) != 0) {
        self.label = label
        self.unit = unit
        self.isTerminal = isTerminal
        started = clock.now
    }

    /// Throttled: redraws at most ~5×/s on a terminal, prints a plain line every ~3 s otherwise. `detail` is appended (e.g. "12 skipped").
    mutating func update(done: Int64, total: Int64?, detail: String = "") {
        let now = clock.now
        latest = ProgressEstimate(done: done, total: total, elapsed: now - started)
        latestDetail = detail
        // The first update is drawn at once: the target is on screen before the first interval passes.
        if let lastDrawn, now - lastDrawn < (isTerminal ? Self.terminalInterval : Self.plainInterval) { return }
        lastDrawn = now
        draw()
    }

    /// Ends the bar (newline on a terminal) and prints `summary`.
    mutating func finish(_ summary: String) {
        if isTerminal, lastDrawn != nil {
            latest.elapsed = clock.now - started
            draw()
            write("\n")
        }
        write(label + ": " + summary + "\n")
    }

    private func draw() {
        if isTerminal {
            // Carriage return and erase-line: the bar is drawn over itself.
            write("\r\u{1B}[2K" + latest.barLine(label: label, unit: unit, detail: latestDetail))
        } else {
            write(latest.plainLine(label: label, unit: unit, detail: latestDetail) + "\n")
        }
    }

    private func write(_ text: String) {
        try? FileOutput.standardError.write(Array(text.utf8))
    }
}

/// Progress of one long statement that reports nothing until it ends: its elapsed time on
/// stderr, redrawn on a terminal and a plain line every few seconds otherwise, from a thread
/// of its own while the caller blocks on the statement.
enum ElapsedReporter {
    static func whileRunning<T>(label: String, detail: String, isTerminal: Bool = isatty(STDERR_FILENO) != 0,
                                _ body: () throws -> T) rethrows -> T {
        let done = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let interval = isTerminal ? ProgressReporter.terminalInterval : ProgressReporter.plainInterval
        let thread = Thread {
            let clock = ContinuousClock()
            let started = clock.now
            repeat {
                let elapsed = ProgressEstimate.duration(clock.now - started)
                let line = label + ": " + detail + ", " + elapsed
                try? FileOutput.standardError.write(Array((isTerminal ? "\r\u{1B}[2K" + line : line + "\n").utf8))
            } while done.wait(timeout: .now() + .milliseconds(Int(interval.wholeMilliseconds))) == .timedOut
            if isTerminal { try? FileOutput.standardError.write(Array("\n".utf8)) }
            finished.signal()
        }
        thread.start()
        defer {
            done.signal()
            finished.wait()
        }
        return try body()
    }
}
