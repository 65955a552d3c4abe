import RelayConfiguration
import Foundation
import Testing

private func rule(_ schema: String, _ table: String, _ operation: WebhookRule.Operation, _ eventType: String) -> WebhookRule {
    WebhookRule(schema: schema, table: table, operation: operation, eventType: eventType)
}

private func rule(_ schema: String, _ table: String, _ operation: WebhookRule.Operation,
                  _ condition: (String, String), _ eventType: String) -> WebhookRule {
    WebhookRule(schema: schema, table: table, operation: operation,
                condition: WebhookRule.Condition(column: condition.0, value: condition.1), eventType: eventType)
}

@Suite struct WebhookRuleTests {
    static let good: [(String, WebhookRule)] = [
        ("public.orders insert -> order.created", rule("public", "orders", .insert, "order.created")),
        ("public.orders update status=shipped -> order.shipped",
         rule("public", "orders", .update, ("status", "shipped"), "order.shipped")),
        ("public.orders delete -> order.removed", rule("public", "orders", .delete, "order.removed")),
        ("public.orders read -> order.backfilled", rule("public", "orders", .read, "order.backfilled")),
        // Operations in any case; spaces and tabs anywhere between the parts.
        ("  public.orders   INSERT\t->   order.created  ", rule("public", "orders", .insert, "order.created")),
        ("public.orders Update status = shipped -> order.shipped",
         rule("public", "orders", .update, ("status", "shipped"), "order.shipped")),
        // No spaces around the arrow.
        ("public.orders insert->order.created", rule("public", "orders", .insert, "order.created")),
        ("public.orders update status=shipped->order.shipped",
         rule("public", "orders", .update, ("status", "shipped"), "order.shipped")),
        // Quoted values: spaces, '->', commas, quotes, '=' and the empty string.
        (#"public.orders update note="needs -> review, now" -> order.flagged"#,
         rule("public", "orders", .update, ("note", "needs -> review, now"), "order.flagged")),
        (#"public.orders update note="say ""hi""=x" -> order.greeted"#,
         rule("public", "orders", .update, ("note", #"say "hi"=x"#), "order.greeted")),
        (#"public.orders update note="" -> order.cleared"#, rule("public", "orders", .update, ("note", ""), "order.cleared")),
        // Unicode and odd characters in a bare value (no spaces, quotes, '=', ',' or '->').
        ("public.trips update city=Zürich -> trip.moved", rule("public", "trips", .update, ("city", "Zürich"), "trip.moved")),
        ("public.orders update total=-1.5e3 -> order.refunded",
         rule("public", "orders", .update, ("total", "-1.5e3"), "order.refunded")),
        // Names: _, $ and digits in bare names; quoted names kept exactly, "" for a quote.
        ("app_2.order$lines insert -> line.added", rule("app_2", "order$lines", .insert, "line.added")),
        (#""Sales"."Order Lines" delete -> order.line.removed"#, rule("Sales", "Order Lines", .delete, "order.line.removed")),
        (#""my.schema"."we""ird" insert -> x"#, rule("my.schema", #"we"ird"#, .insert, "x")),
        (#""données".clients insert -> client.cree"#,
         rule("données", "clients", .insert, "client.cree")),
        (#"public.orders update "Status"=shipped -> order.shipped"#,
         rule("public", "orders", .update, ("Status", "shipped"), "order.shipped")),
        // Event types: letters, digits, _ and - in dot-separated segments; one segment is enough.
        ("public.orders insert -> Order_Created-v2.x9", rule("public", "orders", .insert, "Order_Created-v2.x9")),
        ("public.orders insert -> created", rule("public", "orders", .insert, "created")),
        // The longest name Postgres keeps (63 bytes).
        ("public.\(String(repeating: "t", count: 63)) insert -> x",
         rule("public", String(repeating: "t", count: 63), .insert, "x")),
    ]

    @Test(arguments: good)
    func parsesGoodRules(text: String, expected: WebhookRule) throws {
        let parsed = try WebhookRule(parsing: text)
        #expect(parsed == expected)
        // The description is the rule again, in a form that parses back to it.
        #expect(try WebhookRule(parsing: parsed.description) == parsed, "\(parsed.description)")
    }

    @Test func descriptionQuotesOnlyWhereNeeded() throws {
        #expect(try WebhookRule(parsing: "public.orders UPDATE status = shipped->order.shipped").description
            == "public.orders update status=shipped -> order.shipped")
        #expect(try WebhookRule(parsing: #""Sales"."a b" update note="x -> y" -> e"#).description
            == #""Sales"."a b" update note="x -> y" -> e"#)
    }

    static let bad: [(String, String)] = [
        ("", "the rule is empty"),
        ("   \t  ", "the rule is empty"),
        ("-> order.created", "missing the table"),
        ("orders insert -> order.created", "table 'orders' has no schema"),
        (#""orders" insert -> x"#, "table 'orders' has no schema"),
        ("db.public.orders insert -> x", "a table name has two parts"),
        ("public. orders insert -> x", "expected a table name, found"),
        ("public..orders insert -> x", "expected a table name"),
        (".orders insert -> x", "expected a schema name"),
        ("public.Orders insert -> x", #"write orders or "Orders" in double quotes"#),
        ("public.2orders insert -> x", "a bare name starts with a letter or _"),
        ("public.$orders insert -> x", "a bare name starts with a letter or _"),
        ("public.ordérs insert -> x", "'é' cannot be part of a bare name"),
        ("public.or\u{200B}ders insert -> x", #"'\u{200B}' cannot be part of a bare name"#),
        ("public.orders-x insert -> x", "'-' cannot be part of a bare name"),
        (#"public."" insert -> x"#, "a table name in double quotes is empty"),
        (#"public."orders insert -> x"#, "has no closing"),
        ("public.\(String(repeating: "t", count: 64)) insert -> x", "64 bytes, longer than Postgres' 63"),
        (#""public"."orders"insert -> x"#, "unexpected 'insert' after the table"),
        ("public.orders", "missing the operation"),
        ("public.orders -> x", "missing the operation"),
        ("public.orders->x", "missing the operation"),
        ("public.orders upsert -> x", "unknown operation 'upsert': expected insert, update, delete or read"),
        ("public.orders inserts -> x", "unknown operation 'inserts'"),
        ("public.orders insert2 -> x", "unknown operation 'insert2'"),
        ("public.orders truncate -> x", "unknown operation 'truncate'"),
        ("public.orders İNSERT -> x", "unknown operation 'İNSERT'"),
        ("public.orders insert", "missing '->'"),
        ("public.orders insert order.created", "missing '->'"),
        ("public.orders update status=shipped order.shipped", "missing '->'"),
        (#"public.orders update note="a -> b" order.shipped"#, "missing '->'"),
        ("public.orders insert => order.created", "missing '->'"),
        ("public.orders insert — order.created", "missing '->'"),
        ("public.orders update status!=shipped -> x", "unknown condition form 'status!=shipped'"),
        ("public.orders update status>3 -> x", "unknown condition form 'status>3'"),
        ("public.orders update status in (a,b) -> x", "unknown condition form 'status in (a,b)'"),
        ("public.orders update (status=a) -> x", "unknown condition form '(status=a)'"),
        ("public.orders update status -> x", "condition 'status' has no '=value'"),
        ("public.orders update status= -> x", #"has no value after '=' (write status="" for the empty string)"#),
        ("public.orders update =shipped -> x", "unknown condition form '=shipped'"),
        ("public.orders update status=a b=c -> x", "at most one column=value"),
        ("public.orders update status=a and b=c -> x", "at most one column=value"),
        ("public.orders update status=a=b -> x", "contains '=': write it in double quotes"),
        ("public.orders update status=a,b -> x", "contains ',': write it in double quotes"),
        (#"public.orders update status=a"b -> x"#, #"contains '"': write it in double quotes"#),
        (#"public.orders update status="shipped -> x"#, "a quoted value has no closing"),
        ("public.orders update Status=x -> y", "upper-case letters"),
        ("public.orders insert ->", "the event type after '->' is empty"),
        ("public.orders insert ->   ", "the event type after '->' is empty"),
        ("public.orders insert -> order.*", "contains '*': wildcards are for subscriptions"),
        ("public.orders insert -> *", "contains '*'"),
        ("public.orders insert -> order..created", "empty segment"),
        ("public.orders insert -> .order", "empty segment"),
        ("public.orders insert -> order.", "empty segment"),
        ("public.orders insert -> order/created", "contains '/'"),
        ("public.orders insert -> ordér.created", "contains 'é'"),
        ("public.orders insert -> order.created🎉", "contains '🎉'"),
        ("public.orders insert -> order.created extra", "unexpected text after the event type: 'extra'"),
        ("public.orders insert -> order.created -> again", "unexpected text after the event type: '->'"),
        ("public.orders insert -> order.created # comment", "unexpected text after the event type: '#'"),
        ("public.orders insert -> a\nb", #"contains '\n'"#),
    ]

    @Test(arguments: bad)
    func refusesBadRules(text: String, reason: String) {
        #expect {
            try WebhookRule(parsing: text)
        } throws: { error in
            let message = (error as? WebhookRuleSyntaxError)?.reason ?? ""
            return message.contains(reason)
        }
    }

    @Test func hugeRulesAreRefusedWithAShortMessage() throws {
        let long = String(repeating: "a", count: 100_000)
        for text in ["public.\(long) insert -> x", "public.orders insert -> x \(long)", "public.orders update c=\(long)\" -> x",
                     String(repeating: "public.orders ", count: 10_000)] {
            do {
                _ = try WebhookRule(parsing: text)
                Issue.record("accepted a hostile rule")
            } catch {
                #expect(error.reason.count < 400, "\(error.reason.prefix(500))")
            }
        }
        // A long value or event type is not wrong in itself.
        #expect(try WebhookRule(parsing: "public.orders update c=\(long) -> x").condition?.value == long)
        #expect(try WebhookRule(parsing: "public.orders insert -> \(long)").eventType == long)
    }

    @Test func environmentListsSplitOnCommasOutsideQuotes() {
        #expect(WebhookRule.splitList("") == [])
        #expect(WebhookRule.splitList("   ") == [])
        #expect(WebhookRule.splitList("a.b insert -> x") == ["a.b insert -> x"])
        #expect(WebhookRule.splitList(#" a.b insert -> x , a.b update c="1,2" -> y "#)
            == ["a.b insert -> x", #"a.b update c="1,2" -> y"#])
        #expect(WebhookRule.splitList("a,,b,") == ["a", "", "b", ""])
        // Quotes are counted as the parser sees them, even with a combining mark on one.
        #expect(WebhookRule.splitList("a=\"\u{301},b\",c") == ["a=\"\u{301},b\"", "c"])
    }
}

@Suite struct WebhookConfigTests {
    @Test func defaults() throws {
        let webhooks = try Config.load(path: nil, environment: [:]).webhooks
        #expect(webhooks.rules.isEmpty)
        #expect(webhooks.maxInFlightPerEndpoint == 16)
    }

    @Test func rulesAndLimitFromTheFile() throws {
        let path = try write("""
            [webhooks]
            max_in_flight_per_endpoint = 2
            rules = [
              "public.orders insert -> order.created",
              'public.orders update status="on hold" -> order.held',  # literal string, quotes kept
              "public.orders update status=\\"a, b\\" -> order.ab",
            ]
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let webhooks = try Config.load(path: path, environment: [:]).webhooks
        #expect(webhooks.maxInFlightPerEndpoint == 2)
        #expect(webhooks.rules == [
            rule("public", "orders", .insert, "order.created"),
            rule("public", "orders", .update, ("status", "on hold"), "order.held"),
            rule("public", "orders", .update, ("status", "a, b"), "order.ab"),
        ])
    }

    @Test func environmentOverridesTheRules() throws {
        let config = try Config.load(path: nil, environment: [
            "CHANGERELAY_WEBHOOKS_RULES": #"public.orders insert -> order.created, public.orders update note="x,y" -> order.noted"#,
            "CHANGERELAY_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT": "1024",
        ])
        #expect(config.webhooks.rules == [
            rule("public", "orders", .insert, "order.created"),
            rule("public", "orders", .update, ("note", "x,y"), "order.noted"),
        ])
        #expect(config.webhooks.maxInFlightPerEndpoint == 1024)
        // An empty variable clears the file's rules.
        let cleared = try Config.load(path: nil, environment: ["CHANGERELAY_WEBHOOKS_RULES": ""])
        #expect(cleared.webhooks.rules.isEmpty)
    }

    @Test func aBadRuleInTheFileNamesKeyIndexTextLineAndProblem() throws {
        let error = try #require(try loadError("""
            [webhooks]
            rules = [
              "public.orders insert -> order.created",

              "public.orders upsert -> order.changed",
            ]
            """))
        #expect(error.key == "webhooks.rules")
        #expect(error.origin.hasSuffix("line 5"), "\(error)")
        #expect(error.reason.contains("rule [1] 'public.orders upsert -> order.changed'"), "\(error)")
        #expect(error.reason.contains("unknown operation 'upsert'"), "\(error)")
        // One line: the rule's line, not the key's.
        let single = try #require(try loadError("[webhooks]\nrules = [\"orders insert -> x\"]\n"))
        #expect(single.origin.hasSuffix("line 2"))
        #expect(single.reason.contains("rule [0]") && single.reason.contains("no schema"), "\(single)")
    }

    @Test func aBadRuleInTheEnvironmentNamesTheVariable() throws {
        let error = try #require(try loadError("", environment: [
            "CHANGERELAY_WEBHOOKS_RULES": "public.orders insert -> order.created, public.orders insert -> order.*",
        ]))
        #expect(error.key == "webhooks.rules")
        #expect(error.origin == "environment CHANGERELAY_WEBHOOKS_RULES")
        #expect(error.reason.contains("rule [1] 'public.orders insert -> order.*'"), "\(error)")
        #expect(error.reason.contains("wildcards"), "\(error)")
        let empty = try #require(try loadError("", environment: ["CHANGERELAY_WEBHOOKS_RULES": "public.orders insert -> x,"]))
        #expect(empty.reason.contains("rule [1] ''") && empty.reason.contains("empty"), "\(empty)")
    }

    @Test(arguments: [
        // The same rule, however spelled, twice: refused, naming the first.
        (["public.orders insert -> x", "public.orders insert -> x"], "rule [1] 'public.orders insert -> x': the same rule as rule [0]"),
        (["public.orders insert -> x", #""public"."orders" INSERT->x"#], "the same rule as rule [0]"),
        (["a.b insert -> y", "public.orders update s=a -> x", #"public.orders update s = "a" -> x"#], "the same rule as rule [1]"),
    ])
    func duplicateRulesAreRefused(rules: [String], reason: String) throws {
        let list = rules.map { "\"" + $0.replacingOccurrences(of: "\"", with: "\\\"") + "\"" }.joined(separator: ", ")
        let error = try #require(try loadError("[webhooks]\nrules = [\(list)]\n"))
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test func oneChangeMayEmitSeveralEvents() throws {
        // Same table, operation and condition with other event types, or one event type from
        // several rules: not duplicates.
        let config = try Config.load(path: nil, environment: [
            "CHANGERELAY_WEBHOOKS_RULES": "public.chat_messages insert -> chat.message.created, "
                + "public.chat_messages insert role=user -> chat.message.process, "
                + "public.chat_messages insert -> chat.message.audited, public.chat_messages update -> chat.message.audited",
        ])
        #expect(config.webhooks.rules.count == 4)
    }

    @Test(arguments: [
        ("[webhooks]\nrules = 3\n", "must be an array of strings, got an integer"),
        ("[webhooks]\nrules = [\"public.orders insert -> x\", 3]\n", "must be an array of strings"),
        ("[webhooks]\nrules = [\"\"]\n", "rule [0] '': the rule is empty"),
        ("[webhooks]\nrules = [\"   \"]\n", "rule [0] '   ': the rule is empty"),
        ("[webhooks]\nrules = [\"public.orders insert -> a\\nb\"]\n", #"'public.orders insert -> a\nb'"#),
        ("[webhooks]\nmax_in_flight_per_endpoint = 0\n", "between 1 and 1024"),
        ("[webhooks]\nmax_in_flight_per_endpoint = 1025\n", "between 1 and 1024"),
    ])
    func badWebhookValuesAreNamed(text: String, reason: String) throws {
        let error = try #require(try loadError(text))
        #expect(error.key?.hasPrefix("webhooks.") == true)
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test func aVeryLongRuleIsShortenedInTheMessage() throws {
        let error = try #require(try loadError("", environment: [
            "CHANGERELAY_WEBHOOKS_RULES": "public.orders upsert -> " + String(repeating: "x", count: 50_000),
        ]))
        #expect(error.description.count < 600, "\(error.description.prefix(700))")
        #expect(error.reason.contains("…"))
    }
}
