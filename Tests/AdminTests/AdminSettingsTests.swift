import Foundation
import StateStore
import Testing
@testable import Admin

struct AdminTokenTests {
    @Test func comparesWholeTokensOnly() {
        #expect(AdminToken.constantTimeEquals(Array("secret".utf8), Array("secret".utf8)))
        #expect(!AdminToken.constantTimeEquals(Array("secret".utf8), Array("secreT".utf8)))
        #expect(!AdminToken.constantTimeEquals(Array("secret".utf8), Array("secret!".utf8)))
        #expect(!AdminToken.constantTimeEquals(Array("secret".utf8), Array("secre".utf8)))
        #expect(!AdminToken.constantTimeEquals([], Array("x".utf8)))
        #expect(AdminToken.constantTimeEquals([], []))
        // Lengths that differ by a multiple of 256 must not wrap around to "equal".
        #expect(!AdminToken.constantTimeEquals([UInt8](repeating: 0, count: 256), []))
    }

    @Test func acceptsOnlyItsBearerHeader() {
        let token = AdminToken("s3cret")
        #expect(token.accepts(authorization: "Bearer s3cret"))
        #expect(token.accepts(authorization: "bearer s3cret"))
        #expect(!token.accepts(authorization: nil))
        #expect(!token.accepts(authorization: "Bearer "))
        #expect(!token.accepts(authorization: "Basic s3cret"))
        #expect(!token.accepts(authorization: "Bearer s3cret2"))
    }

    @Test func settingsNeedATokenOffLoopbackAndNameTheKeys() throws {
        #expect(try AdminSettings(listen: "127.0.0.1:0", tokenFile: nil).token == nil)
        let refused = #expect(throws: AdminSettingsError.self) { try AdminSettings(listen: "0.0.0.0:9187", tokenFile: nil) }
        #expect(refused?.description.contains("admin.listen") == true && refused?.description.contains("admin.token_file") == true)

        let path = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)").path
        defer { unlink(path) }
        try Data("  \n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: AdminSettingsError.tokenEmpty(path: path)) { try AdminSettings(listen: "0.0.0.0:1", tokenFile: path) }
        let directory = FileManager.default.temporaryDirectory.path
        #expect(throws: AdminSettingsError.tokenUnreadable(path: directory, reason: "a directory, not a file")) {
            try AdminSettings(listen: "0.0.0.0:1", tokenFile: directory)
        }
        try Data("hunter2\n".utf8).write(to: URL(fileURLWithPath: path))
        let settings = try AdminSettings(listen: "0.0.0.0:1", tokenFile: path)
        #expect(settings.token?.accepts(authorization: "Bearer hunter2") == true)
        let missing = #expect(throws: AdminSettingsError.self) { try AdminSettings(listen: "127.0.0.1:1", tokenFile: path + ".x") }
        #expect(missing?.description.hasPrefix("admin.token_file") == true)
    }

    @Test func offMeansNoAdminServerAndOnlyTheExactWord() throws {
        #expect(try AdminSettings.parse(listen: "off", tokenFile: nil) == nil)
        #expect(try AdminSettings.parse(listen: "127.0.0.1:9187", tokenFile: nil)?.listen.port == 9187)
        for spelling in ["OFF", " off", "false", ""] {
            #expect(throws: AdminSettingsError.self, "\(spelling)") { try AdminSettings.parse(listen: spelling, tokenFile: nil) }
        }
    }
}

struct DeliveryQueryTests {
    @Test func readsEveryParameter() throws {
        let query = try DeliveryQuery(parameters: [("status", "dead"), ("handler", "webhooks"), ("limit", "5")])
        #expect(query == DeliveryQuery(status: .status(.dead), handler: "webhooks", limit: 5))
        #expect(try DeliveryQuery(parameters: [("status", "paused")]) == DeliveryQuery(status: .paused))
        #expect(try DeliveryQuery(parameters: []) == DeliveryQuery())
    }

    @Test func namesTheParameterItCannotRead() {
        for (name, value) in [("status", "gone"), ("limit", "0"), ("limit", "1001"), ("limit", "ten"), ("handler", ""),
                              ("handler", "a b"), ("colour", "red")] {
            let error = #expect(throws: BadParameter.self, "\(name)=\(value)") {
                try DeliveryQuery(parameters: [(name, value)])
            }
            #expect(error?.parameter == name)
        }
    }
}

struct ActivityQueryTests {
    @Test func readsTheLimitAndRefusesAnythingElse() throws {
        #expect(try ActivityQuery(parameters: []).limit == ActivityQueries.defaultLimit)
        #expect(try ActivityQuery(parameters: [("limit", "100")]).limit == 100)
        for (name, value) in [("limit", "0"), ("limit", "101"), ("limit", "x"), ("status", "dead")] {
            let error = #expect(throws: BadParameter.self, "\(name)=\(value)") { try ActivityQuery(parameters: [(name, value)]) }
            #expect(error?.parameter == name)
        }
    }
}

/// The OpenAPI document and the routes the server registers name the same paths and methods.
struct OpenAPIDocumentTests {
    /// `(METHOD, path)` under `paths:`: a path key at two spaces, its methods at four.
    static func operations(_ yaml: String) -> Set<String> {
        var result: Set<String> = []
        var inPaths = false
        var path: String?
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") { inPaths = line == "paths:"; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                path = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let path,
                      let method = ["get:", "post:", "put:", "patch:", "delete:"].first(where: { line.dropFirst(4) == $0 }) {
                result.insert(method.dropLast().uppercased() + " " + path)
            }
        }
        return result
    }

    @Test func documentsExactlyTheServedRoutes() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/admin-openapi.yaml")
        let documented = Self.operations(try String(contentsOf: url, encoding: .utf8))
        let served = Set(AdminEndpoint.allCases.map { $0.method + " " + $0.path })
        #expect(documented == served, "only documented: \(documented.subtracting(served)); only served: \(served.subtracting(documented))")
    }
}
