import Core
import Foundation
import Replication
#if canImport(Glibc)
import Glibc
#endif

/// A private Postgres cluster: initdb in a directory of its own, a free port on
/// 127.0.0.1, `wal_level=logical`, wal2json allowed. Used by `changerelay dev` and by
/// every integration test. initdb refuses to run as root, so as root the cluster
/// runs as the unprivileged `postgres` user.
public final class LocalPostgres: @unchecked Sendable {
    public struct Options: Sendable {
        /// Where the cluster lives; a fresh temporary directory when nil.
        public var directory: String?
        /// Remove the directory on `stop()` (temporary clusters).
        public var removeOnStop: Bool
        /// Trades durability for speed in tests; a kill -9 of the server still recovers.
        public var fsync: Bool
        public var extraSettings: [String: String]

        public init(directory: String? = nil, removeOnStop: Bool = true, fsync: Bool = false,
                    extraSettings: [String: String] = [:]) {
            self.directory = directory
            self.removeOnStop = removeOnStop
            self.fsync = fsync
            self.extraSettings = extraSettings
        }
    }

    public let directory: String
    public private(set) var port: Int
    public let binDirectory: String
    private let options: Options
    private var running = false

    public var dataDirectory: String { directory + "/data" }
    /// Superuser URL (trust authentication on loopback only).
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    public init(_ options: Options = Options()) throws(LocalPostgresError) {
        self.options = options
        binDirectory = try Self.findBinaries()
        if let directory = options.directory {
            self.directory = directory
        } else {
            var template = Array("/tmp/changerelay-pg-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw .failed("mkdtemp", String(cString: strerror(errno))) }
            self.directory = String(cString: made)
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw .failed("create \(directory)", "\(error)")
        }
        // As root the server runs as postgres: the directory is its (mkdtemp makes it 0700).
        try Self.ownForServer(directory)
        guard Self.serverCanReach(directory) else {
            throw .failed("use \(directory)", """
                the postgres user, which runs the cluster when changerelay runs as root, cannot reach it (a directory \
                above it, such as /root, is closed to other users); choose one it can, e.g. /var/tmp/changerelay-dev
                """)
        }
        if let running = Self.runningServer(directory + "/data") {
            // A server left running on this directory (a `changerelay dev` killed with -9, or
            // one still running): starting another would fail on its lock file, and rewriting
            // its settings would move its port under it.
            let data = directory + "/data"
            let stop = (geteuid() == 0 ? "runuser -u postgres -- " : "") + "\(binDirectory)/pg_ctl -D '\(data)' stop"
            throw .failed("start", "a Postgres server (pid \(running)) is already running on \(data), "
                          + "left by an earlier run or still in use; stop it with: \(stop)")
        }
        port = try Self.freePort()
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            try initialize()
        }
        try writeSettings()
    }

    deinit { if running { try? stop() } }

    /// Starts the server and waits until it accepts connections. A free port can be taken
    /// by someone else between choosing and binding it: then a new one is tried.
    public func start() throws(LocalPostgresError) {
        for attempt in 1...3 {
            do {
                try run("pg_ctl", ["-D", dataDirectory, "-l", directory + "/server.log", "-w", "-t", "60", "start"])
                running = true
                return
            } catch {
                let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
                guard attempt < 3, log.contains("could not bind") || log.contains("lock file") else { throw error }
                port = try Self.freePort()
                try writeSettings()
            }
        }
    }

    /// The pid in the directory's `postmaster.pid` when that process is alive and a Postgres
    /// server; nil otherwise (no file, or one a crash left behind, whose pid may since be
    /// another program's: Postgres itself clears such a file on start).
    static func runningServer(_ dataDirectory: String) -> Int32? {
        guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8),
              let pid = text.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }),
              pid > 0,
              let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
              name.hasPrefix("postgres") else { return nil }
        return pid
    }

    /// `pg_ctl stop -m fast`; removes a temporary cluster's directory unless `keepingData`
    /// (an outage that `start()` ends).
    public func stop(keepingData: Bool = false) throws(LocalPostgresError) {
        if running {
            try run("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
            running = false
        }
        if options.removeOnStop && !keepingData { try? FileManager.default.removeItem(atPath: directory) }
    }

    /// Restarts the server; `immediate` simulates a crash (no checkpoint, WAL replay on start).
    public func restart(immediate: Bool = false) throws(LocalPostgresError) {
        try run("pg_ctl", ["-D", dataDirectory, "-m", immediate ? "immediate" : "fast", "-w", "-t", "60",
                           "-l", directory + "/server.log", "restart"])
    }

    public func connect(database: String = "postgres") throws(PostgresError) -> PostgresConnection {
        try PostgresConnection(url: "postgresql://postgres@127.0.0.1:\(port)/\(database)",
                               parameters: [("options", pinnedSessionOptions)])
    }

    /// The server's own version, e.g. (15, 18).
    public func version() throws(LocalPostgresError) -> (major: Int, minor: Int) {
        let output = try run("postgres", ["--version"])
        let numbers = output.split(whereSeparator: { !$0.isNumber && $0 != "." })
            .first { $0.contains(".") }?.split(separator: ".").compactMap { Int($0) } ?? []
        guard numbers.count >= 2 else { throw .failed("postgres --version", output) }
        return (numbers[0], numbers[1])
    }

    private func initialize() throws(LocalPostgresError) {
        try Self.ownForServer(directory)
        try run("initdb", ["-D", dataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C",
                           "--no-sync"])
        let configuration = dataDirectory + "/postgresql.conf"
        guard let file = fopen(configuration, "a") else {
            throw .failed("open \(configuration)", String(cString: strerror(errno)))
        }
        fputs("\ninclude_if_exists = 'changerelay.conf'\n", file)
        fclose(file)
    }

    private func writeSettings() throws(LocalPostgresError) {
        var settings: [String: String] = [
            "port": "\(port)",
            "listen_addresses": "'127.0.0.1'",
            // Socket paths are limited to 107 bytes, too few for a deep project folder.
            "unix_socket_directories": "'/tmp'",
            "wal_level": "logical",
            "max_wal_senders": "20",
            "max_replication_slots": "20",
            "fsync": options.fsync ? "on" : "off",
            "synchronous_commit": options.fsync ? "on" : "off",
            "full_page_writes": options.fsync ? "on" : "off",
            "shared_buffers": "128MB",
            "wal_sender_timeout": "60s",
        ]
        // 15.19 and later accept only the plugins listed here; earlier versions refuse to start with it.
        let (major, minor) = try version()
        if major > 15 || (major == 15 && minor >= 19) {
            settings["output_plugin_libraries"] = "'pgoutput, test_decoding, wal2json'"
        }
        settings.merge(options.extraSettings) { $1 }
        let text = "# Written by changerelay's LocalPostgres at every start; ALTER SYSTEM settings still win.\n"
            + settings.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: "\n") + "\n"
        let path = dataDirectory + "/changerelay.conf"
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw .failed("write \(path)", "\(error)")
        }
        try Self.ownForServer(path)
    }

    @discardableResult
    private func run(_ tool: String, _ arguments: [String]) throws(LocalPostgresError) -> String {
        var command = [binDirectory + "/" + tool] + arguments
        // As root the tools run as postgres, in the cluster's directory: the caller's (a checkout
        // in /root) may be closed to it, and `postgres --version` then printed a warning about
        // it before its version.
        if geteuid() == 0 { command = ["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/env", "-C", directory] + command }
        let outputPath = directory + "/.\(tool)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
        defer { unlink(outputPath) }
        let status = try ChildProcess(command, outputPath: outputPath).wait()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            var detail = text
            if let log = try? String(contentsOfFile: directory + "/server.log", encoding: .utf8) {
                detail += "\nserver.log:\n" + log.split(separator: "\n").suffix(15).joined(separator: "\n")
            }
            throw .failed("\(tool) \(arguments.joined(separator: " "))", detail)
        }
        return text
    }

    /// Whether the server's user can enter `path`: always when this process is not
    /// root (the server runs as it); as root, the cluster runs as `postgres`, which a parent
    /// directory closed to other users (root's home) keeps out, and initdb failed with
    /// nothing but "Permission denied".
    public static func serverCanReach(_ path: String) -> Bool {
        guard geteuid() == 0 else { return true }
        guard let status = try? ChildProcess(["/usr/sbin/runuser", "-u", "postgres", "--", "/usr/bin/test", "-x", path],
                                             outputPath: "/dev/null").wait() else { return false }
        return status == 0
    }

    private static func ownForServer(_ path: String) throws(LocalPostgresError) {
        guard geteuid() == 0 else { return }
        guard let user = getpwnam("postgres") else {
            throw .failed("running as root", "there is no 'postgres' user to run the cluster as (initdb refuses root)")
        }
        guard chown(path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
            throw .failed("chown \(path)", String(cString: strerror(errno)))
        }
    }

    /// `CHANGERELAY_PG_BINDIR`, else the newest `/usr/lib/postgresql/N/bin` holding initdb.
    private static func findBinaries() throws(LocalPostgresError) -> String {
        if let configured = ProcessInfo.processInfo.environment["CHANGERELAY_PG_BINDIR"] {
            guard FileManager.default.isExecutableFile(atPath: configured + "/initdb") else {
                throw .failed("find Postgres", "CHANGERELAY_PG_BINDIR is \(configured), which holds no initdb")
            }
            return configured
        }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .compactMap(Int.init).sorted(by: >)
        for version in versions where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
            return "\(root)/\(version)/bin"
        }
        throw .failed("find Postgres", "no initdb under \(root)/*/bin; install postgresql-15 or set CHANGERELAY_PG_BINDIR")
    }

    /// Binds port 0 on loopback and keeps the number the kernel chose (for the cluster, and
    /// for any other local server a test starts beside it).
    public static func freePort() throws(LocalPostgresError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .failed("socket", String(cString: strerror(errno))) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard bound else { throw .failed("bind 127.0.0.1:0", String(cString: strerror(errno))) }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public enum LocalPostgresError: Error, CustomStringConvertible {
    case failed(String, String)

    public var description: String {
        switch self {
        case .failed(let step, let detail): "local Postgres: \(step) failed: \(detail)"
        }
    }
}
