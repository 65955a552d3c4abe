/// One answer the receiver writes. `Content-Length` is added from the body.
public struct ReceiverResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Send `Connection: close` and close after the response.
    public var closeConnection: Bool

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], closeConnection: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.closeConnection = closeConnection
    }

    public init(status: Int, headers: [(String, String)] = [], body: String, closeConnection: Bool = false) {
        self.init(status: status, headers: headers, body: Array(body.utf8), closeConnection: closeConnection)
    }
}

/// How the receiver answers a request.
public indirect enum Behavior: Sendable {
    /// A well-formed response.
    case respond(ReceiverResponse)
    /// The n-th request since this behaviour was set gets the n-th element (counted in
    /// arrival order across connections); the last element repeats.
    case sequence([Behavior])
    /// Decided per request, outside the receiver's lock (so it may read the receiver).
    case dynamic(@Sendable (RecordedRequest) -> Behavior)
    /// Reads the request and never answers; the connection stays open until the client
    /// gives up or the receiver stops.
    case neverAnswer
    /// Sends the status line and headers at once (`Content-Length: bytes`), then one
    /// body byte per `interval`.
    case trickle(bytes: Int, interval: Duration)
    /// A 200 with a body of `bytes` bytes (`Content-Length` given).
    case largeBody(bytes: Int)
    /// Writes bytes that are not an HTTP response, then closes the connection.
    case invalidHTTP
    /// Closes the connection without a byte of response.
    case closeWithoutAnswer
    /// Sends a status line and one header, never the blank line that ends the headers, and
    /// holds the connection open.
    case unfinishedHeaders

    /// A status with an optional text body.
    public static func status(_ status: Int, body: String = "", headers: [(String, String)] = []) -> Behavior {
        .respond(ReceiverResponse(status: status, headers: headers, body: body))
    }

    /// A 503 (or `status`) with `Retry-After: seconds`.
    public static func retryAfter(_ seconds: Int, status: Int = 503) -> Behavior {
        .respond(ReceiverResponse(status: status, headers: [("Retry-After", String(seconds))], body: []))
    }

    /// A redirect to `location`.
    public static func redirect(to location: String, status: Int = 302) -> Behavior {
        .respond(ReceiverResponse(status: status, headers: [("Location", location)], body: []))
    }

    /// The 10 MB body of the misbehaving-receiver tests.
    public static let tenMegabyteBody = Behavior.largeBody(bytes: 10 * 1024 * 1024)

    /// Resolves sequences and dynamic behaviours down to one concrete behaviour.
    func concrete(index: Int, request: RecordedRequest) -> Behavior {
        switch self {
        case .sequence(let steps):
            guard !steps.isEmpty else { return .status(200) }
            return steps[min(index, steps.count - 1)].concrete(index: index, request: request)
        case .dynamic(let decide):
            return decide(request).concrete(index: index, request: request)
        default:
            return self
        }
    }
}

/// A request as the receiver read it.
public struct RecordedRequest: Sendable {
    /// Arrival order across all connections, from 0.
    public var index: Int
    /// Which accepted connection carried it, from 1.
    public var connection: Int
    public var method: String
    /// The request target as sent (`/path?query`).
    public var target: String
    public var version: String
    public var headers: [(String, String)]
    /// The body, with any chunked transfer coding removed.
    public var body: [UInt8]
    /// When the whole request had been read.
    public var arrival: ContinuousClock.Instant
    /// The same moment as Unix time in seconds (CLOCK_REALTIME), for latency measured
    /// against timestamps from elsewhere (e.g. a Postgres commit time).
    public var wallClock: Double

    /// The target without its query.
    public var path: String {
        String(target.prefix { $0 != "?" })
    }

    /// The first value of a header, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}
