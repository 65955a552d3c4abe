import Core
import Foundation

/// The admin API's bearer token, read from `admin.token_file`. It has no description, so it
/// cannot end up in a log line or an error by interpolation.
public struct AdminToken: Sendable {
    private let bytes: [UInt8]

    init(_ token: String) {
        bytes = Array(token.utf8)
    }

    /// The file's content without surrounding white space (a trailing newline is common).
    public init(file path: String) throws(AdminSettingsError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .tokenUnreadable(path: path, reason: unreadableFileReason(path))
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw .tokenEmpty(path: path) }
        self.init(token)
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`, compared in constant time.
    public func accepts(authorization: String?) -> Bool {
        guard let authorization, authorization.count > 7,
              authorization.prefix(7).lowercased() == "bearer " else { return false }
        return Self.constantTimeEquals(Array(authorization.utf8.dropFirst(7)), bytes)
    }

    /// Equal bytes, in a time that depends on the lengths only: a timing probe learns nothing
    /// about how much of a guess was right.
    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count) | (lhs.count == rhs.count ? 0 : 1)
        for index in 0..<max(lhs.count, rhs.count) {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }
}

/// Where the admin server listens and which token it demands, checked before anything starts.
public struct AdminSettings: Sendable {
    public var listen: ListenAddress
    /// nil only on loopback without `admin.token_file`: then nothing is asked.
    public var token: AdminToken?

    /// `admin.listen = "off"`: no admin server, and no metrics recorded (swift-metrics stays
    /// unbootstrapped), for a one-off replay or a benchmark of what metrics cost.
    public static let off = "off"

    /// nil when `listen` is `off`.
    public static func parse(listen text: String, tokenFile: String?) throws(AdminSettingsError) -> AdminSettings? {
        text == off ? nil : try AdminSettings(listen: text, tokenFile: tokenFile)
    }

    public init(listen text: String, tokenFile: String?) throws(AdminSettingsError) {
        do {
            listen = try ListenAddress(parsing: text)
        } catch {
            throw .badListenAddress(text, reason: error.reason)
        }
        token = try tokenFile.map { path throws(AdminSettingsError) in try AdminToken(file: path) }
        if token == nil, !listen.isLoopback { throw .tokenRequired(listen: text) }
    }
}
