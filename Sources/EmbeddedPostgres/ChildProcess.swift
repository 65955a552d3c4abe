#if canImport(Glibc)
import Glibc
#endif

/// A child process started with `posix_spawn` and reaped with `waitpid`. Foundation's
/// `Process` is not used: on Linux its exit monitoring can miss the child when waited
/// on from Swift's cooperative pool, leaving a zombie and a caller that never returns.
/// Output goes to a file, not a pipe, so a daemon the child starts (pg_ctl starts the
/// postmaster) cannot hold the reader open.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Starts `arguments[0]` (an absolute path) with stdout and stderr appended to `outputPath`.
    public init(_ arguments: [String], environment: [String: String]? = nil, outputPath: String,
                errorPath: String? = nil) throws(LocalPostgresError) {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath ?? outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        // Worker threads run with signals blocked and the child would inherit that mask:
        // start it with none blocked and default dispositions, as a shell would.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var environmentStrings = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { environmentStrings?.forEach { free($0) } }
        var child: pid_t = 0
        let result: Int32
        if environmentStrings != nil {
            result = posix_spawn(&child, arguments[0], &actions, &attributes, &argv, &environmentStrings!)
        } else {
            result = posix_spawn(&child, arguments[0], &actions, &attributes, &argv, environ)
        }
        guard result == 0 else { throw .failed(arguments[0], String(cString: strerror(result))) }
        pid = child
    }

    /// Blocks until the child exits; returns its exit code (128 + signal when killed).
    @discardableResult
    public func wait() -> Int32 {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        let code = Self.exitCode(raw)
        status = code
        return code
    }

    /// The exit code if the child has exited, without blocking.
    public func poll() -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        status = Self.exitCode(raw)
        return status
    }

    public func signal(_ number: Int32) { kill(pid, number) }

    private static func exitCode(_ raw: Int32) -> Int32 {
        let signal = raw & 0x7F
        return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
    }
}
