extension Duration {
    /// An age as command-line options write it: a whole number and one unit, `s`, `m`, `h`
    /// or `d` (`30d`, `12h`). Nil for anything else, so a typo is refused rather than read
    /// as some other age.
    public init?(age text: String) {
        guard let unit = text.last, let number = Int64(text.dropLast()), number >= 0,
              text.dropLast().allSatisfy(\.isASCII) else { return nil }
        let seconds: Int64
        switch unit {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3_600
        case "d": seconds = 86_400
        default: return nil
        }
        let (total, overflow) = number.multipliedReportingOverflow(by: seconds)
        guard !overflow else { return nil }
        self = .seconds(total)
    }
}
