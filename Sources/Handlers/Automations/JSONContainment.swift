import Core
import Decoding
import PlannedEffects

extension JSONValue {
    /// Whether `self` contains `other` as jsonb's `@>` decides, so a workflow matches in
    /// ChangeRelay exactly when the seed's SQL would have matched it: objects contain
    /// objects whose every member they contain; arrays contain arrays whose every element
    /// some element contains; a top-level array contains a scalar it holds; scalars
    /// contain equal scalars (numbers by value).
    public func contains(_ other: JSONValue) -> Bool {
        if case .array(let elements) = self, other.isScalar {
            return elements.contains { $0.isScalar && $0.jsonbEquals(other) }
        }
        return nestedContains(other)
    }

    private func nestedContains(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.object(let members), .object(let wanted)):
            return wanted.allSatisfy { want in
                // jsonb keeps the last of duplicate keys.
                guard let have = members.last(where: { $0.key.utf8.elementsEqual(want.key.utf8) }) else { return false }
                return have.value.nestedContains(want.value)
            }
        case (.array(let elements), .array(let wanted)):
            return wanted.allSatisfy { want in elements.contains { $0.nestedContains(want) } }
        case (.object, _), (.array, _), (_, .object), (_, .array):
            return false
        default:
            return jsonbEquals(other)
        }
    }

    private var isScalar: Bool {
        switch self {
        case .object, .array: false
        default: true
        }
    }

    /// Strings by their bytes, as jsonb compares them (Swift's `==` would take canonically
    /// equivalent spellings as equal); numbers by value.
    private func jsonbEquals(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.string(let a), .string(let b)):
            return a.utf8.elementsEqual(b.utf8)
        case (.number(let a), .number(let b)):
            if a == b { return true }
            guard let x = Double(a), let y = Double(b) else { return false }
            return x == y
        default:
            return self == other
        }
    }
}
