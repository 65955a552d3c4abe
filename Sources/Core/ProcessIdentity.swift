#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A process, named so that another process on the same machine can tell whether it still
/// runs: the host's name and boot, the PID namespace it runs in, its pid, and its start time
/// in clock ticks after boot (a later process given the same pid started later).
///
/// A database session is no such name: a process whose connection was cut (a Postgres
/// restart, a failover) lives on with its requests in flight, and only the process itself
/// tells that. Host names repeat and namespace numbers are reused across machines, so the
/// boot's id (`/proc/sys/kernel/random/boot_id`) names the machine. Written
/// `host|boot|namespace|pid|start`; a host name holds no `|`.
public struct ProcessIdentity: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var boot: String
    /// The PID namespace's inode (`/proc/self/ns/pid`): pids mean the same only within one.
    public var pidNamespace: String
    public var pid: Int32
    public var start: UInt64

    public init(host: String, boot: String, pidNamespace: String, pid: Int32, start: UInt64) {
        self.host = host
        self.boot = boot
        self.pidNamespace = pidNamespace
        self.pid = pid
        self.start = start
    }

    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "|", omittingEmptySubsequences: false)
        guard parts.count == 5, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty, let pid = Int32(parts[3]),
              let start = UInt64(parts[4]) else {
            return nil
        }
        self.init(host: String(parts[0]), boot: String(parts[1]), pidNamespace: String(parts[2]), pid: pid, start: start)
    }

    public var description: String { "\(host)|\(boot)|\(pidNamespace)|\(pid)|\(start)" }

    /// This process; nil where `/proc` cannot say (then nothing it claims is ever taken over
    /// early, and it takes over nothing).
    public static func current() -> ProcessIdentity? {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count - 1) == 0 else { return nil }
        let host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let pid = getpid()
        // A /proc of another PID namespace than this process's (not mounted again after
        // `unshare -p`) would describe other processes under the same numbers.
        guard !host.isEmpty, !host.contains("|"), let boot = bootID(), let namespace = pidNamespace(),
              let own = stat(of: pid), own.pid == pid else {
            return nil
        }
        return ProcessIdentity(host: host, boot: boot, pidNamespace: namespace, pid: pid, start: own.start)
    }

    /// Whether this process has ended, as `observer` can see it: nil when it ran on another
    /// machine or in another PID namespace, whose processes `observer` cannot look up, or when
    /// its `/proc` entry exists but cannot be read (another user's under `hidepid`): only a
    /// pid that no process has, or has with a later start, is an ended process.
    public func hasEnded(seenFrom observer: ProcessIdentity) -> Bool? {
        guard host == observer.host, boot == observer.boot, pidNamespace == observer.pidNamespace else { return nil }
        // A zombie (killed, not yet reaped by its parent) has ended: it sends nothing more.
        if let found = Self.stat(of: pid) { return found.start != start || found.state == "Z" || found.state == "X" }
        return kill(pid, 0) == -1 && errno == ESRCH ? true : nil
    }

    private static func bootID() -> String? {
        guard let file = FileHandle(forReadingAtPath: "/proc/sys/kernel/random/boot_id"),
              let data = try? file.readToEnd() else { return nil }
        try? file.close()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty || text.contains("|") ? nil : text
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

    /// Fields 1, 3 and 22 of `/proc/<pid>/stat`, the last two counted after the command name,
    /// which may hold spaces and parentheses and ends at the last `)`. nil when it cannot be read.
    private static func stat(of pid: Int32) -> (pid: Int32, state: Character, start: UInt64)? {
        // Read to the end: Foundation's string readers stop at a page for /proc files.
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/stat"), let data = try? file.readToEnd() else { return nil }
        try? file.close()
        guard let open = data.firstIndex(of: UInt8(ascii: " ")), let close = data.lastIndex(of: UInt8(ascii: ")")),
              let listed = Int32(String(decoding: data[..<open], as: UTF8.self)) else { return nil }
        let fields = data[data.index(after: close)...].split(separator: UInt8(ascii: " "))
        // After the name: state (field 3) first, so start time (field 22) is the 20th.
        guard fields.count >= 20, let state = String(decoding: fields[0], as: UTF8.self).first,
              let start = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        return (listed, state, start)
    }
}
