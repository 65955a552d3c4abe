/// The values one cron field allows, as a bit set: finding the next or previous allowed
/// value is a mask and a bit count, so `CronSchedule` skips whole runs of hours or
/// months instead of stepping minute by minute.
struct CronValues: Sendable, Hashable {
    private(set) var bits: UInt64 = 0

    init() {}

    mutating func insert(_ value: Int) { bits |= 1 << UInt64(value) }

    func contains(_ value: Int) -> Bool { bits & (1 << UInt64(value)) != 0 }

    var first: Int? { bits == 0 ? nil : bits.trailingZeroBitCount }
    var last: Int? { bits == 0 ? nil : 63 - bits.leadingZeroBitCount }
    var minimum: Int { first ?? 0 }

    /// The smallest allowed value above `value`.
    func first(after value: Int) -> Int? {
        let above = value >= 63 ? 0 : bits & ~((UInt64(1) << UInt64(value + 1)) - 1)
        return above == 0 ? nil : above.trailingZeroBitCount
    }

    /// The largest allowed value below `value`.
    func last(before value: Int) -> Int? {
        let below = value <= 0 ? 0 : bits & ((UInt64(1) << UInt64(value)) - 1)
        return below == 0 ? nil : 63 - below.leadingZeroBitCount
    }
}
