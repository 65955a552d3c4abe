import Core
import Decoding
import Handlers
import Logging
import PlannedEffects
import Synchronization
import Testing

private let userA = "00000000-0000-0000-0000-00000000000a"
private let userB = "00000000-0000-0000-0000-00000000000b"
private let job = "10000000-0000-0000-0000-000000000001"

private func row(_ pairs: KeyValuePairs<String, String?>, typeOIDs: [String: UInt32] = [:]) -> Row {
    Row(columns: pairs.map { Column(name: $0.key, typeOID: typeOIDs[$0.key] ?? 25, isKey: true) },
        values: pairs.map { $0.value.map { .text(ArraySlice($0.utf8)) } ?? .null })
}

private func jobRow(status: String, user: String? = userA) -> Row {
    row(["id": job, "user_id": user, "title": "Fix the sink", "status": status], typeOIDs: ["id": 2950, "user_id": 2950])
}

private func jobUpdate(from old: String, to new: String, user: String? = userA) -> Change {
    Change(lsn: LSN(0x100), schema: "public", table: "jobs", operation: .update,
           new: jobRow(status: new, user: user), old: jobRow(status: old, user: user))
}

private func workflow(_ id: String, user: String = userA, active: String = "t", status: String = "active",
                      config: String? = #"{"conditions":[{"field":"status","value":"completed"}]}"#) -> Change {
    Change(lsn: LSN(0x80), schema: "public", table: "automation_workflows", operation: .insert,
           new: row(["id": id, "user_id": user, "name": "w", "trigger_type": "job_status_changed",
                     "trigger_config": config, "is_active": active, "status": status]), old: nil)
}

private func completion(workflow: String, status: String, completedAt: String? = nil) -> Change {
    Change(lsn: LSN(0x90), schema: "public", table: "automation_execution_logs", operation: .insert,
           new: row(["id": "e", "workflow_id": workflow, "status": "completed",
                     "trigger_data": #"{"job_id":"\#(job)","new_status":"\#(status)"}"#, "completed_at": completedAt]), old: nil)
}

private func transaction(_ changes: [Change], lsn: UInt64 = 0x1000, seconds: Int64 = 0) -> Transaction {
    Transaction(xid: 1, commitLSN: LSN(lsn), endLSN: LSN(lsn + 8),
                commitTime: PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000 + seconds * 1_000_000),
                changes: changes)
}

private func makeHandler(window: Duration = .seconds(3600)) -> AutomationHandler {
    AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", maxAttempts: 5),
                      cache: AutomationCache(rateLimitWindow: window), logger: Logger(label: "test"))
}

/// Plans every change of the transaction through one handler, as the router does.
private func plan(_ handler: AutomationHandler, _ transaction: Transaction) throws -> Effects {
    var all = Effects()
    try transaction.changes.forEach { index, change in
        let effects = try handler.plan(change, at: index, in: transaction)
        all.rows += effects.rows
        all.deliveries += effects.deliveries
    }
    return all
}

@Suite struct AutomationHandlerTests {
    @Test func onlyTheMatchingWorkflowFires() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([
            workflow("w1"), workflow("w2", user: userB), workflow("w3", active: "f"), workflow("w4", status: "paused"),
            workflow("w5", config: #"{"conditions":[{"field":"status","value":"cancelled"}]}"#),
        ]))
        let effects = try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")], lsn: 0x2000))
        #expect(effects.deliveries.count == 1 && effects.rows.count == 1)
        let delivery = try #require(effects.deliveries.first)
        let executionID = StableID.forChange("automations", commitLSN: LSN(0x2000), index: 0, purpose: "execution:w1")
        #expect(delivery.url == "http://127.0.0.1:9/functions/v1/automation-executor")
        #expect(delivery.auth == "service_key")
        #expect(delivery.body == #"{"workflowId":"w1","executionId":"\#(executionID)","context":{"job_id":"\#(job)","jobId":"\#(job)","userId":"\#(userA)","triggerType":"job_status_changed","new_status":"completed","old_status":"pending"}}"#)
        #expect(delivery.report == .automationExecution(id: executionID))
        #expect(delivery.retryPolicy == .exponential(base: .seconds(1), cap: .seconds(60), maxAttempts: 5, jitter: .full))
        #expect(delivery.orderingKey == "public.jobs:" + job)
        let log = try #require(effects.rows.first)
        #expect(log.table == TableName(schema: "public", name: "automation_execution_logs"))
        #expect(log.columns == ["id", "workflow_id", "trigger_type", "status", "trigger_data", "error_message"])
        #expect(Array(log.values.prefix(4)) == [executionID, "w1", "job_status_changed", "processing"])
        let data = try JSONParser.parse(try #require(log.values[4]))
        #expect(data["job_id"] == .string(job) && data["userId"] == .string(userA))
        #expect(data["new_status"] == .string("completed") && data["old_status"] == .string("pending"))
        #expect(data["job"]?["title"] == .string("Fix the sink") && data["job"]?["status"] == .string("completed"))
    }

    @Test func theSameStatusWrittenAgainFiresNothing() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        #expect(try plan(handler, transaction([jobUpdate(from: "completed", to: "completed")])) == .none)
    }

    @Test func aWorkflowFiresForJobChangesAfterItInCommitOrder() throws {
        let handler = makeHandler()
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")])) == .none)
        let effects = try plan(handler, transaction([workflow("w1"), jobUpdate(from: "pending", to: "completed")]))
        #expect(effects.deliveries.count == 1)
        let paused = Change(lsn: LSN(0x80), schema: "public", table: "automation_workflows", operation: .delete,
                            new: nil, old: workflow("w1").new)
        #expect(try plan(handler, transaction([paused, jobUpdate(from: "pending", to: "completed")])).deliveries.isEmpty)
    }

    @Test func aRecentCompletionMakesTheExecutionSkipped() throws {
        let handler = makeHandler(window: .seconds(3600))
        _ = try plan(handler, transaction([workflow("w1"), completion(workflow: "w1", status: "completed")], seconds: 0))
        let limited = try plan(handler, transaction([jobUpdate(from: "open", to: "completed")], seconds: 3599))
        #expect(limited.deliveries.isEmpty)
        #expect(limited.rows.first?.values[3] == "skipped")
        #expect(limited.rows.first?.values[5]?.hasPrefix("rate limited") == true)
        // Another status, or the same one after the window, is not limited.
        #expect(try plan(handler, transaction([jobUpdate(from: "open", to: "cancelled")], seconds: 3599)) == .none)
        #expect(try plan(handler, transaction([jobUpdate(from: "open", to: "completed")], seconds: 3600)).deliveries.count == 1)
    }

    @Test(arguments: [
        ("[1]", "not a JSON object"), (#"{"conditions":{"field":"status"}}"#, "not an array"),
        (#"{"other":1}"#, "no \"conditions\""), ("{", "not valid JSON"),
    ])
    func aMalformedWorkflowNeverFires(config: String, reason: String) throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("bad", config: config), workflow("good")]))
        let effects = try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")]))
        #expect(effects.deliveries.map(\.body).allSatisfy { $0.contains(#""workflowId":"good""#) })
        #expect(effects.deliveries.count == 1)
        let parsed = Workflow(id: "bad", userID: userA, triggerType: "job_status_changed", isActive: "t", status: "active",
                              triggerConfig: config)
        guard case .failure(let problem) = parsed.conditions else {
            Issue.record("\(config) was accepted")
            return
        }
        #expect(problem.reason.contains(reason))
    }

    @Test func aJobWithoutAUserIsSkipped() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed", user: nil)])) == .none)
    }

    @Test func anUpdateWithoutTheOldRowIsRefusedNamingReplicaIdentity() throws {
        let handler = makeHandler()
        let change = Change(lsn: LSN(0x100), schema: "public", table: "jobs", operation: .update,
                            new: jobRow(status: "completed"), old: nil)
        #expect {
            try plan(handler, transaction([change]))
        } throws: { error in
            (error as? HandlerError)?.reason.contains("REPLICA IDENTITY FULL") == true
                && (error as? HandlerError)?.reason.contains("run once with automations.enabled = false") == true
        }
    }

    @Test func oneChangeFiringSeveralWorkflowsGetsOneKeyEach() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w2"), workflow("w1")]))
        let effects = try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")]))
        #expect(effects.deliveries.map(\.target) == ["automation-executor:w1", "automation-executor:w2"])
        #expect(Set(effects.rows.map { $0.values[0] }).count == 2)
    }

    /// A batch the planner throws away is read again: what it taught the cache is undone,
    /// so the replanned job change fires exactly as it would have the first time.
    @Test func aDiscardedBatchIsForgottenAndACommittedOneKept() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        handler.batchEnded(committed: true)
        let delete = Change(lsn: LSN(0x80), schema: "public", table: "automation_workflows", operation: .delete,
                            new: nil, old: workflow("w1").new)
        let job = jobUpdate(from: "pending", to: "completed")
        #expect(try plan(handler, transaction([job, delete, workflow("w2")])).deliveries.count == 1)
        handler.batchEnded(committed: false)
        let replanned = try plan(handler, transaction([job, delete, workflow("w2")]))
        #expect(replanned.deliveries.map(\.target) == ["automation-executor:w1"])
        handler.batchEnded(committed: true)
        #expect(try plan(handler, transaction([job])).deliveries.map(\.target) == ["automation-executor:w2"])
    }

    /// What the cache learns is logged with the checkpoint, so a restart rebuilds it as of then.
    @Test func everyWorkflowChangeIsLoggedAtItsPosition() throws {
        let handler = makeHandler()
        let upserted = try plan(handler, transaction([workflow("w1")]))
        let row = try #require(upserted.rows.first)
        #expect(upserted.rows.count == 1 && upserted.deliveries.isEmpty)
        #expect(row.table == AutomationHandler.workflowLog)
        let fields = Dictionary(uniqueKeysWithValues: zip(row.columns, row.values))
        #expect(fields["operation"] == "upsert" && fields["workflow_id"] == "w1" && fields["change_index"] == "0")
        #expect(fields["commit_lsn"] != nil && fields["config_unchanged"] == "f")
        #expect(fields["trigger_config"]??.contains("conditions") == true)

        let removed = Change(lsn: LSN(0x80), schema: "public", table: "automation_workflows", operation: .delete,
                             new: nil, old: workflow("w1").new)
        let truncate = Change(lsn: LSN(0x90), schema: "public", table: "automation_workflows", operation: .truncate)
        let later = try plan(handler, transaction([removed, truncate]))
        #expect(later.rows.map { Dictionary(uniqueKeysWithValues: zip($0.columns, $0.values))["operation"] }
            == ["delete", "truncate"])
        #expect(later.rows.map { Dictionary(uniqueKeysWithValues: zip($0.columns, $0.values))["change_index"] } == ["0", "1"])
    }

    @Test func aTruncateEmptiesTheCacheAndAnUndoRestoresIt() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        handler.batchEnded(committed: true)
        let truncate = Change(lsn: LSN(0x90), schema: "public", table: "automation_workflows", operation: .truncate,
                              new: nil, old: nil)
        #expect(try plan(handler, transaction([truncate, jobUpdate(from: "pending", to: "completed")])).deliveries.isEmpty)
        handler.batchEnded(committed: false)
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")])).deliveries.count == 1)
    }

    /// Each completion the stream brings is appended to the completion log with its commit
    /// position and the time it counts from, for a restart to load exactly the completions
    /// committed up to the checkpoint; with a separate state database there is no log.
    @Test func aCompletionIsLoggedWithItsCommitPosition() throws {
        let handler = makeHandler()
        let effects = try plan(handler, transaction([completion(workflow: "w1", status: "completed",
                                                                 completedAt: "2025-05-07 10:00:00+00")],
                                                    lsn: 0x2000, seconds: 0))
        let row = try #require(effects.rows.first)
        #expect(effects.rows.count == 1 && effects.deliveries.isEmpty)
        #expect(row.table == AutomationHandler.completionLog)
        let fields = Dictionary(uniqueKeysWithValues: zip(row.columns, row.values))
        #expect(fields["commit_lsn"] == "0/2000" && fields["job_id"] == job && fields["workflow_id"] == "w1")
        #expect(fields["new_status"] == "completed" && fields["completed_at"] == "2025-05-07 10:00:00+00")

        var failed = completion(workflow: "w1", status: "completed")
        failed.new?.values[2] = .text(ArraySlice("failed".utf8))
        #expect(try plan(handler, transaction([failed])) == .none)
        let separate = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", logsCompletions: false),
                                         cache: AutomationCache(rateLimitWindow: .seconds(3600)), logger: Logger(label: "test"))
        #expect(try plan(separate, transaction([completion(workflow: "w1", status: "completed")])) == .none)
    }

    /// A log without a baseline gets one with the first change planned (here a completion),
    /// at its commit time, and only once; a batch thrown away to be read again plans it again.
    @Test func theFirstCompletionLoggedBringsTheBaseline() throws {
        let cache = AutomationCache(rateLimitWindow: .seconds(3600))
        cache.completionLogNeedsBaseline()
        let handler = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1"), cache: cache, logger: Logger(label: "test"))
        func logged() throws -> [[String: String?]] {
            try plan(handler, transaction([completion(workflow: "w1", status: "completed")], lsn: 0x3000, seconds: 7)).rows.map {
                Dictionary(uniqueKeysWithValues: zip($0.columns, $0.values))
            }
        }
        let first = try logged()
        #expect(first.count == 2)
        #expect(first.first?["job_id"] == .some(nil) && first.first?["commit_lsn"] == "0/3000")
        #expect(first.first?["completed_at"] == .some(PostgresTimestamp(microsecondsSince2000: 800_000_007_000_000).postgresText))
        handler.batchEnded(committed: false)
        #expect(try logged().count == 2, "read again, the batch plans the baseline again")
        handler.batchEnded(committed: true)
        #expect(try logged().count == 1)
    }

    /// A completion committed after the job change cannot limit it.
    @Test func aLaterCompletionDoesNotLimitAnEarlierChange() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1"), completion(workflow: "w1", status: "completed")], seconds: 100))
        #expect(try plan(handler, transaction([jobUpdate(from: "open", to: "completed")], seconds: 50)).deliveries.count == 1)
    }

    /// An UPDATE that leaves a TOASTed trigger_config alone sends it as unchanged.
    @Test func anUnchangedTriggerConfigKeepsTheKnownConditions() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        var renamed = try #require(workflow("w1").new)
        let configIndex = try #require(renamed.columns.firstIndex { $0.name == "trigger_config" })
        renamed.values[configIndex] = .unchangedToast
        let update = Change(lsn: LSN(0x90), schema: "public", table: "automation_workflows", operation: .update,
                            new: renamed, old: nil)
        let logged = try #require(try plan(handler, transaction([update])).rows.first)
        let fields = Dictionary(uniqueKeysWithValues: zip(logged.columns, logged.values))
        #expect(fields["config_unchanged"] == "t" && fields["trigger_config"] == .some(nil), "the log keeps the last config too")
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")])).deliveries.count == 1)
    }

    /// A completion counts from its `completed_at`, as a restart's loader and the database
    /// look-up read it: one that completed two hours before its row reached the stream does
    /// not limit a run an hour later. One stamped after its commit counts from the commit.
    @Test func aCompletionCountsFromItsCompletedAtNeverAfterItsCommit() throws {
        func at(_ seconds: Int64) -> String { PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000 + seconds * 1_000_000).postgresText }
        let handler = makeHandler(window: .seconds(3600))
        _ = try plan(handler, transaction([workflow("w1"), completion(workflow: "w1", status: "completed", completedAt: at(-7200))],
                                          seconds: 0))
        #expect(try plan(handler, transaction([jobUpdate(from: "open", to: "completed")], seconds: 10)).deliveries.count == 1)

        let later = makeHandler(window: .seconds(3600))
        _ = try plan(later, transaction([workflow("w1"), completion(workflow: "w1", status: "completed", completedAt: at(5000))],
                                        seconds: 0))
        let limited = try plan(later, transaction([jobUpdate(from: "open", to: "completed")], seconds: 3599))
        #expect(limited.deliveries.isEmpty, "counted from the commit, within the window")
    }

    /// The loader reads the completions of the last window back from its start; a change read
    /// again after a restart may look further back, and asks the database for that key.
    @Test func aLookUpReachingBeforeWhatWasLoadedAsksTheDatabase() throws {
        func at(_ seconds: Int64) -> PostgresTimestamp { PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000 + seconds * 1_000_000) }
        let key = AutomationCache.CompletionKey(jobID: job, workflowID: "w1", status: "done")
        let asked = AskedKeys()
        let stored = at(100)
        let cache = AutomationCache(rateLimitWindow: .seconds(3600), bound: .init(capacity: 64) { key, time in
            asked.keys.withLock { $0.append(key) }
            return stored <= time ? stored : nil
        })
        cache.completionsLoaded(since: at(4000))
        cache.recordCompletion(key, at: at(4500))
        cache.batchEnded(committed: true)
        #expect(try cache.recentCompletion(key, before: at(200)) == at(100), "replayed from before the restart")
        #expect(asked.keys.withLock { $0.count } == 1)
        #expect(try cache.recentCompletion(key, before: at(7700)) == at(4500), "within what was loaded: memory answers")
        #expect(asked.keys.withLock { $0.count } == 1)
        // Memory holds the key's latest completion only: a change before it asks the database
        // (the answer at 4 500 is in the window of 8 000, and only the database still has it).
        cache.recordCompletion(key, at: at(9000))
        cache.batchEnded(committed: true)
        _ = try cache.recentCompletion(key, before: at(8000))
        #expect(asked.keys.withLock { $0.count } == 2, "a later completion in memory hides earlier ones")
    }

    /// A workflow whose id changes while its large trigger_config is left alone keeps its
    /// conditions under the new id, and its log row holds them, so a restart rebuilds it.
    @Test func aWorkflowWhoseIdChangesKeepsItsUnchangedConfig() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1")]))
        var moved = try #require(workflow("w2").new)
        let configIndex = try #require(moved.columns.firstIndex { $0.name == "trigger_config" })
        moved.values[configIndex] = .unchangedToast
        let update = Change(lsn: LSN(0x90), schema: "public", table: "automation_workflows", operation: .update,
                            new: moved, old: workflow("w1").new)
        let logged = try plan(handler, transaction([update])).rows
        let fields = logged.map { Dictionary(uniqueKeysWithValues: zip($0.columns, $0.values)) }
        #expect(fields.map { $0["operation"] } == ["delete", "upsert"])
        #expect(fields.last?["config_unchanged"] == "f")
        let config = try #require(fields.last?["trigger_config"] ?? nil)
        let rebuilt = Workflow(id: "w2", userID: userA, triggerType: "job_status_changed", isActive: "t", status: "active",
                               triggerConfig: config)
        #expect(rebuilt.fires(forStatus: "completed"))
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")])).deliveries.map(\.target)
            == ["automation-executor:w2"])
    }

    /// jsonb compares strings by their bytes: a condition on `café` (precomposed) does not
    /// match a job status `café` spelled with a combining accent, and a job moving between
    /// the two spellings changed its status.
    @Test func canonicallyEquivalentSpellingsAreDifferentStatuses() throws {
        let composed = "caf\u{E9}", decomposed = "cafe\u{301}"
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1", config: #"{"conditions":[{"field":"status","value":"\#(composed)"}]}"#)]))
        #expect(try plan(handler, transaction([jobUpdate(from: "open", to: decomposed)])).deliveries.isEmpty)
        #expect(try plan(handler, transaction([jobUpdate(from: decomposed, to: composed)])).deliveries.count == 1)
    }

    /// A `json` column may repeat a key; Postgres reads the last (`->`, a cast to jsonb),
    /// and so does the handler.
    @Test func aRepeatedConditionsKeyMeansItsLastValue() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1", config: #"{"conditions":[{"field":"status","value":"first"}],"conditions":[{"field":"status","value":"last"}]}"#)]))
        #expect(try plan(handler, transaction([jobUpdate(from: "new", to: "first")])).deliveries.isEmpty)
        #expect(try plan(handler, transaction([jobUpdate(from: "first", to: "last")])).deliveries.count == 1)
    }

    /// Only `conditions` is read: a value nested past the parser's bound elsewhere in the
    /// config does not make the workflow unusable (Postgres' `@>` matches it).
    @Test func aDeepValueBesideTheConditionsDoesNotStopAWorkflow() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1", config: #"{"conditions":[{"field":"status","value":"completed"}],"deep":\#(deep)}"#)]))
        #expect(try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")])).deliveries.count == 1)
    }

    /// A change no handler can plan stops the stream with an error naming where it stopped.
    @Test func aHandlerErrorNamesTheTransactionsCommitLSN() throws {
        let router = Router([makeHandler()])
        let change = Change(lsn: LSN(0x100), schema: "public", table: "jobs", operation: .update,
                            new: jobRow(status: "completed"), old: nil)
        #expect {
            try router.plan(transaction([change], lsn: 0x2A000)) { _ in }
        } throws: { error in
            guard let error = error as? HandlerError else { return false }
            return error.commitLSN == LSN(0x2A000) && error.description.contains("committed at 0/2A000")
        }
    }

    /// Past its capacity the cache keeps only a filter of the oldest keys and asks the
    /// database about them: every answer is the one an unbounded cache gives, and the
    /// database is asked about every evicted key it is asked about again.
    @Test func aBoundedCacheAnswersEvictedCompletionsFromTheDatabase() throws {
        func at(_ seconds: Int64) -> PostgresTimestamp { PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000 + seconds * 1_000_000) }
        func key(_ n: Int) -> AutomationCache.CompletionKey { .init(jobID: "job-\(n)", workflowID: "w1", status: "done") }
        let recorded = (0..<40).map { (key($0), at(Int64($0))) }
        let asked = AskedKeys()
        let database = Dictionary(uniqueKeysWithValues: recorded)
        let window = Duration.seconds(3600)
        let bounded = AutomationCache(rateLimitWindow: window, bound: .init(capacity: 8) { key, time in
            asked.keys.withLock { $0.append(key) }
            return database[key].flatMap { $0 <= time && time.microseconds - $0.microseconds < window.wholeMicroseconds ? $0 : nil }
        })
        let unbounded = AutomationCache(rateLimitWindow: window)
        for cache in [bounded, unbounded] {
            for (key, time) in recorded {
                cache.recordCompletion(key, at: time)
                cache.batchEnded(committed: true)
            }
        }
        for n in 0..<42 {
            for time in [at(39), at(3620)] {
                #expect(try bounded.recentCompletion(key(n), before: time) == unbounded.recentCompletion(key(n), before: time))
            }
        }
        let evicted = Set(asked.keys.withLock { $0 }.filter { database[$0] != nil })
        #expect(evicted.count >= 40 - 8 && !evicted.contains(key(39)), "only the oldest left memory")
    }

    /// A look-up that fails stops planning with the reason: guessing either way would fire
    /// a run the rate limit forbids, or skip one it allows.
    @Test func aFailedLookUpOfAnEvictedCompletionIsAHandlerError() throws {
        struct Unreachable: Error {}
        let cache = AutomationCache(rateLimitWindow: .seconds(3600), bound: .init(capacity: 2) { _, _ in throw Unreachable() })
        let handler = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", maxAttempts: 5), cache: cache,
                                        logger: Logger(label: "test"))
        _ = try plan(handler, transaction([workflow("w1")]))
        for (seconds, status) in [(0, "completed"), (1, "open"), (2, "archived")] as [(Int64, String)] {
            _ = try plan(handler, transaction([completion(workflow: "w1", status: status)], seconds: seconds))
            handler.batchEnded(committed: true)
        }
        #expect {
            try plan(handler, transaction([jobUpdate(from: "open", to: "completed")], seconds: 10))
        } throws: { error in
            (error as? HandlerError)?.reason.contains("could not look up an evicted completion") == true
        }
    }
}

/// What a bounded cache asked its database about.
private final class AskedKeys: Sendable {
    let keys = Mutex<[AutomationCache.CompletionKey]>([])

    /// A jobs table whose status column was renamed: no workflow can fire on it, and one
    /// warning says which column is gone (it read as "status unchanged", silently).
    @Test func aRenamedStatusColumnFiresNothingAndIsSaidOnce() throws {
        let logs = CapturedLogs()
        let handler = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", maxAttempts: 5),
                                        cache: AutomationCache(rateLimitWindow: .seconds(3600)), logger: logs.logger)
        _ = try plan(handler, transaction([workflow("w1")], lsn: 0x10))
        func renamed(_ state: String) -> Row {
            row(["id": job, "user_id": userA, "title": "Fix the sink", "state": state], typeOIDs: ["id": 2950, "user_id": 2950])
        }
        let update = Change(lsn: LSN(0x100), schema: "public", table: "jobs", operation: .update,
                            new: renamed("completed"), old: renamed("open"))
        #expect(try plan(handler, transaction([update, update])).deliveries.isEmpty)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1 && warnings.first?.metadata["missing"] == "status", "\(warnings.map(\.metadata))")
    }

    /// `is_active` is read as Postgres reads a boolean's text: a column retyped to text holds
    /// `true`, which counted as inactive; a value that is no boolean is inactive.
    @Test(arguments: [("t", true), ("true", true), ("YES", true), ("on", true), ("f", false), ("false", false), ("maybe", false)])
    func isActiveIsReadAsABoolean(active: String, fires: Bool) throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([workflow("w1", active: active)]))
        let effects = try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")], lsn: 0x2000))
        #expect(effects.deliveries.count == (fires ? 1 : 0))
    }

    /// A workflow column renamed or dropped is said once and the change passed over: read
    /// as NULL, the workflow stopped firing without a word. The workflow stays as last read.
    @Test(arguments: ["id", "user_id", "trigger_type", "is_active", "status", "trigger_config"])
    func aWorkflowChangeLackingAColumnIsSaidAndPassedOver(column: String) throws {
        let logs = CapturedLogs()
        let handler = AutomationHandler(.init(baseURL: "http://127.0.0.1:9/functions/v1", maxAttempts: 5),
                                        cache: AutomationCache(rateLimitWindow: .seconds(3600)), logger: logs.logger)
        _ = try plan(handler, transaction([workflow("w1")]))
        var renamed = workflow("w1", active: "f")
        renamed.operation = .update
        let kept = renamed.new!.columns.indices.filter { renamed.new!.columns[$0].name != column }
        renamed.new = Row(columns: kept.map { renamed.new!.columns[$0] }, values: kept.map { renamed.new!.values[$0] })
        let followed = try plan(handler, transaction([renamed, renamed], lsn: 0x1800))
        #expect(followed.rows.isEmpty, "nothing logged for a change that was passed over")
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1 && warnings.first?.metadata["missing"] == .string(column), "\(warnings)")
        let effects = try plan(handler, transaction([jobUpdate(from: "pending", to: "completed")], lsn: 0x2000))
        #expect(effects.deliveries.count == 1, "the workflow as last read still fires")
    }
}
