import Foundation
import LocalReceiver
import Replication
import Synchronization
import Testing

/// The admin server of `changerelay run`, over real HTTP: probes, metrics, the JSON API
/// (listing, retrying a dead delivery until the receiver gets it again, bad parameters) and
/// the token rules.
@Suite struct AdminServerTests {
    /// Answers 500 while `failing`, 200 otherwise.
    final class Switch: Sendable {
        let failing = Mutex(true)
    }

    /// The address `run` logged as `admin server listening`, as a base URL on loopback.
    static func adminURL(_ run: Background) throws -> String {
        var found: String?
        try RunPipelineTests.waitFor("the admin server to listen", timeout: .seconds(60)) {
            guard let line = run.stderr.split(separator: "\n").first(where: { $0.contains("admin server listening") }),
                  let match = line.firstMatch(of: /address=(\S+)/) else { return false }
            found = String(match.1)
            return true
        }
        let address = try #require(found)
        let port = try #require(address.split(separator: ":").last)
        return "http://127.0.0.1:\(port)"
    }

    struct Answer {
        var status: Int
        var bodyText: String
    }

    /// One request through the `curl` command: blocking, so it needs no thread of the
    /// cooperative pool, which the suite's other (blocking) tests may all be holding.
    static func send(_ url: String, method: String = "GET", token: String? = nil, headers: [String] = [],
                     maxSeconds: Int = 30) throws -> Answer {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        let limit: [String] = ["-s", "-m", String(maxSeconds)]
        process.arguments = limit + (method == "HEAD" ? ["-I", "-o", "/dev/null"] : ["-X", method])
            + ["-w", "\n%{http_code}", url]
            + (token.map { ["-H", "Authorization: Bearer " + $0] } ?? []) + headers.flatMap { ["-H", $0] }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard let newline = text.lastIndex(of: "\n"), let status = Int(text[text.index(after: newline)...]) else {
            throw TestFailure("curl \(method) \(url) gave no status: \(text)")
        }
        return Answer(status: status, bodyText: String(text[..<newline]))
    }

    /// `promtool check metrics` (Debian's prometheus package) on a scrape: the text format
    /// parses, and names and types follow Prometheus' conventions.
    static func promtoolCheckMetrics(_ text: String) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/promtool")
        process.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func json(_ answer: Answer) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(answer.bodyText.utf8), options: [.fragmentsAllowed])
    }

    /// The backfills an instance counts are its slot's (037): a service on another slot that
    /// shares the state database counts its own, and a request from before 037 (no slot) is
    /// any service's. Every request is listed, with its slot. (A dispatcher alone runs no
    /// backfill runner, so the rows stay as written.)
    @Test func runningBackfillsAreCountedByTheServiceOfTheirSlot() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        try setup.db.execute("""
            INSERT INTO changerelay.backfills (table_schema, table_name, chunk_size, key_columns, status, slot_name) VALUES
                ('public', 'own', 10, '{id}', 'running', 'changerelay'),
                ('public', 'theirs', 10, '{id}', 'running', 'other'),
                ('public', 'anyone', 10, '{id}', 'running', NULL)
            """)
        let run = try Background(["run", "--only", "dispatcher"], environment: setup.environment)
        let base = try Self.adminURL(run)
        let status = try #require(try Self.json(try Self.send(base + "/api/status")) as? [String: Any])
        #expect(status["backfills_running"] as? Int == 2, "\(status)")
        let metrics = try Self.send(base + "/metrics").bodyText
        #expect(metrics.contains(#"changerelay_backfills_running{table="public.own"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"changerelay_backfills_running{table="public.anyone"} 1"#), "\(metrics)")
        #expect(!metrics.contains("public.theirs"), "\(metrics)")
        let listed = try #require(try Self.json(try Self.send(base + "/api/backfills")) as? [[String: Any]])
        #expect(listed.count == 3 && Set(listed.compactMap { $0["slot"] as? String }) == ["changerelay", "other"], "\(listed)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func probesMetricsAndTheAPIServeARunningService() throws {
        let toggle = Switch()
        let setup = try RunPipelineTests.prepare(
            behavior: .dynamic { _ in toggle.failing.withLock { $0 } ? .status(500) : .status(200) },
            extra: ["CHANGERELAY_HANDLERS_ECHO_MAX_ATTEMPTS": "1"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try Self.adminURL(run)

        let health = try Self.send(base + "/healthz")
        #expect(health.status == 200 && health.bodyText.hasPrefix("ok"))
        try RunPipelineTests.waitFor("readiness as active") { run.stderr.contains("streaming") }
        let ready = try Self.send(base + "/readyz")
        #expect(ready.status == 200 && ready.bodyText.contains(#""role":"active""#), "\(ready.bodyText)")
        // Before any try, the delivery series exist at zero, and the instance says it holds the slot.
        let fresh = try Self.send(base + "/metrics").bodyText
        for name in [#"changerelay_deliveries_total{handler="echo",outcome="dead"} 0"#,
                     #"changerelay_deliveries_total{handler="echo",outcome="succeeded"} 0"#,
                     #"changerelay_delivery_duration_seconds_count{handler="echo"} 0"#,
                     #"changerelay_commit_to_delivery_seconds_count{handler="echo"} 0"#, "changerelay_slot_active 1"] {
            #expect(fresh.contains(name), "\(name) missing from:\n\(fresh)")
        }

        try setup.db.execute("INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 3) g")
        try RunPipelineTests.waitFor("three dead deliveries") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status = 'dead'").value("n") == "3"
        }
        let listed = try Self.send(base + "/api/deliveries?status=dead&handler=echo&limit=10")
        #expect(listed.status == 200)
        let dead = try #require(try Self.json(listed) as? [[String: Any]])
        #expect(dead.count == 3)
        let id = try #require(dead.first?["id"] as? Int)

        // A page on another site cannot re-queue it (the browser says where it comes from),
        // nor read the API under a name of its own that resolves here (DNS rebinding).
        let port = base.split(separator: ":").last!
        for header in ["Origin: http://evil.example", "Origin: null", "Sec-Fetch-Site: cross-site"] {
            let refused = try Self.send(base + "/api/deliveries/\(id)/retry", method: "POST", headers: [header])
            #expect(refused.status == 403 && refused.bodyText.contains("cannot change anything"), "\(header): \(refused.bodyText)")
        }
        let rebound = try Self.send(base + "/api/deliveries?status=dead", headers: ["Host: rebound.example:\(port)"])
        #expect(rebound.status == 403 && rebound.bodyText.contains("admin.token"), "\(rebound.bodyText)")
        #expect(try Self.send(base + "/api/deliveries?status=dead", headers: ["Host: localhost:\(port)"]).status == 200)
        #expect(try setup.db.query("SELECT status FROM changerelay.deliveries WHERE id = $1", [String(id)]).value("status") == "dead")

        toggle.failing.withLock { $0 = false }
        let sentBefore = setup.receiver.requests.count
        // The dashboard's own button: a same-origin request.
        let retried = try Self.send(base + "/api/deliveries/\(id)/retry", method: "POST",
                                    headers: ["Origin: \(base)", "Sec-Fetch-Site: same-origin"])
        #expect(retried.status == 200, "\(retried.bodyText)")
        try RunPipelineTests.waitFor("the re-queued delivery to be sent again") {
            try setup.db.query("SELECT status FROM changerelay.deliveries WHERE id = $1", [String(id)]).value("status")
                == "succeeded"
        }
        #expect(setup.receiver.requests.count == sentBefore + 1)
        #expect(try Self.send(base + "/api/deliveries/\(id)/retry", method: "POST").status == 409)
        #expect(try Self.send(base + "/api/deliveries/987654/retry", method: "POST").status == 404)

        for (query, parameter) in [("status=bogus", "status"), ("limit=0", "limit"), ("handler=a%20b", "handler"), ("colour=red", "colour")] {
            let bad = try Self.send(base + "/api/deliveries?" + query)
            #expect(bad.status == 400 && bad.bodyText.contains(#""parameter":"\#(parameter)""#), "\(query): \(bad.bodyText)")
        }

        let status = try #require(try Self.json(try Self.send(base + "/api/status")) as? [String: Any])
        #expect(status["role"] as? String == "active")
        #expect(status["slot"] as? String == "changerelay")
        #expect((status["checkpoint_lsn"] as? String)?.contains("/") == true)
        #expect(status["lag_bytes"] is Int)
        #expect(try Self.send(base + "/api/backfills").status == 200)
        let schedules = try #require(try Self.json(try Self.send(base + "/api/schedules")) as? [[String: Any]])
        #expect(!schedules.isEmpty)

        let metrics = try Self.send(base + "/metrics").bodyText
        for name in ["changerelay_checkpoint_lsn ", "changerelay_replication_lag_bytes ", "changerelay_transactions_total ",
                     #"changerelay_changes_total{table="items",op="insert"} 3"#,
                     #"changerelay_deliveries_total{handler="echo",outcome="dead"} 3"#,
                     #"changerelay_deliveries_total{handler="echo",outcome="succeeded"} 1"#,
                     #"changerelay_deliveries_pending{handler="echo"} 0"#, "changerelay_buffers_open 0", "changerelay_slot_active 1",
                     // Four tries: three that failed for good, and the re-queued one.
                     #"changerelay_delivery_duration_seconds_count{handler="echo"} 4"#,
                     #"changerelay_commit_to_delivery_seconds_count{handler="echo"} 1"#,
                     #"changerelay_commit_to_delivery_seconds_bucket{handler="echo",le="+Inf"} 1"#] {
            #expect(metrics.contains(name), "\(name) missing from:\n\(metrics)")
        }
        let lint = try Self.promtoolCheckMetrics(metrics)
        #expect(lint.status == 0, "promtool check metrics: \(lint.output)")

        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// A state database that stops answering on a connection already open (here its backend
    /// is frozen with SIGSTOP: no error, no closed socket) makes `/readyz` answer 503 within
    /// its patience, and `/metrics` still answers with the counters. The stuck connection is
    /// left behind: the next probe connects afresh, and is ready again while the old backend
    /// is still frozen.
    @Test func aFrozenStateDatabaseMakesReadinessFailFastAndMetricsStillAnswer() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try Self.adminURL(run)
        try RunPipelineTests.waitFor("readiness") { try Self.send(base + "/readyz").status == 200 }
        _ = try Self.send(base + "/metrics")
        let pids = try setup.db.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'changerelay-admin'")
            .rows.compactMap { $0[0].flatMap { Int32($0) } }
        #expect(!pids.isEmpty)
        for pid in pids { kill(pid, SIGSTOP) }
        defer { for pid in pids { kill(pid, SIGCONT) } }
        let clock = ContinuousClock()
        // Past the probe's one-second memory of its last answer.
        var frozen = Answer(status: 0, bodyText: "")
        let started = clock.now
        try RunPipelineTests.waitFor("readiness to fail") {
            frozen = try Self.send(base + "/readyz")
            return frozen.status == 503
        }
        #expect(frozen.bodyText.contains("no answer within"), "\(frozen.bodyText)")
        #expect(clock.now - started < .seconds(8))
        let metrics = try Self.send(base + "/metrics")
        #expect(metrics.status == 200 && metrics.bodyText.contains("changerelay_transactions_total"))
        try RunPipelineTests.waitFor("readiness again, on a new connection") { try Self.send(base + "/readyz").status == 200 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// The probe has a connection of its own: a dashboard read stuck behind a lock (or a slow
    /// count over a large table) does not make a healthy database look unready.
    @Test func readinessDoesNotWaitBehindASlowDashboardRead() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try Self.adminURL(run)
        try RunPipelineTests.waitFor("readiness") { try Self.send(base + "/readyz").status == 200 }
        let locker = try setup.cluster.connect()
        try locker.execute("BEGIN; LOCK TABLE changerelay.deliveries IN ACCESS EXCLUSIVE MODE")
        let status = Thread { _ = try? Self.send(base + "/api/status") }
        status.start()
        try RunPipelineTests.waitFor("the dashboard's read to wait on the lock") {
            try setup.db.execute("""
                SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'changerelay-admin' AND wait_event_type = 'Lock'
                """).value("n") == "1"
        }
        // Past the probe's one-second memory of its last answer.
        Thread.sleep(forTimeInterval: 1.1)
        let clock = ContinuousClock()
        let started = clock.now
        let ready = try Self.send(base + "/readyz")
        #expect(ready.status == 200, "\(ready)")
        #expect(clock.now - started < .seconds(2))
        try locker.execute("COMMIT")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// The admin server's base URL and port, once it answers ready.
    static func readyAdmin(_ run: Background) throws -> (base: String, port: UInt16) {
        let base = try adminURL(run)
        try RunPipelineTests.waitFor("readiness") { try send(base + "/readyz").status == 200 }
        return (base, try #require(base.split(separator: ":").last.flatMap { UInt16($0) }))
    }

    /// A TCP connection to 127.0.0.1:`port`, open until the caller closes it; nil when refused.
    static func connectToLoopback(port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// A flood of connections that send nothing cannot use up the process's descriptors
    /// (which stopped the whole service once libdispatch could not open one): past
    /// `AdminServer.maximumConnections` the rest wait in the kernel's backlog, and the
    /// server answers again once they are gone.
    ///
    /// The server closes each silent connection after its idle timeout (2 s) and takes the
    /// next from the backlog, so the share it holds comes and goes: it is counted exactly
    /// (the process's sockets on the admin port) at every sample until the server has closed
    /// the whole flood. A count of all the process's descriptors was off by whatever else
    /// it had open when the count began, and missed a window now and then.
    @Test func aConnectionFloodHoldsAtMostTheServersShareOfDescriptors() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let (base, port) = try Self.readyAdmin(run)
        let limit = 128  // AdminServer.maximumConnections
        var flood: [Int32] = []
        defer { for fd in flood { close(fd) } }
        // Twice the limit and some, within the listen backlog (256): past that, each connect
        // waits out the kernel's SYN retries.
        for _ in 0..<(2 * limit + 40) {
            guard let fd = Self.connectToLoopback(port: port) else { break }
            flood.append(fd)
            _ = "GET /healthz HTTP/1.1\r\nHost: x\r\n".withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        }
        #expect(flood.count > 2 * limit)
        var peak = 0
        try RunPipelineTests.waitFor("the server to close the whole flood", timeout: .seconds(300)) {
            peak = max(peak, try Self.acceptedConnections(of: run.child.pid, port: port))
            return flood.allSatisfy(Self.isClosedByPeer)
        }
        // It stops accepting once it holds the limit; an accept already under way may
        // overshoot by a few.
        #expect((limit...(limit + 8)).contains(peak), "the most connections the server held at once: \(peak)")
        try RunPipelineTests.waitFor("answers again") { try Self.send(base + "/healthz").status == 200 }
        #expect(run.child.poll() == nil)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// How many connections to `port` the process `pid` has accepted: its sockets whose TCP
    /// entry is an established one on that local port. A connection still in the backlog has
    /// no descriptor in the process.
    static func acceptedConnections(of pid: pid_t, port: UInt16) throws -> Int {
        let directory = "/proc/\(pid)/fd"
        let inodes = Set(try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { fd -> Substring? in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + fd),
                  target.hasPrefix("socket:[") else { return nil }
            return target.dropFirst("socket:[".count).dropLast()
        })
        let hexPort = String(port, radix: 16, uppercase: true)
        let local = ":" + String(repeating: "0", count: 4 - hexPort.count) + hexPort
        // Columns: slot, local address, remote address, state (01 is established), queues,
        // timer, retransmits, uid, timeout, inode.
        // Read to its end: a file in /proc has no size, and reading by its size stops at a page.
        let table = try #require(FileHandle(forReadingAtPath: "/proc/net/tcp"))
        defer { try? table.close() }
        let text = String(decoding: try table.readToEnd() ?? Data(), as: UTF8.self)
        return text.split(separator: "\n").dropFirst().count { line in
            let fields = line.split(separator: " ")
            return fields.count > 9 && fields[1].hasSuffix(local) && fields[3] == "01" && inodes.contains(fields[9])
        }
    }

    /// Whether the other end of `fd` has closed it (anything it sent first is read and dropped).
    static func isClosedByPeer(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 512)
        while true {
            let read = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            if read > 0 || (read < 0 && errno == EINTR) { continue }
            return read == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
        }
    }

    /// Clients that connect and send nothing, more than the server keeps open, hold the
    /// probes back only until they are closed for idling (2 s, `AdminServer.run`):
    /// with the 30 s it had, 140 of them failed every liveness probe for half a minute.
    @Test func silentConnectionsHoldTheProbesBackOnlyBriefly() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let (base, port) = try Self.readyAdmin(run)
        var silent: [Int32] = []
        defer { for fd in silent { close(fd) } }
        for _ in 0..<140 {
            silent.append(try #require(Self.connectToLoopback(port: port)))
        }
        // Within a probe's patience plus the idle timeout, far below the 30 s it took before.
        #expect(try Self.send(base + "/healthz", maxSeconds: 10).status == 200)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    /// A path the server has, asked with another method: 405 with `Allow`, not 404; HEAD is
    /// GET without the body.
    @Test func otherMethodsGet405AndHeadIsGetWithoutTheBody() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try Self.adminURL(run)
        for (method, path, allowed) in [("POST", "/healthz", "GET, HEAD"), ("PUT", "/api/status", "GET, HEAD"),
                                        ("DELETE", "/metrics", "GET, HEAD"), ("GET", "/api/deliveries/1/retry", "POST"),
                                        ("TRACE", "/api/status", "GET, HEAD"), ("OPTIONS", "/metrics", "GET, HEAD")] {
            let answer = try Self.send(base + path, method: method)
            #expect(answer.status == 405 && answer.bodyText.contains("allows \(allowed) only"), "\(method) \(path): \(answer)")
        }
        let head = try Self.send(base + "/healthz", method: "HEAD")
        #expect(head.status == 200, "\(head)")
        #expect(try Self.send(base + "/nowhere").status == 404)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0)
    }

    @Test func aNonLoopbackAddressNeedsAReadableTokenFile() throws {
        let open = try runChangeRelay(["run"], environment: ["CHANGERELAY_ADMIN_LISTEN": "0.0.0.0:0"])
        #expect(open.status != 0)
        #expect(open.stderr.contains("admin.listen") && open.stderr.contains("admin.token_file"), "\(open.stderr)")

        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("empty-token-\(UUID().uuidString)").path
        try Data().write(to: URL(fileURLWithPath: empty))
        defer { unlink(empty) }
        let refused = try runChangeRelay(["run"], environment: ["CHANGERELAY_ADMIN_TOKEN_FILE": empty])
        #expect(refused.status != 0 && refused.stderr.contains("admin.token_file"), "\(refused.stderr)")
        let missing = try runChangeRelay(["run"], environment: ["CHANGERELAY_ADMIN_TOKEN_FILE": empty + ".missing"])
        #expect(missing.status != 0 && missing.stderr.contains("admin.token_file"), "\(missing.stderr)")
    }

    @Test func theTokenGuardsEverythingButTheProbesAndTheDashboardPage() throws {
        let token = "t0ken-" + UUID().uuidString
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("admin-token-\(UUID().uuidString)").path
        try Data((token + "\n").utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_ADMIN_LISTEN": "0.0.0.0:0",
                                                         "CHANGERELAY_ADMIN_TOKEN_FILE": path])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try Self.adminURL(run)

        #expect(try Self.send(base + "/healthz").status == 200)
        #expect(try Self.send(base + "/readyz").status != 401)
        // The page is static; every figure on it comes through the endpoints below.
        #expect(try Self.send(base + "/").status == 200)
        for path in ["/metrics", "/api/status", "/api/deliveries", "/api/backfills", "/api/schedules", "/api/activity"] {
            let anonymous = try Self.send(base + path)
            #expect(anonymous.status == 401 && !anonymous.bodyText.contains(token), "\(path)")
            #expect(try Self.send(base + path, token: token + "x").status == 401, "\(path)")
            #expect(try Self.send(base + path, token: token).status == 200, "\(path)")
        }
        #expect(try Self.send(base + "/api/deliveries/1/retry", method: "POST").status == 401)

        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
        #expect(!run.stderr.contains(token))
    }
}
