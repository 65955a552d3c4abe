/// The first check of a URL ChangeRelay will send to, made where the URL is read (the
/// configuration, a `webhook_configs` row) so that a wrong one is named there rather than
/// failing every try later. libcurl parses it again, with the SSRF guard, before each try.
public enum HTTPURLShape {
    /// `http://` or `https://` (any case), a non-empty host after any user-info, a bracketed
    /// IPv6 literal closed, a port of digits up to 65535 if there is one, and no space or
    /// control character anywhere.
    public static func isValid(_ text: String) -> Bool {
        guard !text.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) else { return false }
        let lowered = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: lowered.hasPrefix) else { return false }
        let authority = lowered.dropFirst(scheme.count).prefix { !"/?#".contains($0) }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        var port: Substring?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]"), host.index(after: host.startIndex) < close else { return false }
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else { return false }
            port = rest.isEmpty ? nil : rest.dropFirst()
        } else {
            guard !host.contains("["), !host.contains("]") else { return false }
            let parts = host.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count <= 2, let name = parts.first, !name.isEmpty else { return false }
            port = parts.count == 2 ? parts[1] : nil
        }
        if let port {
            guard !port.isEmpty, port.utf8.allSatisfy({ (0x30...0x39).contains($0) }),
                  Int(port).map({ $0 <= 65_535 }) == true else { return false }
        }
        return true
    }
}
