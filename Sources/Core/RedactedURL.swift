/// The URL for errors, logs and listings: any `user:password@` part replaced, and the value of
/// each query parameter and any fragment too (`?sig=<redacted>&v=<redacted>`), where signed
/// URLs and many webhook receivers carry their credentials. The scheme, host, port, path and
/// parameter names stay, which is what telling endpoints apart needs.
public func redactedURL(_ url: String) -> String {
    let bytes = Array(url.utf8)
    let separator = Array("://".utf8)
    guard bytes.count >= separator.count,
          let schemeEnd = (0...(bytes.count - separator.count)).first(where: { bytes[$0..<$0 + 3].elementsEqual(separator) })
    else { return url }
    let authorityStart = schemeEnd + 3
    var authorityEnd = authorityStart
    while authorityEnd < bytes.count, !"/?#".utf8.contains(bytes[authorityEnd]) { authorityEnd += 1 }
    var redacted = String(decoding: bytes[..<authorityStart], as: UTF8.self)
    if let at = bytes[authorityStart..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) {
        redacted += "<redacted>@" + String(decoding: bytes[(at + 1)..<authorityEnd], as: UTF8.self)
    } else {
        redacted += String(decoding: bytes[authorityStart..<authorityEnd], as: UTF8.self)
    }
    let rest = bytes[authorityEnd...]
    let pathEnd = rest.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? bytes.count
    redacted += String(decoding: bytes[authorityEnd..<pathEnd], as: UTF8.self)
    guard pathEnd < bytes.count else { return redacted }
    if bytes[pathEnd] == UInt8(ascii: "?") {
        let queryEnd = bytes[pathEnd...].firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
        let parameters = bytes[(pathEnd + 1)..<queryEnd].split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false)
        redacted += "?" + parameters.map { parameter in
            let name = parameter.prefix { $0 != UInt8(ascii: "=") }
            // A bare parameter (`?t0ken`) may be the credential itself.
            if parameter.isEmpty { return "" }
            return name.count < parameter.count ? String(decoding: name, as: UTF8.self) + "=<redacted>" : "<redacted>"
        }.joined(separator: "&")
        if queryEnd < bytes.count { redacted += "#<redacted>" }
    } else {
        redacted += "#<redacted>"
    }
    return redacted
}
