#if canImport(Glibc)
import Glibc
#endif

/// Why a text is not a listen address; `text` is what was given.
public struct ListenAddressError: Error, Sendable, Equatable {
    public var text: String
    public var reason: String
}

/// `admin.listen`: `host:port`, or `[v6-address]:port`. Port 0 asks the system for a free port.
/// Read here, beside the configuration's other shapes, so that a bad one is a configuration
/// error naming where it came from, before any command runs.
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws(ListenAddressError) {
        func bad(_ reason: String) -> ListenAddressError { ListenAddressError(text: text, reason: reason) }
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw bad("an IPv6 address needs a closing ]") }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw bad("expected :port after ]") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw bad("expected host:port") }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") { throw bad("write an IPv6 address in brackets, [::1]:9187") }
        }
        guard !hostPart.isEmpty else { throw bad("the host is empty") }
        guard !portPart.isEmpty, portPart.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let port = Int(portPart),
              (0...65_535).contains(port) else { throw bad("the port must be 0…65535, digits only") }
        host = String(hostPart)
        self.port = port
    }

    /// Whether only this machine can connect: `localhost`, 127.0.0.0/8 or `::1`. Any other
    /// name could resolve anywhere, so it counts as reachable from outside.
    public var isLoopback: Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
        }
        return false
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
