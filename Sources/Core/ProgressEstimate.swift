/// What a progress display of a long-running command shows (`replay`, `backfill`): the
/// rate so far, the time left at that rate, and the two renderings, a bar for a terminal
/// and a plain line for a log. Pure, so the figures are tested without a clock or a
/// terminal; the command's reporter only decides when to draw.
///
/// The rate is the average since the start, not a recent window: a replay's pace swings
/// with the sizes of the transactions it meets, and an average makes an ETA that settles
/// instead of one that jumps with each batch.
public struct ProgressEstimate: Sendable, Equatable {
    public var done: Int64
    /// nil when the total is not known: no fraction, no ETA.
    public var total: Int64?
    public var elapsed: Duration

    public init(done: Int64, total: Int64?, elapsed: Duration) {
        self.done = done
        self.total = total
        self.elapsed = elapsed
    }

    /// Units a second since the start; nil until some time has passed and something is done.
    public var rate: Double? {
        let seconds = elapsed.inSeconds
        guard seconds > 0, done > 0 else { return nil }
        return Double(done) / seconds
    }

    /// How much of the total is done, 0…1; nil without a total. A total of 0 is all done.
    public var fraction: Double? {
        guard let total else { return nil }
        guard total > 0 else { return 1 }
        return min(1, max(0, Double(done) / Double(total)))
    }

    /// Time left at the rate so far; nil without a total or a rate.
    public var remaining: Duration? {
        guard let total, let rate else { return nil }
        let left = max(0, total - done)
        return .milliseconds(Int64((Double(left) / rate * 1000).rounded(.up)))
    }

    /// `label [#########-----------]  45% 12.3 MiB/27.1 MiB 4.1 MiB/s ETA 4s detail`,
    /// the bar `width` characters wide; without a total, the amount done and the rate.
    public func barLine(label: String, unit: String, detail: String, width: Int = 24) -> String {
        var parts = [label]
        if let fraction {
            let filled = Int((fraction * Double(width)).rounded(.down))
            parts.append("[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "]")
            parts.append(Self.percent(fraction))
            parts.append(Self.quantity(done, unit: unit) + "/" + Self.quantity(total ?? done, unit: unit))
        } else {
            parts.append(Self.quantity(done, unit: unit))
        }
        if let rate { parts.append(Self.quantity(Int64(rate), unit: unit) + "/s") }
        if let remaining { parts.append("ETA " + Self.duration(remaining)) }
        if !detail.isEmpty { parts.append(detail) }
        return parts.joined(separator: " ")
    }

    /// `label: 12.3 MiB of 27.1 MiB (45%), 4.1 MiB/s, ETA 4s; detail`, for output that is not a terminal.
    public func plainLine(label: String, unit: String, detail: String) -> String {
        var amount = Self.quantity(done, unit: unit)
        if let total, let fraction { amount += " of " + Self.quantity(total, unit: unit) + " (" + Self.percent(fraction) + ")" }
        var parts = [amount]
        if let rate { parts.append(Self.quantity(Int64(rate), unit: unit) + "/s") }
        if let remaining { parts.append("ETA " + Self.duration(remaining)) }
        return label + ": " + parts.joined(separator: ", ") + (detail.isEmpty ? "" : "; " + detail)
    }

    /// Bytes (`unit` "B") in binary units with one decimal (`12.3 MiB`); anything else as a
    /// whole number and its unit (`1234 rows`).
    public static func quantity(_ value: Int64, unit: String) -> String {
        guard unit == "B" else { return "\(value) \(unit)" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var scaled = Double(value)
        var index = 0
        while abs(scaled) >= 1024, index < units.count - 1 {
            scaled /= 1024
            index += 1
        }
        return index == 0 ? "\(value) B" : oneDecimal(scaled) + " " + units[index]
    }

    /// `45s`, `3m05s`, `2h07m`: seconds rounded up, so a wait of 0.2 s still shows as `1s`.
    public static func duration(_ duration: Duration) -> String {
        let seconds = max(0, (duration.wholeMilliseconds + 999) / 1000)
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m" + twoDigits(seconds % 60) + "s" }
        return "\(seconds / 3600)h" + twoDigits(seconds % 3600 / 60) + "m"
    }

    /// Whole percent, rounded down, so 100% means done.
    static func percent(_ fraction: Double) -> String {
        "\(Int((fraction * 100).rounded(.down)))%"
    }

    static func oneDecimal(_ value: Double) -> String {
        let tenths = Int64((value * 10).rounded())
        return "\(tenths / 10).\(abs(tenths % 10))"
    }

    private static func twoDigits(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
