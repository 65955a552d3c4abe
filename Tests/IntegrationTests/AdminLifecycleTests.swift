import EmbeddedPostgres
import Foundation
import LocalReceiver
import Replication
import Testing

/// Readiness as an orchestrator sees it, over real HTTP against the real binary: an active
/// instance, a standby that takes the slot over when the active one dies, and a state
/// database that goes away and comes back.
@Suite struct AdminLifecycleTests {
    /// The `/readyz` answer: its HTTP status and its `role` or `reason`.
    struct Readiness {
        var status: Int
        var role: String?
        var reason: String?
    }

    static func readiness(_ base: String) throws -> Readiness {
        let answer = try AdminServerTests.send(base + "/readyz")
        let body = (try? AdminServerTests.json(answer)) as? [String: Any]
        return Readiness(status: answer.status, role: body?["role"] as? String, reason: body?["reason"] as? String)
    }

    @Test func aStandbyTakesTheSlotOverWhenTheActiveOneDies() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let active = try Background(["run"], environment: setup.environment)
        let activeURL = try AdminServerTests.adminURL(active)
        try RunPipelineTests.waitFor("the first instance to stream") { active.stderr.contains("streaming") }

        // A fixed port: the standby rebuilds its services (the admin server too) when it takes over.
        let port = try LocalPostgres.freePort()
        var standbyEnvironment = setup.environment
        standbyEnvironment["CHANGERELAY_ADMIN_LISTEN"] = "127.0.0.1:\(port)"
        let standby = try Background(["run"], environment: standbyEnvironment)
        let standbyURL = try AdminServerTests.adminURL(standby)
        try RunPipelineTests.waitFor("the second instance to stand by") { standby.stderr.contains("standing by") }
        let waiting = try Self.readiness(standbyURL)
        #expect(waiting.status == 200 && waiting.role == "standby", "\(waiting)")
        #expect(try Self.readiness(activeURL).role == "active")

        try setup.db.execute("INSERT INTO items SELECT g, 'before' FROM generate_series(1, 50) g")
        try RunPipelineTests.waitFor("the first 50 changes delivered") { RunPipelineTests.distinctKeys(setup.receiver).count == 50 }
        // Work committed in the source that the dying instance may or may not have planned.
        try setup.db.execute("INSERT INTO items SELECT g, 'during' FROM generate_series(51, 100) g")

        let clock = ContinuousClock()
        active.child.signal(SIGKILL)
        _ = active.waitForExit()
        let killed = clock.now
        do {
            try RunPipelineTests.waitFor("the standby to become active", timeout: .seconds(30)) {
                try Self.readiness(standbyURL).role == "active"
            }
        } catch {
            throw TestFailure("\(error); the standby's log:\n\(standby.stderr.suffix(4000))")
        }
        let takeover = clock.now - killed
        // The active instance moved the checkpoint after the standby loaded it: the standby
        // reloads rather than plan again what is committed.
        #expect(standby.stderr.contains("taking the slot over: rebuilding the service"), "\(standby.stderr.suffix(3000))")
        print("AdminLifecycleTests: the standby took the slot over \(takeover) after the active instance was killed")
        #expect(takeover < .seconds(10), "a standby polls the slot every 500 ms; it took \(takeover)")

        try setup.db.execute("INSERT INTO items SELECT g, 'after' FROM generate_series(101, 150) g")
        try RunPipelineTests.waitFor("all 150 changes delivered") { RunPipelineTests.distinctKeys(setup.receiver).count == 150 }
        try RunPipelineTests.waitFor("every delivery settled") {
            try setup.db.execute("SELECT count(*) AS n FROM changerelay.deliveries WHERE status <> 'succeeded'").value("n") == "0"
        }
        try RunPipelineTests.expectPlannedOnce(setup.db, changes: 150)
        standby.child.signal(SIGTERM)
        #expect(standby.waitForExit() == 0, "\(standby.stderr.suffix(2000))")
    }

    /// With a state database of its own (prepared by `setup`), a source that goes away makes
    /// `/readyz` 503, naming the source, not `standby`: a standby waits for another instance's
    /// slot, and calling this one ready hid the outage. It is ready again once it streams.
    @Test func readinessFailsWhileTheSourceCannotBeStreamed() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let state = try LocalPostgres()
        try state.start()
        defer { try? state.stop() }
        var environment = setup.environment
        environment["CHANGERELAY_STATE_DATABASE_URL"] = state.url
        let prepared = try runChangeRelay(["setup"], environment: environment)
        #expect(prepared.status == 0 && prepared.stdout.contains("to the state database"), "\(prepared.stderr)")
        let run = try Background(["run"], environment: environment)
        let base = try AdminServerTests.adminURL(run)
        try RunPipelineTests.waitFor("readiness as active") { try Self.readiness(base).role == "active" }

        try setup.cluster.stop(keepingData: true)
        var down = Readiness(status: 0)
        try RunPipelineTests.waitFor("readiness to fail", timeout: .seconds(30)) {
            down = try Self.readiness(base)
            return down.status == 503
        }
        #expect(down.reason?.contains("the source cannot be streamed") == true, "\(down)")
        #expect(down.reason?.contains(String(setup.cluster.port)) == false, "\(down)")

        try setup.cluster.start()
        try RunPipelineTests.waitFor("readiness as active again", timeout: .seconds(60)) {
            try Self.readiness(base).role == "active"
        }
        try setup.cluster.connect().execute("INSERT INTO items VALUES (1, 'after')")
        try RunPipelineTests.waitFor("the change delivered") { RunPipelineTests.distinctKeys(setup.receiver).count == 1 }
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func readinessSaysWhyWhileTheStateDatabaseIsDownAndRecovers() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let base = try AdminServerTests.adminURL(run)
        try RunPipelineTests.waitFor("readiness as active") { try Self.readiness(base).role == "active" }
        try setup.db.execute("INSERT INTO items SELECT g, 'before' FROM generate_series(1, 10) g")
        try RunPipelineTests.waitFor("the first changes delivered") { RunPipelineTests.distinctKeys(setup.receiver).count == 10 }

        try setup.cluster.stop(keepingData: true)
        var down = Readiness(status: 0)
        // The source is down too: the first 503 may name the stream, the probe's next the state database.
        try RunPipelineTests.waitFor("readiness to fail naming the state database", timeout: .seconds(30)) {
            down = try Self.readiness(base)
            return down.status == 503 && down.reason?.contains("state database") == true
        }
        // /readyz is open: its reason names the failure, not where the database is or who connects.
        let reason = down.reason ?? ""
        #expect(!reason.contains("127.0.0.1") && !reason.contains(String(setup.cluster.port)) && !reason.contains("postgres"),
                "\(reason)")
        #expect(run.stderr.contains("not ready: the state database cannot be reached"), "\(run.stderr.suffix(2000))")
        #expect(try AdminServerTests.send(base + "/healthz").status == 200, "alive, though not ready")

        try setup.cluster.start()
        try RunPipelineTests.waitFor("readiness as active again", timeout: .seconds(60)) {
            try Self.readiness(base).role == "active"
        }
        let db = try setup.cluster.connect()
        try db.execute("INSERT INTO items SELECT g, 'after' FROM generate_series(11, 20) g")
        try RunPipelineTests.waitFor("the later changes delivered") { RunPipelineTests.distinctKeys(setup.receiver).count == 20 }
        try RunPipelineTests.expectPlannedOnce(db, changes: 20)
        #expect(run.stderr.contains("ready again: the state database answers"), "\(run.stderr.suffix(2000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// Before its first change a service has no checkpoint: the lag is measured from the slot's
    /// confirmed position, not from 0/0 (the absolute WAL position, which would page someone).
    /// And an admin address in use is an error naming admin.listen.
    @Test func aFreshServiceReportsTheLagFromItsSlotAndABusyAddressIsNamed() throws {
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        // WAL that holds nothing the publication carries: the absolute position grows past 32 MiB.
        try setup.db.execute("CREATE TABLE filler (v text); INSERT INTO filler SELECT repeat('x', 500) FROM generate_series(1, 80000)")
        let run = try Background(["run"], environment: setup.environment)
        let admin = try AdminServerTests.adminURL(run)
        try RunPipelineTests.waitFor("streaming") { run.stderr.contains("streaming") }
        var lag: Double?
        try RunPipelineTests.waitFor("a small lag on the idle stream") {
            let metrics = try AdminServerTests.send(admin + "/metrics").bodyText
            lag = metrics.split(separator: "\n").first { $0.hasPrefix("changerelay_replication_lag_bytes ") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
            return (lag ?? .infinity) < 1024 * 1024
        }
        let port = try #require(admin.split(separator: ":").last)
        var busy = setup.environment
        busy["CHANGERELAY_ADMIN_LISTEN"] = "127.0.0.1:\(port)"
        busy["CHANGERELAY_SOURCE_SLOT"] = "second"
        let second = try runChangeRelay(["run"], environment: busy, timeout: .seconds(60))
        #expect(second.status == 1)
        #expect(second.stderr.contains("admin.listen = \"127.0.0.1:\(port)\""), "\(second.stderr.suffix(1000))")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    @Test func offRunsTheServiceWithoutAnAdminServer() throws {
        let setup = try RunPipelineTests.prepare(extra: ["CHANGERELAY_ADMIN_LISTEN": "off"])
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        try RunPipelineTests.waitFor("streaming") { run.stderr.contains("streaming") }
        try setup.db.execute("INSERT INTO items SELECT g, 'v' FROM generate_series(1, 5) g")
        try RunPipelineTests.waitFor("5 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count == 5 }
        #expect(run.stderr.contains("admin.listen is off") && !run.stderr.contains("admin server listening"), "\(run.stderr)")
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }

    /// A real Prometheus server scrapes the running service and answers PromQL about its lag
    /// and its deliveries with the figures of the work done.
    @Test func aPrometheusServerScrapesTheService() throws {
        let prometheus = "/usr/bin/prometheus"
        try #require(FileManager.default.isExecutableFile(atPath: prometheus), "install Debian's prometheus (scripts/install-deps.sh)")
        let setup = try RunPipelineTests.prepare()
        defer { try? setup.cluster.stop(); setup.receiver.stop() }
        let run = try Background(["run"], environment: setup.environment)
        let admin = try AdminServerTests.adminURL(run)
        try RunPipelineTests.waitFor("streaming") { run.stderr.contains("streaming") }
        try setup.db.execute("INSERT INTO items SELECT g, 'v' FROM generate_series(1, 25) g")
        try RunPipelineTests.waitFor("25 deliveries") { RunPipelineTests.distinctKeys(setup.receiver).count == 25 }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = admin.replacingOccurrences(of: "http://", with: "")
        let config = directory.appendingPathComponent("prometheus.yml")
        try Data("""
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: changerelay
                static_configs:
                  - targets: ["\(target)"]
            """.utf8).write(to: config)
        let port = try LocalPostgres.freePort()
        let server = try ChildProcess(
            [prometheus, "--config.file=" + config.path, "--storage.tsdb.path=" + directory.appendingPathComponent("data").path,
             "--web.listen-address=127.0.0.1:\(port)"],
            environment: ProcessInfo.processInfo.environment,
            outputPath: directory.appendingPathComponent("out").path, errorPath: directory.appendingPathComponent("err").path)
        defer {
            server.signal(SIGTERM)
            server.wait()
        }
        let api = "http://127.0.0.1:\(port)/api/v1/query?query="
        func value(_ query: String) throws -> Double? {
            let escaped = try #require(query.addingPercentEncoding(withAllowedCharacters: .alphanumerics))
            let answer = try AdminServerTests.send(api + escaped)
            guard answer.status == 200,
                  let body = try AdminServerTests.json(answer) as? [String: Any],
                  let data = body["data"] as? [String: Any], let result = data["result"] as? [[String: Any]],
                  let sample = result.first?["value"] as? [Any], let text = sample.last as? String else { return nil }
            return Double(text)
        }
        var delivered: Double?
        try RunPipelineTests.waitFor("Prometheus to scrape the service", timeout: .seconds(60)) {
            delivered = try value(#"sum(changerelay_deliveries_total{outcome="succeeded"})"#)
            return delivered != nil
        }
        #expect(delivered == 25)
        #expect(try value(#"changerelay_changes_total{table="items",op="insert"}"#) == 25)
        let lag = try #require(try value("changerelay_replication_lag_bytes"))
        #expect(lag >= 0 && lag < 16 * 1024 * 1024, "lag \(lag)")
        #expect(try value(#"up{job="changerelay"}"#) == 1)
        run.child.signal(SIGTERM)
        #expect(run.waitForExit() == 0, "\(run.stderr.suffix(2000))")
    }
}
