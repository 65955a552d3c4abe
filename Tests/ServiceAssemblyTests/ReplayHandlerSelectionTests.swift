import RelayConfiguration
import Pipeline
import ServiceAssembly
import Testing

@Suite struct ReplayHandlerSelectionTests {
    static func config(_ environment: [String: String]) throws -> Config {
        try Config.load(path: nil, environment: ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://x/app"]
            .merging(environment) { $1 })
    }

    /// echo, conversation checks (and so automations and message buffering), apply mode, webhooks.
    static let everything = [
        "CHANGERELAY_HANDLERS_ECHO_URL": "http://127.0.0.1:1/echo", "CHANGERELAY_HANDLERS_ECHO_TABLES": "public.items",
        "CHANGERELAY_FUNCTIONS_BASE_URL": "http://127.0.0.1:1/functions/v1", "CHANGERELAY_DUAL_WRITE_MODE": "apply",
    ]

    @Test func theHandlersListIsCommaSeparatedKnownNames() throws {
        #expect(try ReplayHandlerSelection.parse("echo, dual_write") == ["echo", "dual_write"])
        #expect(throws: ReplayError.unknownHandler("echoes", known: ReplayHandlerSelection.known)) {
            try ReplayHandlerSelection.parse("echo,echoes")
        }
        #expect(throws: ReplayError.noHandlerNamed) { try ReplayHandlerSelection.parse(" , ") }
    }

    @Test func withoutAListEveryEnabledHandlerRunsButThoseThatFollowTheLiveState() throws {
        let selection = try ReplayHandlerSelection.decide(requested: nil, config: try Self.config(Self.everything))
        #expect(selection.names == ["echo", "conversation_checks", "dual_write", "webhooks"])
        #expect(selection.leftOut.map(\.name) == ["automations", "message_buffering"])
        #expect(selection.leftOut.allSatisfy { !$0.reason.isEmpty })
        #expect(!selection.isNamed)

        let quiet = try ReplayHandlerSelection.decide(requested: nil, config: try Self.config([:]))
        #expect(quiet.names == ["webhooks"] && quiet.leftOut.isEmpty, "webhooks are on by default; nothing else is")
    }

    @Test func aNamedHandlerMustBeConfiguredAndReplayable() throws {
        let config = try Self.config(Self.everything)
        let named = try ReplayHandlerSelection.decide(requested: ["webhooks", "echo"], config: config)
        #expect(named.names == ["echo", "webhooks"] && named.isNamed && named.leftOut.isEmpty)
        #expect(throws: ReplayError.self) { try ReplayHandlerSelection.decide(requested: ["automations"], config: config) }
        #expect(throws: ReplayError.handlerNotConfigured("echo", hint: "handlers.echo.url is not set")) {
            try ReplayHandlerSelection.decide(requested: ["echo"], config: try Self.config([:]))
        }
    }

    /// Shadow mode compares with the new schema as it is now: meaningless for past changes.
    @Test func theDualWriteSyncIsRefusedInShadowMode() throws {
        let shadow = try Self.config(["CHANGERELAY_DUAL_WRITE_MODE": "shadow"])
        #expect(ReplayHandlerSelection.refusal(of: "dual_write", config: shadow)?.contains("shadow mode") == true)
        #expect(ReplayHandlerSelection.refusal(of: "dual_write", config: try Self.config(["CHANGERELAY_DUAL_WRITE_MODE": "log"])) == nil)
        let selection = try ReplayHandlerSelection.decide(requested: nil, config: shadow)
        #expect(selection.leftOut.map(\.name) == ["dual_write"])
        do {
            _ = try ReplayHandlerSelection.decide(requested: ["dual_write"], config: shadow)
            Issue.record("dual_write in shadow mode was not refused")
        } catch {
            guard case .handlerRefused("dual_write", _) = error else {
                Issue.record("refused for another reason: \(error)")
                return
            }
        }
    }
}
