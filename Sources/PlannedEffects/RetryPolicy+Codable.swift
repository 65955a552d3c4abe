import Core

/// The stored form is flat JSON in whole milliseconds, for example
/// `{"kind":"exponential","base_ms":1000,"multiplier":2,"cap_ms":3600000,"max_attempts":4,"jitter":"full"}`,
/// so that an operator can read and edit it with SQL; `Duration`'s own encoding (two 64-bit
/// halves of attoseconds) cannot be. Decoding rejects values the policy could not honour,
/// naming the key, because a corrupt row must fail loudly rather than retry forever or never.
extension RetryPolicy: Codable {
    fileprivate enum Key: String, CodingKey {
        case kind
        case delayMilliseconds = "delay_ms"
        case baseMilliseconds = "base_ms"
        case multiplier
        case capMilliseconds = "cap_ms"
        case maxAttempts = "max_attempts"
        case delaysMilliseconds = "delays_ms"
        case jitter
        case jitterFraction = "jitter_fraction"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        switch try container.decode(String.self, forKey: .kind) {
        case "fixed":
            self = .fixed(delay: try container.decodeMilliseconds(.delayMilliseconds),
                          maxAttempts: try container.decodeMaxAttempts())
        case "exponential":
            let multiplier = try container.decode(Double.self, forKey: .multiplier)
            guard multiplier.isFinite, multiplier >= 1 else {
                throw DecodingError.dataCorruptedError(
                    forKey: .multiplier, in: container, debugDescription: "must be a finite number ≥ 1, got \(multiplier)")
            }
            self = .exponential(base: try container.decodeMilliseconds(.baseMilliseconds),
                                multiplier: multiplier,
                                cap: try container.decodeMilliseconds(.capMilliseconds),
                                maxAttempts: try container.decodeMaxAttempts(),
                                jitter: try container.decodeJitter())
        case "schedule":
            let milliseconds = try container.decode([Int64].self, forKey: .delaysMilliseconds)
            guard milliseconds.allSatisfy({ $0 >= 0 }) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .delaysMilliseconds, in: container, debugDescription: "delays must not be negative")
            }
            self = .schedule(milliseconds.map { .milliseconds($0) }, jitter: try container.decodeJitter())
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown retry policy kind '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .fixed(let delay, let maxAttempts):
            try container.encode("fixed", forKey: .kind)
            try container.encode(delay.wholeMilliseconds, forKey: .delayMilliseconds)
            try container.encode(maxAttempts, forKey: .maxAttempts)
        case .exponential(let base, let multiplier, let cap, let maxAttempts, let jitter):
            try container.encode("exponential", forKey: .kind)
            try container.encode(base.wholeMilliseconds, forKey: .baseMilliseconds)
            try container.encode(multiplier, forKey: .multiplier)
            try container.encode(cap.wholeMilliseconds, forKey: .capMilliseconds)
            try container.encode(maxAttempts, forKey: .maxAttempts)
            try container.encodeJitter(jitter)
        case .schedule(let delays, let jitter):
            try container.encode("schedule", forKey: .kind)
            try container.encode(delays.map(\.wholeMilliseconds), forKey: .delaysMilliseconds)
            try container.encodeJitter(jitter)
        }
    }
}

extension KeyedDecodingContainer where Key: CodingKey {
    fileprivate func decodeMilliseconds(_ key: Key) throws -> Duration {
        let milliseconds = try decode(Int64.self, forKey: key)
        guard milliseconds >= 0 else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "must not be negative")
        }
        return .milliseconds(milliseconds)
    }
}

extension KeyedDecodingContainer<RetryPolicy.Key> {
    fileprivate func decodeMaxAttempts() throws -> Int {
        let attempts = try decode(Int.self, forKey: .maxAttempts)
        guard attempts >= 1 else {
            throw DecodingError.dataCorruptedError(
                forKey: .maxAttempts, in: self, debugDescription: "must be at least 1, got \(attempts)")
        }
        return attempts
    }

    fileprivate func decodeJitter() throws -> Jitter {
        switch try decode(String.self, forKey: .jitter) {
        case "none": return .none
        case "full": return .full
        case "proportional":
            let fraction = try decode(Double.self, forKey: .jitterFraction)
            guard (0...1).contains(fraction) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .jitterFraction, in: self, debugDescription: "must be between 0 and 1, got \(fraction)")
            }
            return .proportional(fraction)
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .jitter, in: self, debugDescription: "expected none, full or proportional, got '\(other)'")
        }
    }
}

extension KeyedEncodingContainer<RetryPolicy.Key> {
    fileprivate mutating func encodeJitter(_ jitter: Jitter) throws {
        switch jitter {
        case .none: try encode("none", forKey: .jitter)
        case .full: try encode("full", forKey: .jitter)
        case .proportional(let fraction):
            try encode("proportional", forKey: .jitter)
            try encode(fraction, forKey: .jitterFraction)
        }
    }
}
