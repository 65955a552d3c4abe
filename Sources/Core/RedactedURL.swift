/// The URL with any `user:password@` part replaced, for errors and logs.
public func redactedURL(_ url: String) -> String {
    let bytes = Array(url.utf8)
    let separator = Array("://".utf8)
    guard bytes.count >= separator.count,
          let schemeEnd = (0...(bytes.count - separator.count)).first(where: { bytes[$0..<$0 + 3].elementsEqual(separator) })
    else { return url }
    let authorityStart = schemeEnd + 3
    var authorityEnd = authorityStart
    while authorityEnd < bytes.count, !"/?#".utf8.contains(bytes[authorityEnd]) { authorityEnd += 1 }
    guard let at = bytes[authorityStart..<authorityEnd].lastIndex(of: UInt8(ascii: "@")) else { return url }
    return String(decoding: bytes[..<authorityStart], as: UTF8.self) + "<redacted>@"
        + String(decoding: bytes[(at + 1)...], as: UTF8.self)
}
