import CCurl

/// The parts of a webhook URL the guard judges, read by libcurl's own URL parser so that
/// the host classified is the host libcurl would connect to. A hand-written parser would
/// disagree with libcurl somewhere (`\`, `@` in user-info, `%`-encoded hosts, `127.1`),
/// and every disagreement is a way past the guard.
///
/// It keeps no user-info: only the caller's URL string has it.
struct TargetURL: Sendable {
    /// The host libcurl resolves: IPv4 shorthand already normalised (`127.1` →
    /// `127.0.0.1`), an internationalised name in punycode, IPv6 without brackets or zone.
    var host: String
    /// The zone (scope) of an IPv6 literal, `eth0` in `[fe80::1%25eth0]`.
    var zone: String?
    /// The port, the scheme's default when the URL names none.
    var port: Int

    /// Reads `url` as `CURLOPT_URL` would (without guessing a missing scheme) and refuses
    /// what the guard cannot vouch for or libcurl must not send: a URL libcurl rejects, a scheme other than http
    /// and https, spaces or control characters, a host libcurl cannot turn into ASCII, a
    /// zone id that is not a plain interface name or number.
    init(parsing url: String) throws(TargetRefused) {
        // libcurl would stop reading at a NUL; the HTTP client refuses these bytes anyway.
        guard !url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
            throw TargetRefused(.malformedURL("the URL contains spaces or control characters"), host: nil)
        }
        guard let handle = CurlURLHandle() else {
            throw TargetRefused(.malformedURL("libcurl could not allocate a URL handle"), host: nil)
        }
        // NON_SUPPORT_SCHEME: a scheme this libcurl was built without still parses, so its
        // refusal names the scheme instead of a parser error.
        let parsed = handle.parse(url, flags: CURLU_NON_SUPPORT_SCHEME)
        guard parsed == CURLUE_OK else { throw TargetRefused(.malformedURL(CurlURLError(code: parsed).message), host: nil) }

        switch handle.part(CURLUPART_SCHEME) {
        case .success(let scheme):
            let lower = scheme.lowercased()
            guard lower == "http" || lower == "https" else { throw TargetRefused(.schemeNotAllowed(lower), host: nil) }
        case .failure(let error):
            throw TargetRefused(.malformedURL(error.message), host: nil)
        }

        // PUNYCODE: the ASCII form libcurl's IDN conversion gives the resolver.
        var host: String
        switch handle.part(CURLUPART_HOST, flags: CURLU_PUNYCODE) {
        case .success(let value): host = value
        case .failure(let error) where error.code == CURLUE_NO_HOST:
            throw TargetRefused(.malformedURL(error.message), host: nil)
        case .failure:
            let raw = (try? handle.part(CURLUPART_HOST).get()) ?? ""
            throw TargetRefused(.malformedURL("the host name cannot be converted to ASCII (IDNA)"), host: raw)
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }

        var zone: String?
        // Only RFC 6874 zone characters: libcurl takes more (`%2F`, `%25` inside the zone),
        // none of which names an interface.
        switch handle.part(CURLUPART_ZONEID) {
        case .success(let value):
            guard !value.isEmpty, value.utf8.allSatisfy(isUnreservedURLByte) else {
                throw TargetRefused(.malformedURL("the IPv6 zone id is not an interface name or number"), host: host)
            }
            zone = value
        case .failure(let error) where error.code == CURLUE_NO_ZONEID:
            zone = nil
        case .failure(let error):
            throw TargetRefused(.malformedURL(error.message), host: host)
        }

        let port: Int
        switch handle.part(CURLUPART_PORT, flags: CURLU_DEFAULT_PORT) {
        case .success(let value):
            guard let number = Int(value) else { throw TargetRefused(.malformedURL("port \(value) is not a number"), host: host) }
            port = number
        case .failure(let error):
            throw TargetRefused(.malformedURL(error.message), host: host)
        }

        self.host = host
        self.zone = zone
        self.port = port
    }
}
