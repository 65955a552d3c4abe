import RelayConfiguration
import Foundation
import Testing

/// Writes `text` to a new temporary file and returns its path.
func write(_ text: String) throws -> String {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("config-\(UUID().uuidString).toml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// The error loading `text` as a configuration file (with `environment`) gives, nil when it loads.
func loadError(_ text: String, environment: [String: String] = [:]) throws -> ConfigError? {
    let path = try write(text)
    defer { try? FileManager.default.removeItem(atPath: path) }
    do {
        _ = try Config.load(path: path, environment: environment)
        return nil
    } catch {
        return error
    }
}

@Suite struct ConfigTests {
    @Test func defaultsApplyWhenKeysAreAbsent() throws {
        let config = try Config.load(path: nil, environment: [:])
        #expect(config.source.plugin == .pgoutput)
        #expect(config.source.slot == "changerelay")
        #expect(config.source.publication == "changerelay_pub")
        #expect(config.conversationChecks.maxAttempts == 3)
        #expect(config.conversationChecks.retryDelay == .milliseconds(10_000))
        #expect(config.automations.rateLimitWindow == .seconds(3600))
        #expect(config.messageBuffer.maxSize == 50)
        #expect(config.dualWrite.mode == .off)
        #expect(config.dualWrite.cleanupEnabled)
        #expect(config.delivery.retentionDays == 7)
        #expect(config.schedules.isEmpty)
        #expect(config.source.databaseURL == nil)
        #expect(throws: ConfigError.self) { try config.requireSourceURL() }
    }

    @Test func fileValuesAreRead() throws {
        let path = try write("""
            # ChangeRelay
            [source]
            database_url = "postgresql://relay@db:5432/app"
            plugin = 'wal2json'
            slot = "relay_slot"   # trailing comment

            [state]
            database_url = "postgresql://relay@state/app"

            [dual_write]
            mode = "shadow"

            [message_buffer]
            duration_ms = 1_500
            """)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Config.load(path: path, environment: [:])
        #expect(config.source.databaseURL == "postgresql://relay@db:5432/app")
        #expect(config.source.plugin == .wal2json)
        #expect(config.source.slot == "relay_slot")
        #expect(config.stateDatabaseURL == "postgresql://relay@state/app")
        #expect(config.dualWrite.mode == .shadow)
        #expect(config.messageBuffer.duration == .milliseconds(1500))
    }

    @Test func pipelineKeysHaveSafeDefaultsAndAreChecked() throws {
        let defaults = try Config.load(path: nil, environment: [:]).pipeline
        #expect(defaults.spillThreshold == 64 << 20)
        #expect(defaults.spillDirectory == nil)
        #expect(defaults.heartbeatInterval == nil)
        let set = try Config.load(path: nil, environment: [
            "CHANGERELAY_PIPELINE_SPILL_THRESHOLD_MB": "8", "CHANGERELAY_PIPELINE_SPILL_DIRECTORY": "/var/spill",
            "CHANGERELAY_PIPELINE_HEARTBEAT_INTERVAL_MS": "250",
        ]).pipeline
        #expect(set.spillThreshold == 8 << 20)
        #expect(set.spillDirectory == "/var/spill")
        #expect(set.heartbeatInterval == .milliseconds(250))
        let zero = try #require(try loadError("[pipeline]\nspill_threshold_mb = 0\n"))
        #expect(zero.key == "pipeline.spill_threshold_mb")
        let negative = try #require(try loadError("", environment: ["CHANGERELAY_PIPELINE_HEARTBEAT_INTERVAL_MS": "-5"]))
        #expect(negative.key == "pipeline.heartbeat_interval_ms")
        let empty = try #require(try loadError("[pipeline]\nspill_directory = \"\"\n"))
        #expect(empty.key == "pipeline.spill_directory")
    }

    @Test func logFormatAndLevelAreReadAndChecked() throws {
        let defaults = try Config.load(path: nil, environment: [:]).log
        #expect(defaults.format == .plain && defaults.level == .info)
        let path = try write("[log]\nformat = \"json\"\nlevel = \"warning\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = try Config.load(path: path, environment: [:]).log
        #expect(file.format == .json && file.level == .warning)
        let overridden = try Config.load(path: path, environment: ["CHANGERELAY_LOG_FORMAT": "plain", "CHANGERELAY_LOG_LEVEL": "debug"]).log
        #expect(overridden.format == .plain && overridden.level == .debug)

        let badFormat = try #require(try loadError("[log]\nformat = \"yaml\"\n"))
        #expect(badFormat.key == "log.format")
        #expect(badFormat.description.contains("log.format"))
        #expect(badFormat.reason == "must be one of plain, json, got 'yaml'")
        let badEnvironment = try #require(try loadError("", environment: ["CHANGERELAY_LOG_FORMAT": "JSON"]))
        #expect(badEnvironment.key == "log.format")
        #expect(badEnvironment.origin == "environment CHANGERELAY_LOG_FORMAT")
        let badLevel = try #require(try loadError("", environment: ["CHANGERELAY_LOG_LEVEL": "verbose"]))
        #expect(badLevel.key == "log.level")
        #expect(badLevel.reason.contains("trace, debug, info, notice, warning, error, critical"))
        let misspelled = try #require(try loadError("", environment: ["CHANGERELAY_LOG_FROMAT": "json"]))
        #expect(misspelled.key == "CHANGERELAY_LOG_FROMAT")
    }

    /// A URL read from a secret's file ends with its line break, which libpq took as part of
    /// the database name (`database "app\n" does not exist`).
    @Test func aDatabaseURLLosesTheLineBreakItsFileEndedWith() throws {
        let config = try Config.load(path: nil, environment: ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://x/app\n",
                                                               "CHANGERELAY_STATE_DATABASE_URL": "postgresql://y/state\r\n"])
        #expect(config.source.databaseURL == "postgresql://x/app")
        #expect(config.stateDatabaseURL == "postgresql://y/state")
    }

    /// A password with a bare `%` in a connection URI is refused naming the key, where its
    /// value came from and the fix, never the value; whole escapes and key/value strings pass.
    @Test func aConnectionURIWithABrokenPercentEscapeIsRefusedByKeyWithoutItsValue() throws {
        for (variable, key) in [("CHANGERELAY_SOURCE_DATABASE_URL", "source.database_url"),
                                ("CHANGERELAY_STATE_DATABASE_URL", "state.database_url")] {
            for broken in ["postgresql://u:s3cr%t@127.0.0.1/app", "postgres://u:pw%4@db/app", "postgresql://u:pw@db/app?x=%",
                           "postgresql://u:pw%00x@db/app"] {
                var environment = ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://x/y"]
                environment[variable] = broken
                let error = try #require(throws: ConfigError.self) { try Config.load(path: nil, environment: environment) }
                #expect(error.key == key && error.origin == "environment \(variable)", "\(error)")
                #expect((error.description.contains("%25") || error.description.contains("encodes a NUL"))
                        && !error.description.contains("s3cr") && !error.description.contains("pw"), "\(error)")
            }
        }
        for fine in ["postgresql://u:s3cr%25t@127.0.0.1/app", "postgresql://u:%C3%A9@db/app", "host=db password=50% dbname=app"] {
            #expect(try Config.load(path: nil, environment: ["CHANGERELAY_SOURCE_DATABASE_URL": fine]).source.databaseURL == fine)
        }
    }

    /// `admin.listen` is read where the rest is: a bad one is a configuration error naming
    /// the key and its origin for every command, not only for `run`; `off` is a value.
    @Test func aBadAdminListenAddressIsAConfigurationErrorWithItsOrigin() throws {
        let error = try #require(throws: ConfigError.self) {
            try Config.load(path: nil, environment: ["CHANGERELAY_ADMIN_LISTEN": "127.0.0.1"])
        }
        #expect(error.key == "admin.listen" && error.origin == "environment CHANGERELAY_ADMIN_LISTEN")
        #expect(error.description.contains("expected host:port") && error.description.contains("got '127.0.0.1'"), "\(error)")
        let path = try write("[admin]\nlisten = \"[::1]9187\"\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fromFile = try #require(throws: ConfigError.self) { try Config.load(path: path, environment: [:]) }
        #expect(fromFile.origin == "\(path) line 2", "\(fromFile)")
        for fine in ["off", "[::1]:0", "0.0.0.0:9187"] {
            #expect(try Config.load(path: nil, environment: ["CHANGERELAY_ADMIN_LISTEN": fine]).adminListen == fine)
        }
    }

    @Test func stateDefaultsToTheSource() throws {
        let config = try Config.load(path: nil, environment: ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://x/y"])
        #expect(config.stateDatabaseURL == "postgresql://x/y")
    }

    @Test func environmentOverridesTheFile() throws {
        let path = try write("[source]\nplugin = \"pgoutput\"\n[webhooks]\nallow_private_targets = false\n")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = try Config.load(path: path, environment: [
            "CHANGERELAY_SOURCE_PLUGIN": "wal2json",
            "CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            "CHANGERELAY_DELIVERY_CONCURRENCY": "8",
            "CHANGERELAY_SERVICE_KEY": "not a configuration key, ignored here",
        ])
        #expect(config.source.plugin == .wal2json)
        #expect(config.webhooks.allowPrivateTargets)
        #expect(config.delivery.concurrency == 8)
    }

    @Test func variablesThatNameNoSectionAreListedNotApplied() throws {
        let config = try Config.load(path: nil, environment: [
            "CHANGERELAY_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            "CHANGERELAY_SQL_DIR": "/opt/changerelay/sql",
            "CHANGERELAY_SERVICE_KEY": "read by the service, not the configuration",
            "CHANGERELAY_DELIVERY_CONCURRENCY": "8",
            "CHANGERELAYX": "another prefix",
        ])
        #expect(config.unrecognizedVariables == ["CHANGERELAY_WEBHOOK_ALLOW_PRIVATE_TARGETS"])
        #expect(!config.webhooks.allowPrivateTargets)
        #expect(config.delivery.concurrency == 8)
    }

    @Test func unknownKeyIsNamedWithItsLine() throws {
        let error = try #require(try loadError("[source]\nplugin = \"pgoutput\"\nslott = \"x\"\n"))
        #expect(error.key == "source.slott")
        #expect(error.origin.hasSuffix("line 3"))
        #expect(error.description.contains("unknown key"))
        #expect(error.description.contains("slot"))
    }

    @Test func unknownSectionIsNamed() throws {
        let error = try #require(try loadError("[sourcee]\nplugin = \"pgoutput\"\n"))
        #expect(error.key == "sourcee.plugin")
    }

    @Test func wrongTypeIsNamed() throws {
        let error = try #require(try loadError("[delivery]\nconcurrency = \"many\"\n"))
        #expect(error.key == "delivery.concurrency")
        #expect(error.reason.contains("must be an integer"))
    }

    /// The file's values have types: text that would read as the key's type is still text there
    /// (only environment variables, which have no types, are converted).
    @Test(arguments: [
        ("[delivery]\nconcurrency = \"10\"\n", "delivery.concurrency", "must be an integer"),
        ("[webhooks]\nenabled = \"yes\"\n", "webhooks.enabled", "must be true or false"),
        ("[webhooks]\nenabled = \"false\"\n", "webhooks.enabled", "must be true or false"),
        ("[handlers.echo]\ntables = \"public.jobs, public.trips\"\n", "handlers.echo.tables", "must be an array of strings"),
        ("[webhooks]\nrules = \"public.trips insert -> trip.created\"\n", "webhooks.rules", "must be an array of strings"),
    ])
    func aFileValueOfTheWrongTypeIsNamedEvenWhenItsTextWouldRead(text: String, key: String, reason: String) throws {
        let error = try #require(try loadError(text))
        #expect(error.key == key)
        #expect(error.reason.contains(reason), "\(error)")
    }

    @Test func outOfRangeAndBadChoiceAreNamed() throws {
        let range = try #require(try loadError("[conversation_checks]\nmax_attempts = 0\n"))
        #expect(range.key == "conversation_checks.max_attempts")
        #expect(range.reason.contains("between 1 and 100"))
        let choice = try #require(try loadError("[source]\nplugin = \"test_decoding\"\n"))
        #expect(choice.key == "source.plugin")
        #expect(choice.reason.contains("pgoutput, wal2json"))
    }

    @Test func badEnvironmentValueIsNamed() throws {
        let error = try #require(try loadError("", environment: ["CHANGERELAY_DELIVERY_TIMEOUT_MS": "soon"]))
        #expect(error.key == "delivery.timeout_ms")
        #expect(error.origin == "environment CHANGERELAY_DELIVERY_TIMEOUT_MS")
    }

    /// Sections with a dot (`handlers.echo`) included: their variables spell it `_`.
    @Test(arguments: ["CHANGERELAY_SOURCE_DATABSE_URL", "CHANGERELAY_HANDLERS_ECHO_URLS", "CHANGERELAY_HANDLERS_ECHO_TABLE"])
    func misspelledEnvironmentKeyIsAnError(name: String) throws {
        let error = try #require(try loadError("", environment: [name: "x"]))
        #expect(error.key == name)
    }

    @Test func dottedSectionsAreSetFromTheEnvironment() throws {
        let config = try Config.load(path: nil, environment: ["CHANGERELAY_HANDLERS_ECHO_TABLES": "public.a,public.b"])
        #expect(config.echo.tables == ["public.a", "public.b"])
    }

    @Test(arguments: [
        ("[source\nplugin = 1", "line 1"),
        ("[source]\nplugin = pgoutput\n", "line 2"),
        ("[source]\nslot = \"open\n", "line 2"),
        ("[source]\nslot = \"a\" \"b\"\n", "line 2"),
        ("[source]\nslot = \"a\"\nslot = \"b\"\n", "line 3"),
        ("[source]\n[source]\n", "line 2"),
        ("[source]\nslot = \"bad \\q escape\"\n", "line 2"),
    ])
    func syntaxErrorsNameTheLine(text: String, line: String) throws {
        let error = try #require(try loadError(text))
        #expect(error.origin.hasSuffix(line), "\(error)")
    }

    /// Values refused at start rather than by every delivery, or by the server after
    /// `setup` applied everything.
    @Test(arguments: [
        ("[functions]\nbase_url = \"ftp://x\"\n", "functions.base_url", "http:// or https://"),
        ("[functions]\nbase_url = \"not a url\"\n", "functions.base_url", "http:// or https://"),
        ("[functions]\nbase_url = \"https://\"\n", "functions.base_url", "with a host"),
        ("[functions]\nbase_url = \"https://h/functions/v1?apikey=k\"\n", "functions.base_url", "no query or fragment"),
        ("[functions]\nbase_url = \"https://h/functions/v1#top\"\n", "functions.base_url", "no query or fragment"),
        ("[handlers.echo]\nurl = \"file:///etc/passwd\"\n", "handlers.echo.url", "http:// or https://"),
        ("[handlers.echo]\ntables = [\"a.b.c\"]\n", "handlers.echo.tables", "schema.table"),
        ("[handlers.echo]\nurl = \"https://h:notaport/x\"\n", "handlers.echo.url", "http:// or https://"),
        ("[handlers.echo]\nurl = \"http://h:99999\"\n", "handlers.echo.url", "http:// or https://"),
        ("[handlers.echo]\ntables = [\"\"]\n", "handlers.echo.tables", "schema.table"),
        ("[source]\nslot = \"Bad-Slot\"\n", "source.slot", "lowercase letters"),
        ("[source]\nslot = \"\(String(repeating: "a", count: 64))\"\n", "source.slot", "1 to 63"),
    ])
    func urlsSlotNamesAndTablesAreCheckedWhenRead(text: String, key: String, reason: String) throws {
        let error = try #require(try loadError(text))
        #expect(error.key == key)
        #expect(error.reason.contains(reason), "\(error)")
    }

    /// A refused URL is quoted as `redactedURL` shows it: its user-info and query values may
    /// be the credentials.
    @Test(arguments: [
        ("CHANGERELAY_HANDLERS_ECHO_URL", "htp://user:Pw_SECRET@127.0.0.1:8/x?token=Q_SECRET"),
        ("CHANGERELAY_FUNCTIONS_BASE_URL", "https://h/functions/v1?apikey=K_SECRET"),
        ("CHANGERELAY_FUNCTIONS_BASE_URL", "http://user:Pw_SECRET@h:99999/"),
    ])
    func aRefusedURLIsQuotedWithoutItsCredentials(variable: String, url: String) throws {
        #expect {
            try Config.load(path: nil, environment: [variable: url])
        } throws: { error in
            "\(error)".contains("<redacted>") && !"\(error)".contains("SECRET")
        }
    }

    @Test func goodURLsSlotNamesAndTablesLoad() throws {
        let config = try Config.load(path: nil, environment: [
            "CHANGERELAY_FUNCTIONS_BASE_URL": "HTTPS://project.supabase.co/functions/v1",
            "CHANGERELAY_HANDLERS_ECHO_URL": "http://user:pw@127.0.0.1:8080/echo?x=1",
            "CHANGERELAY_SOURCE_SLOT": "slot_" + String(repeating: "9", count: 58),
            "CHANGERELAY_HANDLERS_ECHO_TABLES": "jobs,public.trips",
        ])
        #expect(config.source.slot.utf8.count == 63)
        #expect(config.echo.tables == ["jobs", "public.trips"], "a bare name is a table in public")
        for url in ["http://[::1]:8080/x", "http://user:pw@[fe80::1%25eth0]:80", "https://example.com", "http://h:0/"] {
            _ = try Config.load(path: nil, environment: ["CHANGERELAY_HANDLERS_ECHO_URL": url])
        }
    }

    /// `fopen` opens a directory, and reading it gives nothing: it must not load as an empty file.
    @Test func aDirectoryGivenAsTheFileIsRefused() throws {
        #expect {
            try Config.load(path: FileManager.default.temporaryDirectory.path, environment: [:])
        } throws: { error in
            "\(error)".contains("a directory, not a configuration file")
        }
    }

    /// No key takes nested arrays: deep nesting is an error naming the key, not a stack overflow.
    @Test func deeplyNestedArraysAreAnErrorNotACrash() throws {
        let text = "[webhooks]\nrules = " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "\n"
        let error = try #require(try loadError(text))
        #expect("\(error)".contains("arrays nested deeper than 32 levels for 'webhooks.rules'"), "\(error)")
    }

    @Test func missingFileIsNamed() throws {
        #expect {
            try Config.load(path: "/nonexistent/changerelay.toml", environment: [:])
        } throws: { error in
            "\(error)".contains("/nonexistent/changerelay.toml")
        }
    }

    @Test func tomlParsesArraysAndEscapes() throws {
        let document = try TOMLDocument(parsing: """
            [handlers.echo]
            tables = ["a", 'b',
              "c"]  # multi-line
            text = "tab\\tquote\\"\\u00e9"
            ratio = 0.5
            """)
        #expect(document.values["handlers.echo.tables"]?.value == .array([.string("a"), .string("b"), .string("c")]))
        #expect(document.elementLines["handlers.echo.tables"] == [2, 2, 3])
        #expect(document.values["handlers.echo.text"]?.value == .string("tab\tquote\"é"))
        #expect(document.values["handlers.echo.ratio"]?.value == .float(0.5))
    }

    /// Valid TOML a schedule's SQL is naturally written in: multi-line strings of both kinds
    /// (a newline after the opening delimiter dropped, a line-ending backslash joining lines),
    /// `\b` and `\f`, and a byte order mark before the document.
    @Test func tomlParsesMultilineStringsAndEveryEscape() throws {
        let document = try TOMLDocument(parsing: "\u{FEFF}" + #"""
            [handlers.echo]
            basic = """
            DELETE FROM t
              WHERE "quoted" \
                    AND x = 'y'"""
            literal = '''
            C:\path\n'''
            quotes = """a""""
            escapes = "\b\f"
            after = 1
            """#)
        #expect(document.values["handlers.echo.basic"]?.value == .string("DELETE FROM t\n  WHERE \"quoted\" AND x = 'y'"))
        #expect(document.values["handlers.echo.literal"]?.value == .string("C:\\path\\n"))
        #expect(document.values["handlers.echo.quotes"]?.value == .string("a\""))
        #expect(document.values["handlers.echo.escapes"]?.value == .string("\u{08}\u{0C}"))
        #expect(document.values["handlers.echo.after"]?.line == 10)
    }

    /// Numbers TOML refuses are refused, naming the key: not read as something else.
    @Test(arguments: ["010", "+01", "_1", "1_", "1__0"])
    func tomlRefusesMalformedNumbers(text: String) throws {
        let error = try #require(try loadError("[delivery]\nconcurrency = \(text)\n"))
        #expect("\(error)".contains("delivery.concurrency"), "\(error)")
    }

    /// TOML's other integer forms are integers; a number past 64 bits, or no value at all,
    /// is said to be that (not "a float", and not a quoted line break).
    @Test func integersInEveryBaseAndTheirBadFormsAreNamed() throws {
        for (text, value) in [("0x10", 16), ("0o20", 16), ("0b10000", 16), ("0x1_0", 16)] {
            let config = try Config.load(path: try write("[delivery]\nconcurrency = \(text)\n"), environment: [:])
            #expect(config.delivery.concurrency == value, "\(text)")
        }
        for (text, reason) in [("99999999999999999999999", "out of the range of a 64-bit signed integer"),
                               ("-99999999999999999999999", "out of the range of a 64-bit signed integer"),
                               ("0xFFFFFFFFFFFFFFFFFF", "base-16 integer"), ("0x-1", "base-16 integer"), ("0b2", "base-2 integer"),
                               ("", "'delivery.concurrency' has no value (found \"\\n\")")] {
            let error = try #require(try loadError("[delivery]\nconcurrency = \(text)\n"), "\(text)")
            #expect(error.reason.contains(reason), "\(text): \(error)")
            #expect(!"\(error)".contains("\n"), "\(error)")
        }
    }

    /// libpq and Postgres end a string at NUL: `DELETE FROM t\u0000 WHERE …` would run as
    /// `DELETE FROM t`. NUL is refused however it is written, naming where.
    @Test(arguments: [#"sql = "DELETE FROM t\u0000 WHERE false""#, #"sql = "DELETE FROM t\U00000000 WHERE false""#,
                      "sql = \"DELETE FROM t\u{0} WHERE false\"", "sql = '''DELETE FROM t\u{0} WHERE false'''"])
    func aNULInAStringIsRefused(line: String) throws {
        let error = try #require(try loadError("[[schedules]]\nname = \"wipe\"\ncron = \"* * * * *\"\n" + line + "\n"))
        #expect("\(error)".contains("line 4"), "\(error)")
    }

    @Test func anUnterminatedMultilineStringIsNamed() throws {
        let error = try #require(try loadError("[functions]\nbase_url = \"\"\"http://x\n"))
        #expect("\(error)".contains("unterminated multi-line string for 'functions.base_url'"), "\(error)")
    }
}
