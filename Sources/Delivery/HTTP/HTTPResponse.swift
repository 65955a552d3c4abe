import PlannedEffects
/// Where the time of one transfer went, as libcurl measured it from the transfer's start.
public struct HTTPTimings: Sendable, Equatable {
    /// Until the TCP connection was up (zero when a kept-alive connection was reused).
    public var connect: Duration
    /// Until the first response byte arrived.
    public var firstByte: Duration
    /// The whole transfer.
    public var total: Duration

    public init(connect: Duration, firstByte: Duration, total: Duration) {
        self.connect = connect
        self.firstByte = firstByte
        self.total = total
    }
}

/// A complete HTTP response of any status (1xx interim responses are skipped; a 3xx is
/// returned as it is, never followed).
public struct HTTPResponse: Sendable {
    public var status: Int
    /// The final response's header fields in order (trailers of a chunked body follow).
    public var headers: [(String, String)]
    /// At most the request's `responseBodyLimit` bytes.
    public var body: [UInt8]
    /// The receiver sent more than `responseBodyLimit` bytes of body, or its body was cut
    /// short (the timeout, a connection closed mid-body) after the headers had arrived.
    public var bodyTruncated: Bool
    public var timings: HTTPTimings
    /// No new connection was opened for this request: a kept-alive one was reused.
    public var reusedConnection: Bool
    /// The IP address actually connected to.
    public var remoteAddress: String?

    public init(
        status: Int, headers: [(String, String)] = [], body: [UInt8] = [], bodyTruncated: Bool = false,
        timings: HTTPTimings = HTTPTimings(connect: .zero, firstByte: .zero, total: .zero),
        reusedConnection: Bool = false, remoteAddress: String? = nil
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.bodyTruncated = bodyTruncated
        self.timings = timings
        self.reusedConnection = reusedConnection
        self.remoteAddress = remoteAddress
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        headers.first { asciiCaseInsensitiveEquals($0.0, name) }?.1
    }

    /// The body as UTF-8 text (invalid sequences replaced).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }

    /// The body as a log column keeps it: without NUL bytes (which text columns cannot hold),
    /// invalid sequences replaced by U+FFFD, and no longer in bytes than the body was, cut at
    /// a scalar's end. Each replacement takes three bytes for one, and a 4 KiB limit must stay
    /// 4 KiB whatever a receiver sends.
    public var storableBody: String {
        let bytes = body.filter { $0 != 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        guard text.utf8.count > bytes.count else { return text }
        var kept = String.UnicodeScalarView()
        var length = 0
        for scalar in text.unicodeScalars {
            length += UTF8.width(scalar)
            guard length <= bytes.count else { break }
            kept.append(scalar)
        }
        return String(kept)
    }

    public var isSuccess: Bool { (200..<300).contains(status) }
}
