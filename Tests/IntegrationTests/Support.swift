import Core
import EmbeddedPostgres
import Foundation
import Replication
import Testing

/// The built `changerelay` binary: beside the test products, or `CHANGERELAY_BIN`.
let changerelayBinary: String = {
    if let configured = ProcessInfo.processInfo.environment["CHANGERELAY_BIN"] { return configured }
    let testProducts = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    return testProducts.appendingPathComponent("changerelay").path
}()

let repositoryRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// A private cluster with the project's schema applied, stopped and removed by `stop()`.
func startCluster(settings: [String: String] = [:], schema: Bool = true) throws -> LocalPostgres {
    let cluster = try LocalPostgres(.init(extraSettings: settings))
    try cluster.start()
    if schema {
        let sql = repositoryRoot + "/sql"
        for file in try FileManager.default.contentsOfDirectory(atPath: sql).sorted()
        where file.hasSuffix(".sql") && !file.hasSuffix(".rollback.sql") && file.first?.isNumber == true {
            try cluster.connect().execute(try String(contentsOfFile: sql + "/" + file, encoding: .utf8))
        }
    }
    return cluster
}

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the real binary with a private environment (no inherited CHANGERELAY_* variables),
/// killing it if it outlives `timeout`.
func runChangeRelay(_ arguments: [String], environment: [String: String] = [:],
                    timeout: Duration = .seconds(120)) throws -> CommandResult {
    var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHANGERELAY_") || $0.key == "CHANGERELAY_PG_BINDIR" }
    env["CHANGERELAY_SQL_DIR"] = repositoryRoot + "/sql"
    // Tests run side by side: each admin server takes a free port unless the test names one.
    env["CHANGERELAY_ADMIN_LISTEN"] = "127.0.0.1:0"
    env.merge(environment) { $1 }
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("changerelay-\(UUID().uuidString)").path
    defer { unlink(base + ".out"); unlink(base + ".err") }
    let child = try ChildProcess([changerelayBinary] + arguments, environment: env, outputPath: base + ".out",
                                 errorPath: base + ".err")
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    var status = child.poll()
    while status == nil {
        if clock.now > deadline {
            child.signal(SIGKILL)
            Issue.record("changerelay \(arguments.joined(separator: " ")) did not finish within \(timeout)")
            status = child.wait()
            break
        }
        usleep(20_000)
        status = child.poll()
    }
    return CommandResult(status: status ?? -1,
                         stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Starts `changerelay tail` in the background; output goes to files the test reads.
final class Background {
    let child: ChildProcess
    let out: String, err: String

    init(_ arguments: [String], environment: [String: String]) throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("tail-\(UUID().uuidString)").path
        out = base + ".out"
        err = base + ".err"
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("CHANGERELAY_") }
        env["CHANGERELAY_ADMIN_LISTEN"] = "127.0.0.1:0"
        env.merge(environment) { $1 }
        child = try ChildProcess([changerelayBinary] + arguments, environment: env, outputPath: out, errorPath: err)
    }

    var stdout: String { (try? String(contentsOfFile: out, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: err, encoding: .utf8)) ?? "" }

    /// Waits for a condition on the output, with a deadline.
    func waitFor(_ what: String, timeout: Duration = .seconds(60), _ condition: (String) -> Bool) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while !condition(stdout) {
            guard clock.now < deadline, child.poll() == nil else {
                throw TestFailure("\(what) did not happen; stdout: \(stdout.suffix(500)) stderr: \(stderr.suffix(1000))")
            }
            usleep(20_000)
        }
    }

    func waitForExit(timeout: Duration = .seconds(30)) -> Int32? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while clock.now < deadline {
            if let status = child.poll() { return status }
            usleep(20_000)
        }
        child.signal(SIGKILL)
        child.wait()
        return nil
    }

    deinit {
        if child.poll() == nil {
            child.signal(SIGKILL)
            child.wait()
        }
        unlink(out)
        unlink(err)
    }
}

/// The kill tests' pattern: `run` killed with -9 at each crash point (`batch-copied`: a batch's
/// rows sent, COMMIT not; `try-sent`: a try's answer in hand, not recorded), then twice at a
/// random instant after it starts streaming. The caller's writer keeps writing meanwhile.
func killRunRepeatedly(environment: [String: String]) throws {
    for point in ["batch-copied", "try-sent"] {
        var armed = environment
        armed["CHANGERELAY_CRASH_POINT"] = point
        let run = try Background(["run"], environment: armed)
        try RunPipelineTests.waitFor("the crash point \(point)") { run.stderr.contains("crash point \(point) reached") }
        run.child.signal(SIGKILL)
        _ = run.waitForExit()
    }
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<2 {
        let run = try Background(["run"], environment: environment)
        try RunPipelineTests.waitFor("the run to stream") { run.stderr.contains("streaming") }
        usleep(UInt32.random(in: 200_000...800_000, using: &generator))
        run.child.signal(SIGKILL)
        _ = run.waitForExit()
    }
}
