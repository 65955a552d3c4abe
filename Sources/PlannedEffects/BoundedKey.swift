import Crypto

/// A key kept in an indexed column (a delivery's `idempotency_key` or `ordering_key`): keys
/// are compared, never parsed, and a btree entry over about 2 700 bytes is refused, which
/// would fail every batch holding it and stop the stream. A row whose replica identity is
/// FULL names every column in its key, and a backfilled row's key holds its primary key's
/// values, so a key can be as long as a row. One over `limit` bytes keeps its first
/// characters, for people reading it, and ends with the SHA-256 of the whole.
public enum BoundedKey {
    public static let limit = 512

    public static func bounded(_ key: String) -> String {
        guard key.utf8.count > limit else { return key }
        let digest = SHA256.hash(data: Array(key.utf8)).map { ($0 < 0x10 ? "0" : "") + String($0, radix: 16) }.joined()
        return String(key.unicodeScalars.prefix(64)) + "…sha256:" + digest
    }
}
