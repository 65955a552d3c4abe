/// An operator's `--where`: one boolean expression, pasted into every chunk's SELECT inside
/// parentheses. The server parses it (`backfill` asks it before recording the request);
/// this check keeps the expression from closing those parentheses or ending the statement,
/// which would let it change what the chunk query means.
public enum WhereClause {
    public enum Problem: Error, Sendable, Hashable, CustomStringConvertible {
        case empty
        case unbalancedParentheses
        case semicolon
        case lineComment
        case unterminated(String)
        /// `$1`: the chunk query binds values of its own, and none of the `--where`'s.
        case parameter

        public var description: String {
            switch self {
            case .empty: "is empty"
            case .unbalancedParentheses: "has a parenthesis it does not close (or closes one it did not open)"
            case .semicolon: "contains a semicolon: it must be one expression, not statements"
            case .lineComment: "contains a -- comment, which would hide the rest of the chunk query (use /* … */)"
            case .unterminated(let what): "has an unterminated \(what)"
            case .parameter: "contains a parameter ($1 and the like), which nothing binds: write the value itself"
            }
        }
    }

    /// Throws the first problem found outside quotes and comments, reading them as the
    /// server does with `standard_conforming_strings` on (the backfill's sessions set it):
    /// block comments nest, an `E'…'` string escapes with a backslash, and a `$` after a
    /// letter or digit belongs to the identifier (`a$b$`), not to a dollar quote. Read any
    /// other way, a text could hide a parenthesis from this check that the server closes.
    public static func check(_ text: String) throws(Problem) {
        let bytes = Array(text.utf8)
        guard bytes.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }) else { throw .empty }
        var depth = 0
        var index = 0
        func skip(until terminator: [UInt8], from start: Int) -> Int? {
            var position = start
            while position + terminator.count <= bytes.count {
                if Array(bytes[position..<position + terminator.count]) == terminator { return position + terminator.count }
                position += 1
            }
            return nil
        }
        /// Whether the byte at `position` continues an identifier or keyword.
        func isIdentifierByte(at position: Int) -> Bool {
            guard position >= 0 else { return false }
            let byte = bytes[position]
            return byte >= 0x80 || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "$")
                || (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A || byte >= 0x30 && byte <= 0x39
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "'") where index > 0 && (bytes[index - 1] | 0x20) == UInt8(ascii: "e") && !isIdentifierByte(at: index - 2):
                // An escape string: a backslash escapes the byte after it, a doubled quote is one quote.
                var position = index + 1
                var end: Int?
                while position < bytes.count {
                    if bytes[position] == UInt8(ascii: "\\") {
                        position += 2
                    } else if bytes[position] == UInt8(ascii: "'") {
                        if position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "'") {
                            position += 2
                        } else {
                            end = position + 1
                            break
                        }
                    } else {
                        position += 1
                    }
                }
                guard let end else { throw .unterminated("string") }
                index = end
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                // A doubled quote inside is an escaped one: the scan simply resumes and finds the next.
                guard let end = skip(until: [byte], from: index + 1) else {
                    throw .unterminated(byte == UInt8(ascii: "'") ? "string" : "quoted identifier")
                }
                index = end
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                // The expression is pasted into the chunk query with text after it: a line comment
                // would hide that text (and the server ends one at a carriage return as well as at
                // a line feed, a difference a check could miss).
                throw .lineComment
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                // Block comments nest: each `/*` inside needs its own `*/`.
                var nesting = 1
                var position = index + 2
                while nesting > 0 {
                    guard position + 1 < bytes.count else { throw .unterminated("comment") }
                    if bytes[position] == UInt8(ascii: "/") && bytes[position + 1] == UInt8(ascii: "*") {
                        nesting += 1
                        position += 2
                    } else if bytes[position] == UInt8(ascii: "*") && bytes[position + 1] == UInt8(ascii: "/") {
                        nesting -= 1
                        position += 2
                    } else {
                        position += 1
                    }
                }
                index = position
            case UInt8(ascii: "$") where isIdentifierByte(at: index - 1):
                index += 1
            case UInt8(ascii: "$") where index + 1 < bytes.count && bytes[index + 1] >= 0x30 && bytes[index + 1] <= 0x39:
                throw .parameter
            case UInt8(ascii: "$"):
                // A dollar quote: $$…$$ or $tag$…$tag$.
                // A tag is a letter, `_` or any byte from 0x80 (as the server's lexer reads it),
                // then digits too.
                var tagEnd = index + 1
                while tagEnd < bytes.count, bytes[tagEnd] == UInt8(ascii: "_") || bytes[tagEnd] >= 0x80
                    || (bytes[tagEnd] | 0x20) >= 0x61 && (bytes[tagEnd] | 0x20) <= 0x7A
                    || tagEnd > index + 1 && bytes[tagEnd] >= 0x30 && bytes[tagEnd] <= 0x39 {
                    tagEnd += 1
                }
                if tagEnd < bytes.count, bytes[tagEnd] == UInt8(ascii: "$") {
                    let tag = Array(bytes[index...tagEnd])
                    guard let end = skip(until: tag, from: tagEnd + 1) else { throw .unterminated("dollar-quoted string") }
                    index = end
                } else {
                    index += 1
                }
            case UInt8(ascii: "("):
                depth += 1
                index += 1
            case UInt8(ascii: ")"):
                depth -= 1
                if depth < 0 { throw .unbalancedParentheses }
                index += 1
            case UInt8(ascii: ";"):
                throw .semicolon
            default:
                index += 1
            }
        }
        if depth != 0 { throw .unbalancedParentheses }
    }
}
