/// A WAL position. Postgres prints it as two hex halves, `16/B374D848`.
public struct LSN: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var value: UInt64

    public static let zero = LSN(0)

    public init(_ value: UInt64) { self.value = value }

    /// Parses `X/X` (each half 1–8 hex digits). Returns nil for anything else: a sign too,
    /// which Swift's integer parsing would take and Postgres' pg_lsn refuses.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
              (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
              parts.allSatisfy({ $0.utf8.allSatisfy(Self.isHexDigit) }),
              let high = UInt32(parts[0], radix: 16), let low = UInt32(parts[1], radix: 16)
        else { return nil }
        value = UInt64(high) << 32 | UInt64(low)
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        byte &- UInt8(ascii: "0") < 10 || (byte | 0x20) &- UInt8(ascii: "a") < 6
    }

    public var description: String {
        String(UInt32(truncatingIfNeeded: value >> 32), radix: 16, uppercase: true) + "/"
            + String(UInt32(truncatingIfNeeded: value), radix: 16, uppercase: true)
    }

    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.value < rhs.value }
}
