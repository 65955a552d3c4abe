import Core
import Decoding
import Handlers
import Logging
import MetricsTestKit
import PlannedEffects
import Testing

private let columnNames = ["id", "child_name", "week_start_date", "week_period", "habits", "user_id"]
/// As the seed's table: id bigint, habits jsonb, the rest text.
private let columns = columnNames.map { Column(name: $0, typeOID: $0 == "id" ? 20 : $0 == "habits" ? 3802 : 25, isKey: true) }
private let user = "00000000-0000-0000-0000-000000000001"
private let habits = #"[{"name": "Read", "times": ["done", "", null, "", "", "", "missed"]}]"#

private enum Value {
    case text(String)
    case null
    case unchanged
}

private func row(_ values: [Value]) -> Row {
    Row(columns: columns, values: values.map { value in
        switch value {
        case .text(let text): .text(ArraySlice(text.utf8))
        case .null: .null
        case .unchanged: .unchangedToast
        }
    })
}

private func tracker(id: String = "7", child: String = "Ada", habits: Value = .text(habits)) -> [Value] {
    [.text(id), .text(child), .text("2026-11-23"), .text("week"), habits, .text(user)]
}

private func change(_ operation: Change.Operation, new: [Value]?, old: [Value]? = nil) -> Change {
    Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: operation,
           new: new.map(row), old: old.map(row))
}

private let transaction = Transaction(xid: 1, commitLSN: LSN(0x20), endLSN: LSN(0x28),
                                      commitTime: PostgresTimestamp(microsecondsSince2000: 0), changes: [])

private func staged(_ effects: Effects) -> [[String: String?]] {
    effects.rows.map { row in
        #expect(row.table == DualWriteHandler.stagingTable)
        return Dictionary(uniqueKeysWithValues: zip(row.columns, row.values))
    }
}

@Suite struct DualWriteHandlerTests {
    let logger = Logger(label: "test")

    @Test func anInsertIsStagedWithItsProjectionRequestAndKey() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let rows = staged(try handler.plan(change(.insert, new: tracker()), at: 3, in: transaction))
        #expect(rows.count == 1)
        let stagedRow = try #require(rows.first)
        #expect(stagedRow["habit_tracker_id"] == "7" && stagedRow["operation"] == "INSERT" && stagedRow["mode"] == "apply")
        #expect(stagedRow["idempotency_key"] == "dual_write:0/20:3" && stagedRow["source_lsn"] == "0/20")
        #expect(stagedRow["problem"] == .some(nil))
        let projection = try JSONParser.parse(try #require(stagedRow["projection"] ?? nil))
        #expect(projection["child_name"] == .string("Ada") && projection["user_id"] == .string(user))
        #expect(projection["habits"] == .array([.object([
            ("name", .string("Read")), ("time_period", .null),
            ("records", .array([
                .object([("date", .string("2026-11-23")), ("status", .string("done"))]),
                .object([("date", .string("2026-11-29")), ("status", .string("missed"))]),
            ])),
        ])]))
        let request = try JSONParser.parse(try #require(stagedRow["request_data"] ?? nil))
        #expect(request["habit_tracker_id"] == .number("7") && request["operation"] == .string("INSERT"))
        guard case .array(let requestHabits)? = request["habits"] else { Issue.record("no habits in the request"); return }
        #expect(requestHabits.first?["name"] == .string("Read"))
    }

    @Test func aDeleteNeedsNoProjectionAndANewPrimaryKeyMovesTheRow() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let deleted = staged(try handler.plan(change(.delete, new: nil, old: tracker()), at: 0, in: transaction))
        #expect(deleted.count == 1 && deleted[0]["operation"] == "DELETE" && deleted[0]["projection"] == .some(nil))
        let moved = staged(try handler.plan(change(.update, new: tracker(id: "8"), old: tracker(id: "7")), at: 1, in: transaction))
        #expect(moved.map { $0["operation"] } == ["DELETE", "UPDATE"])
        #expect(moved.map { $0["habit_tracker_id"] } == ["7", "8"])
        #expect(moved.map { $0["idempotency_key"] } == ["dual_write:0/20:1:old", "dual_write:0/20:1"])
    }

    @Test func unchangedHabitsAreTakenFromTheOldRowAndRefusedWithoutOne() throws {
        let handler = DualWriteHandler(mode: .shadow, logger: logger)
        let update = change(.update, new: tracker(child: "Bea", habits: .unchanged), old: tracker())
        let rows = staged(try handler.plan(update, at: 0, in: transaction))
        let projection = try JSONParser.parse(try #require(rows[0]["projection"] ?? nil))
        guard case .array(let projected)? = projection["habits"] else { Issue.record("no habits projected"); return }
        #expect(projection["child_name"] == .string("Bea") && projected.first?["name"] == .string("Read"))
        #expect(throws: HandlerError.self) {
            try handler.plan(change(.update, new: tracker(habits: .unchanged), old: nil), at: 0, in: transaction)
        }
    }

    @Test func aRowThatCannotBeProjectedIsStagedWithItsProblem() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let rows = staged(try handler.plan(change(.insert, new: tracker(habits: .text(#"{"a": 1}"#))), at: 0, in: transaction))
        #expect(rows[0]["projection"] == .some(nil) && rows[0]["problem"] == "habits is not a JSON array")
        let noUser = staged(try handler.plan(change(.insert, new: [.text("9"), .text("Ada"), .text("2026-11-23"), .null,
                                                                   .null, .null]), at: 0, in: transaction))
        #expect(noUser[0]["problem"] == "user_id is NULL")
    }

    /// A column renamed or dropped since is absent from the row, not NULL: projecting it as
    /// NULL would write an empty week over the real one.
    @Test(arguments: columnNames.filter { $0 != "id" })
    func aRowMissingAProjectedColumnIsStagedWithItsProblem(missing: String) throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let kept = columnNames.indices.filter { columnNames[$0] != missing }
        let full = row(tracker())
        let partial = Row(columns: kept.map { full.columns[$0] }, values: kept.map { full.values[$0] })
        let update = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .update, new: partial, old: partial)
        let stagedRow = try #require(staged(try handler.plan(update, at: 0, in: transaction)).first)
        #expect(stagedRow["problem"] == .some("habit_tracker has no column \(missing) (renamed or dropped): the row cannot be projected"))
        #expect(stagedRow["projection"] == .some(nil))
    }

    /// A habits column changed to text may hold anything: the request stays valid JSON (the
    /// staging column is jsonb), with the text as a string, and the row is invalid.
    @Test func habitsThatAreNotJSONAreKeptAsAStringInTheRequest() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let stagedRow = try #require(staged(try handler.plan(change(.insert, new: tracker(habits: .text("not json {"))),
                                                             at: 0, in: transaction)).first)
        let request = try JSONParser.parse(try #require(stagedRow["request_data"] ?? nil))
        #expect(request["habits"] == .string("not json {"))
        #expect((stagedRow["problem"] ?? nil)?.contains("habits is not valid JSON") == true)
    }

    /// A habits column changed to json or text may spell what jsonb and text refuse: the
    /// request keeps it storable and the row is invalid (the one-shot copy's `habits::jsonb`
    /// fails on it too), rather than the batch failing on every read.
    @Test func habitsJSONBRefusesAreKeptStorableAndTheRowInvalid() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let nul = #"[{"name": "Re\u0000ad", "times": null}]"#
        let stagedRow = try #require(staged(try handler.plan(change(.insert, new: tracker(habits: .text(nul))),
                                                             at: 0, in: transaction)).first)
        #expect((stagedRow["request_data"] ?? nil)?.contains(#""name":"Re\ufffdad""#) == true, "\(stagedRow)")
        #expect(stagedRow["problem"] == .some("habits[0].name holds U+0000, which text cannot hold"))
        let huge = #"[{"name": "Read", "score": 1e1000000, "times": null}]"#
        let hugeRow = try #require(staged(try handler.plan(change(.insert, new: tracker(habits: .text(huge))),
                                                           at: 0, in: transaction)).first)
        #expect((hugeRow["request_data"] ?? nil)?.contains(#""score":"1e1000000""#) == true, "\(hugeRow)")
        #expect(hugeRow["problem"] == .some(nil))
    }

    /// Under REPLICA IDENTITY DEFAULT a new id brings the old key alone: habits left in TOAST
    /// cannot be read from it, and reading them as NULL would write an empty week.
    @Test func unchangedHabitsWithAKeyOnlyOldRowAreRefused() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let keyOnly = Row(columns: [columns[0]], values: [.text(ArraySlice("7".utf8))])
        let update = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .update,
                            new: row(tracker(id: "8", habits: .unchanged)), old: keyOnly)
        #expect {
            try handler.plan(update, at: 0, in: transaction)
        } throws: { error in
            (error as? HandlerError)?.reason == "habits was left out as unchanged TOAST and the old row does not carry it: "
                + "habit_tracker needs REPLICA IDENTITY FULL"
        }
    }

    /// Under USING INDEX on another index an UPDATE brings no old row unless the index's
    /// columns changed, so a new id would go unseen: the sync stops, naming the identity,
    /// rather than leave the old week beside the new one. Log mode projects nothing and goes on.
    @Test func anUpdateWhoseIdentityLacksTheIdIsRefused() throws {
        let indexKeyed = Row(columns: columnNames.map { Column(name: $0, typeOID: $0 == "id" ? 20 : 25, isKey: $0 == "user_id") },
                             values: row(tracker(id: "8")).values)
        let update = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .update, new: indexKeyed, old: nil)
        #expect {
            try DualWriteHandler(mode: .apply, logger: logger).plan(update, at: 0, in: transaction)
        } throws: { error in
            (error as? HandlerError)?.reason.contains("replica identity does not hold the id") == true
        }
        #expect(try DualWriteHandler(mode: .log, logger: logger).plan(update, at: 0, in: transaction).rows.count == 1)
    }

    /// REPLICA IDENTITY USING INDEX on another unique index sends a DELETE without the id.
    @Test func aDeleteWithoutTheIdIsRefusedNamingTheReplicaIdentity() throws {
        let handler = DualWriteHandler(mode: .apply, logger: logger)
        let keyOnly = Row(columns: [Column(name: "child_name", typeOID: 25, isKey: true)], values: [.text(ArraySlice("Ada".utf8))])
        let delete = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .delete, new: nil, old: keyOnly)
        #expect {
            try handler.plan(delete, at: 0, in: transaction)
        } throws: { error in
            (error as? HandlerError)?.reason.contains("REPLICA IDENTITY FULL") == true
        }
    }

    /// An id its column's new type lets through (numeric, text) but that is not a bigint
    /// cannot key a week: refused naming the id and the way past, in every mode, for an
    /// insert, a delete and the old id of a key change; before, the batch's COPY failed
    /// naming no row.
    @Test(arguments: ["1.5", "abc", "99999999999999999999"])
    func anIdThatIsNotABigintIsRefusedByName(_ id: String) throws {
        let cases = [change(.insert, new: tracker(id: id)), change(.delete, new: nil, old: tracker(id: id)),
                     change(.update, new: tracker(id: "8"), old: tracker(id: id))]
        for mode in [DualWriteHandler.Mode.apply, .shadow, .log] {
            for bad in cases {
                #expect {
                    try DualWriteHandler(mode: mode, logger: logger).plan(bad, at: 0, in: transaction)
                } throws: { error in
                    let reason = (error as? HandlerError)?.reason ?? ""
                    return reason.contains("habit_tracker's id '\(id)' is not a bigint") && reason.contains("dual_write.mode = \"off\"")
                }
            }
        }
        #expect(try DualWriteHandler(mode: .apply, logger: logger).plan(change(.insert, new: tracker(id: "-12")), at: 0,
                                                                        in: transaction).rows.count == 1)
    }

    /// `habits` changed to text holds its JSON as a string: `request_data` keeps it one, as
    /// `to_jsonb` of the row gives it, which shadow mode compares it with; the projection
    /// still reads the JSON in it.
    @Test func habitsInATextColumnStayAStringInTheRequest() throws {
        let textHabits = Row(columns: columnNames.map { Column(name: $0, typeOID: $0 == "id" ? 20 : 25, isKey: true) },
                             values: tracker().map { if case .text(let text) = $0 { .text(ArraySlice(text.utf8)) } else { .null } })
        let insert = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .insert, new: textHabits, old: nil)
        let rows = staged(try DualWriteHandler(mode: .shadow, logger: logger).plan(insert, at: 0, in: transaction))
        let text = try #require(rows[0]["request_data"] ?? nil)
        let request = try JSONParser.parse(Array(text.utf8))
        #expect(request["habits"] == .string(habits))
        #expect(rows[0]["projection"] != .some(nil) && rows[0]["problem"] == .some(nil))
        // A domain over jsonb comes under the domain's own type, not a text one: read as JSON.
        let domainHabits = Row(columns: columnNames.map { Column(name: $0, typeOID: $0 == "id" ? 20 : $0 == "habits" ? 16_500 : 25,
                                                                 isKey: true) },
                               values: textHabits.values)
        let domainInsert = Change(lsn: LSN(0x10), schema: "public", table: "habit_tracker", operation: .insert,
                                  new: domainHabits, old: nil)
        let domainStaged = staged(try DualWriteHandler(mode: .shadow, logger: logger).plan(domainInsert, at: 0, in: transaction))
        let domainRequest = try JSONParser.parse(Array(try #require(domainStaged[0]["request_data"] ?? nil).utf8))
        guard case .array? = domainRequest["habits"] else {
            Issue.record("habits of a domain over jsonb became \(String(describing: domainRequest["habits"]))")
            return
        }
    }

    @Test func logModeStagesNoProjectionAndATruncateNothing() throws {
        let handler = DualWriteHandler(mode: .log, logger: logger)
        let rows = staged(try handler.plan(change(.insert, new: tracker(habits: .text("42"))), at: 0, in: transaction))
        #expect(rows[0]["mode"] == "log" && rows[0]["projection"] == .some(nil) && rows[0]["problem"] == .some(nil))
        #expect(try handler.plan(change(.truncate, new: nil), at: 0, in: transaction) == .none)
    }

    @Test func eachModeHasItsStatementsAndDriftIsCountedOnceCommitted() throws {
        let metrics = TestMetrics()
        let shadow = DualWriteHandler(mode: .shadow, logger: logger, metrics: metrics)
        let apply = DualWriteHandler(mode: .apply, logger: logger)
        let log = DualWriteHandler(mode: .log, logger: logger)
        // The session prepares the statements; a batch executes them.
        #expect(shadow.staging?.sessionSetup?.contains("differences") == true)
        #expect(shadow.staging?.sessionSetup?.contains("INSERT INTO public.weeks") == false)
        #expect(apply.staging?.sessionSetup?.contains("INSERT INTO public.weeks") == true)
        #expect(log.staging?.sessionSetup?.contains("differences") == false)
        for handler in [shadow, apply, log] {
            #expect(handler.staging?.table == TableName(schema: "pg_temp", name: "dual_write_staged"))
            #expect(handler.staging?.sessionSetup?.contains("FROM pg_temp.dual_write_staged") == true)
            #expect(handler.staging?.statements.contains("EXECUTE changerelay_dual_write_\(handler.mode.rawValue)_0") == true)
            #expect(handler.staging?.sessionSetup?.contains("changerelay.create_dual_write_staging_kept()") == true)
            #expect(handler.staging?.sessionSetup?.contains("dual_write_prior") == (handler.mode == .apply))
            #expect(handler.staging?.scratchTables.map(\.name) == (handler.mode == .apply
                ? ["dual_write_prior", "dual_write_rows", "dual_write_habits"] : []))
        }
        shadow.stagedBatchCommitted(QueryResult(columns: ["kind", "count"], rows: [["missing_record", "2"], ["invalid_source", "1"]]))
        #expect(metrics.counterTotal(label: DualWriteHandler.driftMetric, dimensions: [("kind", "missing_record")]) == 2)
        #expect(metrics.counterTotal(label: DualWriteHandler.driftMetric) == 3)
    }
}
