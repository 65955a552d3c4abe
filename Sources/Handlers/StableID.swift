import Core
import Crypto
import PlannedEffects

/// Name-based UUIDs (RFC 9562 version 5) of source positions. The seed generated
/// execution and log ids at random; ChangeRelay derives them from where the change sits
/// in the WAL, so a crash, a replay or a backfill produces the same ids and a receiver
/// can de-duplicate on them.
public enum StableID {
    /// uuid5(NAMESPACE_URL, "changerelay"): ChangeRelay's own namespace.
    public static let namespace: [UInt8] = [
        0x1b, 0xa1, 0x0b, 0x16, 0xa4, 0x18, 0x52, 0xc0, 0xa7, 0x07, 0x0d, 0xbb, 0xd6, 0x70, 0xbd, 0x7c,
    ]

    /// The id of what `handler` derived for `purpose` from the change at `index` of the
    /// transaction committed at `commitLSN`: the UUID of the change's key with `purpose`
    /// as its suffix.
    public static func forChange(_ handler: String, commitLSN: LSN, index: Int, purpose: String) -> String {
        uuid5(namespace: namespace,
              name: ChangePosition(commitLSN: commitLSN, index: index).key(handler: handler, suffix: purpose))
    }

    /// Version 5: SHA-1 of namespace and name, version and variant bits set. SHA-1 is
    /// what the RFC names; nothing here relies on it resisting collisions on purpose.
    public static func uuid5(namespace: [UInt8], name: String) -> String {
        var hash = Insecure.SHA1()
        hash.update(data: namespace)
        hash.update(data: Array(name.utf8))
        var bytes = Array(hash.finalize().prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x50
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
