/// What Postgres' `numeric`, and so a jsonb number, can hold: a `json` column accepts any
/// number JSON's grammar allows, and a cast to jsonb refuses the rest ("value overflows
/// numeric format"). Once its exponent is applied, a number may have at most 131 072 digits
/// before the decimal point (numeric's weight limit) and 16 383 after it (its display-scale
/// limit); an exponent of 2^30 or more is refused whatever the digits.
enum NumericLimits {
    static let digitsBeforePoint = 131_072
    static let digitsAfterPoint = 16_383
    private static let exponentBound = 1 << 30

    /// `number` is one JSON number token (`-12.50e+3`), as the scanner checked it.
    static func holds(_ number: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = number.startIndex
        if index < number.endIndex, number[index] == UInt8(ascii: "-") { index += 1 }
        var significantIntegerDigits = 0
        while index < number.endIndex, isDigit(number[index]) {
            if significantIntegerDigits > 0 || number[index] != UInt8(ascii: "0") { significantIntegerDigits += 1 }
            index += 1
        }
        var fractionDigits = 0
        var leadingFractionZeros = 0
        var fractionIsZero = true
        if index < number.endIndex, number[index] == UInt8(ascii: ".") {
            index += 1
            while index < number.endIndex, isDigit(number[index]) {
                if number[index] != UInt8(ascii: "0") {
                    fractionIsZero = false
                } else if fractionIsZero {
                    leadingFractionZeros += 1
                }
                fractionDigits += 1
                index += 1
            }
        }
        var exponent = 0
        if index < number.endIndex, number[index] | 0x20 == UInt8(ascii: "e") {
            index += 1
            var negative = false
            if index < number.endIndex, number[index] == UInt8(ascii: "-") || number[index] == UInt8(ascii: "+") {
                negative = number[index] == UInt8(ascii: "-")
                index += 1
            }
            while index < number.endIndex, isDigit(number[index]) {
                exponent = min(exponent * 10 + Int(number[index] - UInt8(ascii: "0")), exponentBound)
                index += 1
            }
            if negative { exponent = -exponent }
        }
        guard abs(exponent) < exponentBound, max(0, fractionDigits - exponent) <= digitsAfterPoint else { return false }
        if significantIntegerDigits == 0 && fractionIsZero { return true }
        let beforePoint = significantIntegerDigits > 0 ? significantIntegerDigits : -leadingFractionZeros
        return beforePoint + exponent <= digitsBeforePoint
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
}
