#if canImport(Glibc)
import Glibc
#endif

/// wal2json writes its records in the database's encoding and the walsender passes them on
/// as they are (pgoutput's values, by contrast, are converted to the session's UTF-8), so
/// a LATIN1 database's `é` arrived as a byte that is not UTF-8, and the record, published or
/// not, failed to parse on every read: the stream could not move past it. Each record is
/// converted to UTF-8 first, with iconv; every server encoding is a superset of ASCII, so
/// the JSON's structure is untouched.
///
/// One iconv descriptor, closed with the recoder. Not thread-safe: one per stream.
final class ServerEncodingRecoder {
    /// Nil for SQL_ASCII, whose bytes carry no encoding to convert from: those that are not
    /// UTF-8 are read as U+FFFD, as pgoutput's values are.
    private let descriptor: iconv_t?
    let serverEncoding: String

    /// Nil when the records need no conversion (UTF8).
    init?(serverEncoding: String) throws(UnsupportedServerEncoding) {
        self.serverEncoding = serverEncoding
        switch serverEncoding {
        case "UTF8": return nil
        case "SQL_ASCII": descriptor = nil
        default:
            guard let name = Self.iconvNames[serverEncoding] else { throw UnsupportedServerEncoding(encoding: serverEncoding) }
            let opened = iconv_open("UTF-8", name)
            guard let opened, opened != iconv_t(bitPattern: -1) else { throw UnsupportedServerEncoding(encoding: serverEncoding) }
            descriptor = opened
        }
    }

    deinit { if let descriptor { iconv_close(descriptor) } }

    /// Postgres' server encodings and glibc's names for them; MULE_INTERNAL has none.
    static let iconvNames: [String: String] = {
        var names = ["LATIN1": "ISO-8859-1", "LATIN2": "ISO-8859-2", "LATIN3": "ISO-8859-3", "LATIN4": "ISO-8859-4",
                     "LATIN5": "ISO-8859-9", "LATIN6": "ISO-8859-10", "LATIN7": "ISO-8859-13", "LATIN8": "ISO-8859-14",
                     "LATIN9": "ISO-8859-15", "LATIN10": "ISO-8859-16", "ISO_8859_5": "ISO-8859-5", "ISO_8859_6": "ISO-8859-6",
                     "ISO_8859_7": "ISO-8859-7", "ISO_8859_8": "ISO-8859-8", "WIN866": "CP866", "WIN874": "CP874",
                     "KOI8R": "KOI8-R", "KOI8U": "KOI8-U", "EUC_JP": "EUC-JP", "EUC_CN": "EUC-CN", "EUC_KR": "EUC-KR",
                     "EUC_TW": "EUC-TW", "EUC_JIS_2004": "EUC-JISX0213"]
        for page in 1250...1258 { names["WIN\(page)"] = "CP\(page)" }
        return names
    }()

    /// `bytes` in UTF-8. The server stored only what its encoding allows, so a byte iconv
    /// cannot convert means a record that is not what it says: an error, never a guess.
    func utf8(_ bytes: [UInt8]) throws(UnconvertibleRecord) -> [UInt8] {
        guard let descriptor else {
            return String(validating: bytes, as: UTF8.self) == nil ? Array(String(decoding: bytes, as: UTF8.self).utf8) : bytes
        }
        var output = [UInt8](repeating: 0, count: bytes.count * 4 + 16)
        var input = bytes
        let produced = input.withUnsafeMutableBufferPointer { source -> Int? in
            output.withUnsafeMutableBufferPointer { target -> Int? in
                var inPointer = UnsafeMutableRawPointer(source.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var inLeft = source.count
                var outPointer = UnsafeMutableRawPointer(target.baseAddress)?.assumingMemoryBound(to: CChar.self)
                var outLeft = target.count
                iconv(descriptor, nil, nil, nil, nil)
                guard iconv(descriptor, &inPointer, &inLeft, &outPointer, &outLeft) != -1, inLeft == 0 else { return nil }
                return target.count - outLeft
            }
        }
        guard let produced else { throw UnconvertibleRecord(encoding: serverEncoding) }
        output.removeSubrange(produced...)
        return output
    }
}

/// The database's encoding has no conversion to UTF-8 here (MULE_INTERNAL).
struct UnsupportedServerEncoding: Error, CustomStringConvertible {
    var encoding: String
    var description: String {
        "the database's encoding \(encoding) cannot be converted to UTF-8 for wal2json's records; read it with "
            + "source.plugin = \"pgoutput\", whose values the server converts itself"
    }
}

/// A wal2json record with bytes its encoding does not allow.
struct UnconvertibleRecord: Error, CustomStringConvertible {
    var encoding: String
    var description: String { "a wal2json record is not valid \(encoding), the database's encoding" }
}
