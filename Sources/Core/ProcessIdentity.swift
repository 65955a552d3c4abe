#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A process, named so that another process on the same machine can tell whether it still
/// runs: the host's name, the PID namespace it runs in, its pid, and its start time in clock
/// ticks after boot (a later process given the same pid started later).
///
/// A database session is no such name: a process whose connection was cut (a Postgres
/// restart, a failover) lives on with its requests in flight, and only the process itself
/// tells that. Written `host|namespace|pid|start`; a host name holds no `|`.
public struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    /// The PID namespace's inode (`/proc/self/ns/pid`): pids mean the same only within one.
    public var pidNamespace: String
    public var pid: Int32
    public var start: UInt64

    public init(host: String, pidNamespace: String, pid: Int32, start: UInt64) {
        self.host = host
        self.pidNamespace = pidNamespace
        self.pid = pid
        self.start = start
    }

    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, !parts[1].isEmpty, let pid = Int32(parts[2]), let start = UInt64(parts[3]) else {
            return nil
        }
        self.init(host: String(parts[0]), pidNamespace: String(parts[1]), pid: pid, start: start)
    }

    public var description: String { "\(host)|\(pidNamespace)|\(pid)|\(start)" }

    /// This process; nil where `/proc` cannot say (then nothing it claims is ever taken over
    /// early, and it takes over nothing).
    public static func current() -> ProcessIdentity? {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return nil }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let pid = getpid()
        guard !host.isEmpty, !host.contains("|"), let namespace = pidNamespace(), let start = startTicks(of: pid) else {
            return nil
        }
        return ProcessIdentity(host: host, pidNamespace: namespace, pid: pid, start: start)
    }

    /// Whether this process has ended, as `observer` can see it: nil when it ran on another
    /// host or in another PID namespace, whose processes `observer` cannot look up.
    public func hasEnded(seenFrom observer: ProcessIdentity) -> Bool? {
        guard host == observer.host, pidNamespace == observer.pidNamespace else { return nil }
        return Self.startTicks(of: pid) != start
    }

    /// `pid:[4026531836]` → `4026531836`.
    private static func pidNamespace() -> String? {
        var target = [CChar](repeating: 0, count: 128)
        let length = readlink("/proc/self/ns/pid", &target, target.count - 1)
        guard length > 0 else { return nil }
        let text = String(decoding: target.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let digits = text.filter(\.isNumber)
        return digits.isEmpty ? nil : digits
    }

    /// Field 22 of `/proc/<pid>/stat`, counted after the command name, which may hold spaces
    /// and parentheses and ends at the last `)`. nil when no such process runs.
    static func startTicks(of pid: Int32) -> UInt64? {
        // Read to the end: Foundation's string readers stop at a page for /proc files.
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/stat"), let data = try? file.readToEnd() else { return nil }
        try? file.close()
        guard let close = data.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = data[data.index(after: close)...].split(separator: UInt8(ascii: " "))
        // After the name: state (field 3) first, so start time (field 22) is the 20th.
        guard fields.count >= 20 else { return nil }
        return UInt64(String(decoding: fields[19], as: UTF8.self))
    }
}
