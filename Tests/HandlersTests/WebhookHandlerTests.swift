import RelayConfiguration
import Core
import Decoding
import Handlers
import Logging
import PlannedEffects
import Testing

private func row(_ pairs: KeyValuePairs<String, String?>, keys: Set<String> = ["id"]) -> Row {
    Row(columns: pairs.map { Column(name: $0.key, typeOID: 25, isKey: keys.contains($0.key)) },
        values: pairs.map { $0.value.map { .text(ArraySlice($0.utf8)) } ?? .null })
}

private func change(_ table: String, _ operation: Change.Operation, new: Row? = nil, old: Row? = nil) -> Change {
    Change(lsn: LSN(0x100), schema: "public", table: table, operation: operation, new: new, old: old)
}

private func config(id: String, events: String, active: Bool = true, url: String = "https://hooks.example.com/in",
                    headers: String = "{}", retry: String = #"{"max_retries": 3, "retry_delay": 1000}"#) -> Change {
    change("webhook_configs", .insert, new: row([
        "id": id, "name": "config " + id, "url": url, "secret": "whsec_c2VjcmV0", "events": events, "headers": headers,
        "is_active": active ? "t" : "f", "retry_config": retry,
    ]))
}

private func transaction(_ changes: [Change], lsn: UInt64 = 0x1000) -> Transaction {
    Transaction(xid: 1, commitLSN: LSN(lsn), endLSN: LSN(lsn + 8),
                commitTime: PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000), changes: changes)
}

private func makeHandler(extra: [WebhookRule] = []) -> WebhookHandler {
    WebhookHandler(rules: WebhookRule.builtIn + extra, cache: WebhookConfigCache(), logger: Logger(label: "test"))
}

private func plan(_ handler: WebhookHandler, _ transaction: Transaction) throws -> Effects {
    var all = Effects()
    try transaction.changes.forEach { index, change in
        let effects = try handler.plan(change, at: index, in: transaction)
        all.rows += effects.rows
        all.deliveries += effects.deliveries
    }
    handler.batchEnded(committed: true)
    return all
}

/// The event types `change` fans out as, with one config subscribed to everything.
private func eventTypes(_ change: Change) throws -> [String] {
    let handler = makeHandler()
    _ = try plan(handler, transaction([config(id: "1", events: "{*}")], lsn: 0x10))
    return try plan(handler, transaction([change])).deliveries.map { delivery in
        String(delivery.target.drop { $0 != ":" }.dropFirst())
    }
}

@Suite struct WebhookEventRuleTests {
    private static let session = ["id": "s1", "user_id": "u", "status": "active"]

    @Test func everyBuiltInRuleFiresForItsChange() throws {
        #expect(try eventTypes(change("trip_collaborators", .insert, new: row(["id": "c"]))) == ["trip.collaborator.added"])
        #expect(try eventTypes(change("trip_collaborators", .update, new: row(["id": "c"]), old: row(["id": "c"])))
            == ["trip.collaborator.updated"])
        #expect(try eventTypes(change("trip_collaborators", .delete, old: row(["id": "c"]))) == ["trip.collaborator.removed"])
        #expect(try eventTypes(change("chat_messages", .insert, new: row(["id": "m", "role": "user"])))
            == ["chat.message.created", "chat.message.process"])
        #expect(try eventTypes(change("chat_sessions", .insert, new: row(["id": "s", "status": "active"])))
            == ["chat.session.started"])
        #expect(try eventTypes(change("chat_sessions", .update, new: row(["id": "s", "status": "ended"]),
                                      old: row(["id": "s", "status": "active"]))) == ["chat.session.ended"])
        for table in ["flights", "accommodations"] {
            for status in ["booked", "cancelled"] {
                #expect(try eventTypes(change(table, .update, new: row(["id": "f", "status": status]),
                                              old: row(["id": "f", "status": "pending"]))) == ["booking.\(table).\(status)"])
            }
        }
    }

    @Test func nearMissesFireNothing() throws {
        // An assistant's message is created but not processed.
        #expect(try eventTypes(change("chat_messages", .insert, new: row(["id": "m", "role": "assistant"])))
            == ["chat.message.created"])
        // A session updated to another status, or updated while already ended.
        #expect(try eventTypes(change("chat_sessions", .update, new: row(["id": "s", "status": "paused"]),
                                      old: row(["id": "s", "status": "active"]))).isEmpty)
        #expect(try eventTypes(change("chat_sessions", .update, new: row(["id": "s", "status": "ended"]),
                                      old: row(["id": "s", "status": "ended"]))).isEmpty)
        // A booking UPDATE that does not touch its status, or moves it elsewhere.
        #expect(try eventTypes(change("flights", .update, new: row(["id": "f", "status": "booked", "price": "2"]),
                                      old: row(["id": "f", "status": "booked", "price": "1"]))).isEmpty)
        #expect(try eventTypes(change("flights", .update, new: row(["id": "f", "status": "pending"]),
                                      old: row(["id": "f", "status": "booked"]))).isEmpty)
        // Deletes of sessions and messages, truncates, and tables no rule names.
        #expect(try eventTypes(change("chat_sessions", .delete, old: row(["id": "s"]))).isEmpty)
        #expect(try eventTypes(change("chat_messages", .truncate)).isEmpty)
        #expect(try eventTypes(change("jobs", .insert, new: row(["id": "j"]))).isEmpty)
    }

    @Test func anOperatorRuleWithAConditionFiresOnTheChangeToItsValue() throws {
        let shipped = WebhookRule(schema: "public", table: "orders", operation: .update,
                                       condition: .init(column: "status", value: "shipped"), eventType: "order.shipped")
        let handler = makeHandler(extra: [shipped])
        #expect(handler.tables.contains("public.orders"))
        _ = try plan(handler, transaction([config(id: "1", events: "{order.shipped}")], lsn: 0x10))
        let fired = try plan(handler, transaction([
            change("orders", .update, new: row(["id": "o", "status": "shipped"]), old: row(["id": "o", "status": "paid"])),
            change("orders", .update, new: row(["id": "o", "status": "shipped"]), old: row(["id": "o", "status": "shipped"])),
        ]))
        #expect(fired.deliveries.count == 1)
    }

    /// Two rules that fire with one event type on one change (an operator's rule that repeats a
    /// built-in one, or two conditions that both hold) give one event of that type to each
    /// config: both would name the same webhook-id, which `deliveries` holds once, and the
    /// batch that planned it twice was refused.
    @Test func rulesThatFireWithOneEventTypeGiveOneEvent() throws {
        let repeated = WebhookRule(schema: "public", table: "chat_messages", operation: .insert, condition: nil,
                                   eventType: "chat.message.created")
        let byRole = WebhookRule(schema: "public", table: "chat_messages", operation: .insert,
                                 condition: .init(column: "role", value: "user"), eventType: "chat.message.created")
        let handler = makeHandler(extra: [repeated, byRole])
        _ = try plan(handler, transaction([config(id: "1", events: "{*}"), config(id: "2", events: "{chat.message.created}")],
                                          lsn: 0x10))
        let fired = try plan(handler, transaction([change("chat_messages", .insert,
                                                          new: row(["id": "m", "role": "user", "content": "hi"]))]))
        #expect(fired.deliveries.map(\.target) == ["1:chat.message.created", "2:chat.message.created", "1:chat.message.process"])
        #expect(Set(fired.deliveries.compactMap(\.idempotencyKey)).count == 3)
    }

    /// A record's events are ordered by its key: an UPDATE that changed the key names the
    /// one it had, so its deliveries wait for the old key's earlier ones (031), per config.
    @Test func anUpdateThatChangedTheKeyNamesTheFormerOneInItsOrdering() throws {
        let updated = WebhookRule(schema: "public", table: "orders", operation: .update, condition: nil, eventType: "order.updated")
        let handler = makeHandler(extra: [updated])
        _ = try plan(handler, transaction([config(id: "1", events: "{order.updated}")], lsn: 0x10))
        let planned = try plan(handler, transaction([
            change("orders", .update, new: row(["id": "o2", "status": "paid"]), old: row(["id": "o1"])),
            change("orders", .update, new: row(["id": "o2", "status": "sent"])),
        ]))
        #expect(planned.deliveries.map(\.orderingKey) == ["webhook:1:public.orders:id=o2", "webhook:1:public.orders:id=o2"])
        #expect(planned.deliveries.map(\.formerOrderingKey) == ["webhook:1:public.orders:id=o1", nil])
    }

    /// A condition on a boolean column compares booleans: `paid=true` (as the body shows the
    /// value) fires on the change the stream carries as `t`, and `paid=t` still does.
    @Test(arguments: ["true", "t", "yes"])
    func aConditionOnABooleanColumnComparesBooleans(value: String) throws {
        let paid = WebhookRule(schema: "public", table: "orders", operation: .update,
                               condition: .init(column: "paid", value: value), eventType: "order.paid")
        let handler = makeHandler(extra: [paid])
        _ = try plan(handler, transaction([config(id: "1", events: "{order.paid}")], lsn: 0x10))
        func order(paid: String) -> Row {
            Row(columns: [Column(name: "id", typeOID: 25, isKey: true), Column(name: "paid", typeOID: 16, isKey: false)],
                values: [.text(ArraySlice("o".utf8)), .text(ArraySlice(paid.utf8))])
        }
        let fired = try plan(handler, transaction([
            change("orders", .update, new: order(paid: "t"), old: order(paid: "f")),
            change("orders", .update, new: order(paid: "t"), old: order(paid: "t")),
            change("orders", .update, new: order(paid: "f"), old: order(paid: "t")),
        ]))
        #expect(fired.deliveries.count == 1)
        // On a text column the value is compared as written.
        let text = WebhookRule(schema: "public", table: "notes", operation: .insert,
                               condition: .init(column: "flag", value: "true"), eventType: "note.flagged")
        let notes = makeHandler(extra: [text])
        _ = try plan(notes, transaction([config(id: "1", events: "{note.flagged}")], lsn: 0x10))
        let written = try plan(notes, transaction([change("notes", .insert, new: row(["id": "n", "flag": "t"]))]))
        #expect(written.deliveries.isEmpty)
    }

    /// A rule's condition on a column the table no longer has never holds: the event does not
    /// fire, and one warning names the column.
    @Test func aConditionOnAColumnThatIsGoneIsSaidOnce() throws {
        let logs = CapturedLogs()
        let handler = WebhookHandler(rules: WebhookRule.builtIn, cache: WebhookConfigCache(), logger: logs.logger)
        _ = try plan(handler, transaction([config(id: "1", events: "{*}")], lsn: 0x10))
        let update = change("flights", .update, new: row(["id": "f", "state": "booked"]), old: row(["id": "f", "state": "pending"]))
        #expect(try plan(handler, transaction([update, update])).deliveries.isEmpty)
        let warnings = logs.all.filter { $0.level == .warning }
        #expect(warnings.count == 1 && warnings.first?.metadata["missing"] == "status", "\(warnings.map(\.metadata))")
        #expect(warnings.first?.metadata["table"] == "public.flights")
    }
}

@Suite struct WebhookEventPatternTests {
    @Test(arguments: [
        ("booking.flights.booked", "booking.flights.booked", true),
        ("booking.*.cancelled", "booking.flights.cancelled", true),
        ("booking.*.cancelled", "booking.accommodations.cancelled", true),
        ("booking.*.cancelled", "booking.flights.booked", false),
        ("booking.*", "booking.flights.booked", false),
        ("*", "booking.flights.booked", true),
        ("*", "x", true),
        ("*.*", "chat.message.process", false),
        ("chat.message.created", "chat.message.created.extra", false),
        ("chat.message", "chat.message.created", false),
        ("", "chat", false),
    ])
    func matching(pattern: String, eventType: String, matches: Bool) {
        #expect(WebhookEventPattern(pattern).matches(eventType) == matches)
    }
}

@Suite struct WebhookPlanningTests {
    private static let message = change("chat_messages", .insert, new: row(["id": "m1", "role": "user", "content": "hi"]))

    /// One delivery each; its log row rides in its report, numbered by the committer
    /// (sql/035), so no row is planned beside it.
    @Test func everyMatchingActiveConfigGetsOneDeliveryReportingIntoItsLogRow() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([
            config(id: "1", events: "{chat.message.created}"),
            config(id: "2", events: "{chat.*.created}"),
            config(id: "3", events: "{chat.message.created}", active: false),
            config(id: "4", events: "{booking.*.booked}"),
        ], lsn: 0x10))
        let effects = try plan(handler, transaction([change("chat_messages", .insert,
                                                            new: row(["id": "m1", "role": "assistant"]))]))
        #expect(effects.deliveries.map(\.auth) == ["webhook:1", "webhook:2"])
        #expect(effects.rows.isEmpty)
        let ids = effects.deliveries.compactMap(\.idempotencyKey)
        #expect(Set(ids).count == 2 && ids.allSatisfy { $0.hasPrefix("msg_") })
        #expect(effects.deliveries.map(\.endpoint) == ["webhook:1", "webhook:2"])
        for delivery in effects.deliveries {
            #expect(delivery.report?.logKey == DeliveryLog.webhookLog.key)
            #expect(delivery.report?.json.contains(delivery.idempotencyKey!) == true)
            let body = try JSONParser.parse(delivery.body)
            #expect(body["type"] == .string("chat.message.created"))
            #expect(body["timestamp"] == .string("2025-05-08T06:13:20Z"))
            #expect(body["data"]?["table"] == .string("chat_messages"))
            #expect(body["data"]?["old_record"] == .null)
            #expect(body["data"]?["record"]?["role"] == .string("assistant"))
        }
    }

    @Test func theWebhookIDIsTheSameOnEveryReplayAndDiffersPerConfigAndEvent() throws {
        func ids() throws -> [String] {
            let handler = makeHandler()
            _ = try plan(handler, transaction([config(id: "1", events: "{*}"), config(id: "2", events: "{*}")], lsn: 0x10))
            return try plan(handler, transaction([Self.message])).deliveries.compactMap(\.idempotencyKey)
        }
        let first = try ids()
        #expect(first.count == 4)
        #expect(Set(first).count == 4)
        #expect(try ids() == first)
    }

    @Test func aConfigCountsForExactlyTheChangesCommittedAfterIt() throws {
        let handler = makeHandler()
        #expect(try plan(handler, transaction([Self.message], lsn: 0x10)).deliveries.isEmpty)
        let sameTransaction = try plan(handler, transaction([config(id: "1", events: "{*}"), Self.message], lsn: 0x20))
        #expect(sameTransaction.deliveries.count == 2)
        _ = try plan(handler, transaction([change("webhook_configs", .update,
                                                  new: row(["id": "1", "url": "https://a.example/", "events": "{*}",
                                                            "headers": "{}", "retry_config": "{}", "is_active": "f"]))],
                                          lsn: 0x30))
        #expect(try plan(handler, transaction([Self.message], lsn: 0x40)).deliveries.isEmpty)
    }

    /// Each time after the subscribers of the event were looked up, as the cache keeps them.
    @Test func aDiscardedBatchOrATruncationForgetsTheConfigsItTaught() throws {
        let handler = makeHandler()
        let taught = transaction([config(id: "1", events: "{*}"), Self.message], lsn: 0x10)
        _ = try handler.plan(config(id: "1", events: "{*}"), at: 0, in: taught)
        #expect(try handler.plan(Self.message, at: 1, in: taught).deliveries.count == 2)
        handler.batchEnded(committed: false)
        #expect(try plan(handler, transaction([Self.message])).deliveries.isEmpty)

        #expect(try plan(handler, transaction([config(id: "1", events: "{*}"), Self.message], lsn: 0x20)).deliveries.count == 2)
        #expect(try plan(handler, transaction([change("webhook_configs", .truncate), Self.message], lsn: 0x30)).deliveries.isEmpty)
    }

    @Test func anUnchangedToastColumnKeepsWhatWasKnown() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([config(id: "1", events: "{chat.message.created}")], lsn: 0x10))
        let update = Change(lsn: LSN(0x20), schema: "public", table: "webhook_configs", operation: .update,
                            new: Row(columns: ["id", "url", "events", "headers", "retry_config", "is_active"].map {
                                Column(name: $0, typeOID: 25, isKey: $0 == "id")
                            }, values: [.text(ArraySlice("1".utf8)), .text(ArraySlice("https://b.example/".utf8)),
                                        .unchangedToast, .unchangedToast, .unchangedToast, .text(ArraySlice("t".utf8))]))
        _ = try plan(handler, transaction([update], lsn: 0x20))
        let effects = try plan(handler, transaction([Self.message], lsn: 0x30))
        #expect(effects.deliveries.map(\.url) == ["https://b.example/"])
    }

    /// An UPDATE brings only the columns it changed when the others are in TOAST: a row that
    /// could not fire is fixed by the columns it brings over the ones known from before, and
    /// a column never known makes it unusable, saying so, rather than read as NULL.
    @Test func aFixLeavingAColumnInToastTakesItFromTheUnusableRow() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([config(id: "1", events: "{chat.message.created}", url: "not a url")], lsn: 0x10))
        func update(_ id: String, url: String) -> Change {
            Change(lsn: LSN(0x20), schema: "public", table: "webhook_configs", operation: .update,
                   new: Row(columns: ["id", "url", "events", "headers", "retry_config", "is_active"].map {
                       Column(name: $0, typeOID: 25, isKey: $0 == "id")
                   }, values: [.text(ArraySlice(id.utf8)), .text(ArraySlice(url.utf8)),
                               .unchangedToast, .unchangedToast, .unchangedToast, .text(ArraySlice("t".utf8))]))
        }
        _ = try plan(handler, transaction([update("1", url: "https://fixed.example/")], lsn: 0x20))
        #expect(try plan(handler, transaction([Self.message], lsn: 0x30)).deliveries.map(\.url) == ["https://fixed.example/"])

        _ = try plan(handler, transaction([update("2", url: "https://never-seen.example/")], lsn: 0x40))
        guard case .failure(let problem)? = handler.cache.config(id: "2") else {
            Issue.record("config 2 is usable: \(String(describing: handler.cache.config(id: "2")))")
            return
        }
        #expect(problem.description.contains("events, headers, retry_config left unchanged in TOAST"), "\(problem)")
    }

    /// An UPDATE that changes a config's id and leaves a large column in TOAST: the column is
    /// the one known under the former id, and the log row holds it, so a restart that rebuilds
    /// the cache from the log alone has it too.
    @Test func anIdChangeKeepsTheColumnsLeftInToastAndLogsThem() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([config(id: "1", events: "{chat.message.created}")], lsn: 0x10))
        let columns = ["id", "url", "events", "headers", "retry_config", "is_active"].map {
            Column(name: $0, typeOID: 25, isKey: $0 == "id")
        }
        let moved = Change(lsn: LSN(0x20), schema: "public", table: "webhook_configs", operation: .update,
                           new: Row(columns: columns, values: [.text(ArraySlice("2".utf8)), .text(ArraySlice("https://b.example/".utf8)),
                                                               .unchangedToast, .unchangedToast, .unchangedToast, .text(ArraySlice("t".utf8))]),
                           old: Row(columns: [columns[0]], values: [.text(ArraySlice("1".utf8))]))
        let logged = try plan(handler, transaction([moved], lsn: 0x20)).rows
        #expect(try plan(handler, transaction([Self.message], lsn: 0x30)).deliveries.map(\.url) == ["https://b.example/"])
        let upsert = try #require(logged.last.map { Dictionary(uniqueKeysWithValues: zip($0.columns, $0.values)) })
        #expect(upsert["operation"] == "upsert" && upsert["config_id"] == "2")
        #expect(upsert["events"] == "{chat.message.created}" && upsert["unchanged"] == "{}")
    }

    /// A large value an UPDATE left alone is the old row's when the table sends it whole, as
    /// the seed's trigger sent `NEW` whole; with only the key in the stream, it is named in
    /// `unchanged_toast` rather than silently missing.
    @Test func anUnchangedToastValueIsTheOldRowsOrNamed() throws {
        let handler = makeHandler()
        _ = try plan(handler, transaction([config(id: "1", events: "{booking.flights.booked}")], lsn: 0x10))
        let columns = ["id", "status", "airline"].map { Column(name: $0, typeOID: 25, isKey: $0 == "id") }
        let new = Row(columns: columns, values: [.text(ArraySlice("f".utf8)), .text(ArraySlice("booked".utf8)), .unchangedToast])
        let whole = Row(columns: columns, values: ["f", "pending", "a long airline"].map { .text(ArraySlice($0.utf8)) })
        let keyOnly = Row(columns: [columns[0]], values: [.text(ArraySlice("f".utf8))])
        for (lsn, old, airline, unchanged) in [(0x20, whole, JSONValue.string("a long airline"), nil),
                                               (0x30, keyOnly, nil, JSONValue.array([.string("airline")]))] {
            let effects = try plan(handler, transaction([change("flights", .update, new: new, old: old)], lsn: UInt64(lsn)))
            let delivery = try #require(effects.deliveries.first)
            let data = try #require(try JSONParser.parse(delivery.body)["data"])
            #expect(data["record"]?["airline"] == airline)
            #expect(data["record"]?["status"] == .string("booked"))
            #expect(data["unchanged_toast"] == unchanged)
        }
    }

    @Test(arguments: [
        ("{not closed", "{}", "{}", "https://a.example/", "events"),
        ("{\"\"}", "{}", "{}", "https://a.example/", "empty event type"),
        ("{*}", "[1]", "{}", "https://a.example/", "headers is not a JSON object"),
        ("{*}", #"{"X-A": 1}"#, "{}", "https://a.example/", "is not a string"),
        ("{*}", #"{"Bad Name": "v"}"#, "{}", "https://a.example/", "is not a header name"),
        ("{*}", #"{"X-A": "v\r\nInjected: yes"}"#, "{}", "https://a.example/", "line break"),
        ("{*}", "{}", #"{"max_retries": "3"}"#, "https://a.example/", "retry_config.max_retries"),
        ("{*}", "{}", "not json", "https://a.example/", "retry_config"),
        ("{*}", "{}", "{}", "ftp://a.example/", "url"),
        ("{*}", "{}", "{}", "https://", "url"),
        ("{*}", "{}", "{}", "hooks.example.com", "url"),
    ])
    func aMalformedConfigNeverFiresAndSaysWhy(events: String, headers: String, retry: String, url: String,
                                              reason: String) throws {
        let parsed = WebhookConfig.parse(["id": "7", "url": url, "events": events, "headers": headers,
                                          "retry_config": retry, "is_active": "t"])
        guard case .failure(let problem) = parsed else {
            Issue.record("accepted: \(parsed)")
            return
        }
        #expect(problem.description.contains("webhook config 7"))
        #expect(problem.description.contains(reason), "\(problem)")
        let handler = makeHandler()
        let effects = try plan(handler, transaction([
            config(id: "7", events: events, url: url, headers: headers, retry: retry), Self.message,
        ]))
        #expect(effects.deliveries.isEmpty)
    }

    /// A `json` headers column may repeat a name or nest a value past the parser's bound:
    /// the name is sent once with its last value, as jsonb keeps it, and the deep value is
    /// named as what it is, not as a headers column that is not an object.
    @Test func repeatedAndDeepHeadersReadAsPostgresReadsThem() throws {
        let parsed = WebhookConfig.parse(["id": "7", "url": "https://a.example/", "events": "{*}", "is_active": "t",
                                          "headers": #"{"X-A": "1", "X-B": "b", "X-A": "2"}"#])
        guard case .success(let config) = parsed else {
            Issue.record("refused: \(parsed)")
            return
        }
        #expect(config.headers == [.init("X-A", "2"), .init("X-B", "b")])
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        guard case .failure(let problem) = WebhookConfig.parse(["id": "7", "url": "https://a.example/", "events": "{*}",
                                                                "is_active": "t", "headers": #"{"X-A": \#(deep)}"#]) else {
            Issue.record("accepted a header that is not a string")
            return
        }
        #expect(problem.reason == "header 'X-A' is not a string")
        let retry = try WebhookRetryConfig(json: #"{"max_retries": 1, "deep": \#(deep), "max_retries": 2}"#)
        #expect(retry.maxRetries == 2)
    }

    /// A URL that cannot be used is not quoted in the reason: its user-info, path or query
    /// may be a credential, and the reason goes to the log.
    @Test(arguments: ["ftp://alice:hunter2@example.com/x?token=t0ken", "http://alice:hunter2@/x?token=t0ken",
                      "alice:hunter2@example.com/x?token=t0ken"])
    func anUnusableURLIsNotQuoted(url: String) {
        guard case .failure(let problem) = WebhookConfig.parse(["id": "7", "url": url, "events": "{*}", "is_active": "t"]) else {
            Issue.record("accepted \(url)")
            return
        }
        #expect(problem.description.contains("url"))
        #expect(!problem.description.contains("hunter2") && !problem.description.contains("t0ken"), "\(problem)")
    }

    @Test func eventsInPostgresArrayForms() throws {
        let parsed = WebhookConfig.parse(["id": "1", "url": "https://a.example/", "is_active": "t",
                                          "events": #"{"chat.message.created","booking.*.booked",NULL,"a\"b"}"#])
        guard case .success(let config) = parsed else {
            Issue.record("refused: \(parsed)")
            return
        }
        #expect(config.wants("chat.message.created"))
        #expect(config.wants("booking.flights.booked"))
        #expect(config.wants("a\"b"))
        #expect(!config.wants("NULL"))
        // A text[] with a lower bound other than 1 prints its bounds first.
        guard case .success(let bounded) = WebhookConfig.parse(["id": "2", "url": "https://a.example/", "is_active": "t",
                                                                "events": "[0:1]={chat.message.created,trip.*}"]) else {
            Issue.record("refused an array with explicit bounds")
            return
        }
        #expect(bounded.wants("chat.message.created") && bounded.wants("trip.created"))
        if case .success = WebhookConfig.parse(["id": "3", "url": "https://a.example/", "is_active": "t", "events": "[x]={a}"]) {
            Issue.record("accepted bounds that are not numbers")
        }
    }
}

/// A backfilled row fires only rules that name `read`, with the webhook id named by the row.
@Suite struct WebhookBackfillReadTests {
    @Test func aReadFiresOnlyReadRulesAndIsNamedByItsRow() throws {
        let handler = makeHandler(extra: [
            try WebhookRule(parsing: "public.trips read -> trip.snapshot"),
            try WebhookRule(parsing: "public.trips insert -> trip.created"),
        ])
        _ = try plan(handler, transaction([config(id: "c1", events: "{trip.snapshot,trip.created}")]))
        var chunk = transaction([
            change("trips", .read, new: row(["id": "9", "name": "Lisbon"])),
            change("webhook_configs", .read, new: row(["id": "c1", "name": "config c1", "url": "https://other.example.com",
                                                      "events": "{}", "is_active": "f"])),
        ])
        chunk.backfill = BackfillChunk(backfill: 4, number: 1, table: TableName(schema: "public", name: "trips"),
                                       keyColumns: ["id"], cursor: ["9"], rowsRead: 1, rowsSuperseded: 0, isLast: true)
        let effects = try plan(handler, chunk)
        #expect(effects.deliveries.count == 1)
        let delivery = try #require(effects.deliveries.first)
        #expect(delivery.body.contains(#""type":"trip.snapshot""#))
        let expectedID = "msg_" + StableID.uuid5(namespace: StableID.namespace,
                                                 name: "webhooks:backfill:4:public.trips:id=9:c1:trip.snapshot")
        #expect(delivery.idempotencyKey == expectedID)
        // A backfilled config row changes nothing: c1 still fires to its URL.
        #expect(delivery.url == "https://hooks.example.com/in")
        #expect(!effects.rows.contains { $0.table == TableName(schema: "changerelay", name: "webhook_config_log") })
    }
}
