import Core
import Testing

struct ListenAddressTests {
    @Test func readsHostAndPortInEverySpelling() throws {
        #expect(try ListenAddress(parsing: "127.0.0.1:9187") == ListenAddress(host: "127.0.0.1", port: 9187))
        #expect(try ListenAddress(parsing: "[::1]:0") == ListenAddress(host: "::1", port: 0))
        #expect(try ListenAddress(parsing: "localhost:80").host == "localhost")
        #expect(try ListenAddress(parsing: "[::1]:9187").description == "[::1]:9187")
    }

    @Test func refusesWhatIsNotHostAndPort() {
        for text in ["9187", "127.0.0.1", ":9187", "127.0.0.1:65536", "127.0.0.1:x", "::1:9187", "[::1]9187", "[::1:9187",
                     "127.0.0.1:+80", "127.0.0.1:-0", "127.0.0.1: 80", "127.0.0.1:"] {
            #expect(throws: ListenAddressError.self, "\(text)") { try ListenAddress(parsing: text) }
        }
    }

    @Test func onlyLoopbackAddressesCountAsLoopback() throws {
        for text in ["127.0.0.1:1", "127.9.9.9:1", "[::1]:1", "localhost:1"] {
            #expect(try ListenAddress(parsing: text).isLoopback, "\(text)")
        }
        for text in ["0.0.0.0:1", "10.0.0.1:1", "[::]:1", "[::ffff:127.0.0.1]:1", "example.com:1", "128.0.0.1:1"] {
            #expect(try !ListenAddress(parsing: text).isLoopback, "\(text)")
        }
    }
}
