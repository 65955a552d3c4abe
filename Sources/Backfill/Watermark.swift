import Decoding

/// Names one chunk of one backfill in one run of the service. The run's id makes watermarks
/// an earlier process wrote (and crashed before their chunk was committed) strangers to
/// this one: their rows are gone with that process, so the chunk is read again instead.
public struct ChunkToken: Sendable, Hashable, CustomStringConvertible {
    public var run: String
    public var backfill: Int64
    public var chunk: Int

    public init(run: String, backfill: Int64, chunk: Int) {
        self.run = run
        self.backfill = backfill
        self.chunk = chunk
    }

    /// `run backfill chunk`: the content of both watermarks.
    public var description: String { "\(run) \(backfill) \(chunk)" }

    /// Parses `description`; nil for anything else (another program's message under our prefix).
    public init?(_ text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].count <= 64,
              let backfill = Int64(parts[1]), backfill > 0, let chunk = Int(parts[2]), chunk > 0 else { return nil }
        self.init(run: String(parts[0]), backfill: backfill, chunk: chunk)
    }
}

/// The low or high watermark of a chunk: a transactional logical message around the chunk's
/// SELECT. The stream reads them in commit order, so "between the watermarks" is a stretch of
/// the WAL every change either falls in or does not.
public struct Watermark: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case low, high
    }

    public var kind: Kind
    public var token: ChunkToken

    public init(_ kind: Kind, _ token: ChunkToken) {
        self.kind = kind
        self.token = token
    }

    public static let lowPrefix = LogicalMessage.prefixRoot + "backfill.low"
    public static let highPrefix = LogicalMessage.prefixRoot + "backfill.high"

    public var prefix: String { kind == .low ? Self.lowPrefix : Self.highPrefix }
    public var content: String { token.description }

    /// The watermark a message is, or nil: another prefix, or content that is not a token.
    public init?(_ message: LogicalMessage) {
        let kind: Kind
        switch message.prefix {
        case Self.lowPrefix: kind = .low
        case Self.highPrefix: kind = .high
        default: return nil
        }
        guard message.content.count <= 128,
              let token = ChunkToken(String(decoding: message.content, as: UTF8.self)) else { return nil }
        self.init(kind, token)
    }
}
