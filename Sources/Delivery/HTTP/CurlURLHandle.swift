import CCurl

/// A `CURLU *` from libcurl's URL API, freed once in deinit. It parses a URL exactly as
/// `CURLOPT_URL` does, so what it reports (scheme, host, port) is what a transfer of that
/// URL would use. Used on one thread at a time.
final class CurlURLHandle {
    private let raw: OpaquePointer

    /// Nil when libcurl cannot be initialised or is out of memory.
    init?() {
        guard CurlGlobal.initialized, let raw = curl_url() else { return nil }
        self.raw = raw
    }

    deinit { curl_url_cleanup(raw) }

    /// Parses `url` into the handle (`curl_url_set(CURLUPART_URL)`).
    func parse(_ url: String, flags: Int32) -> CURLUcode {
        curl_url_set(raw, CURLUPART_URL, url, UInt32(flags))
    }

    /// One part of the parsed URL, copied out of libcurl's allocation (freed at once), or
    /// the code saying why it is absent or cannot be produced.
    func part(_ part: CURLUPart, flags: Int32 = 0) -> Result<String, CurlURLError> {
        var value: UnsafeMutablePointer<CChar>?
        let code = curl_url_get(raw, part, &value, UInt32(flags))
        guard code == CURLUE_OK, let value else { return .failure(CurlURLError(code: code)) }
        defer { curl_free(value) }
        return .success(String(cString: value))
    }
}

/// A `CURLUcode` other than `CURLUE_OK`, with libcurl's text for it.
struct CurlURLError: Error {
    let code: CURLUcode

    var message: String { String(cString: curl_url_strerror(code)) }
}
