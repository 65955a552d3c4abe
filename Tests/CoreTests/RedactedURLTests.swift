import Core
import Testing

@Suite struct RedactedURLTests {
    @Test(arguments: [
        ("https://hooks.example.com/in", "https://hooks.example.com/in"),
        ("https://alice:hunter2@hooks.example.com:8443/in", "https://<redacted>@hooks.example.com:8443/in"),
        ("https://h.example/in?sig=QS4Frank&v=2", "https://h.example/in?sig=<redacted>&v=<redacted>"),
        ("https://h.example/in?t0ken", "https://h.example/in?<redacted>"),
        ("https://h.example/in?a=1&&b", "https://h.example/in?a=<redacted>&&<redacted>"),
        ("https://h.example/in#secret", "https://h.example/in#<redacted>"),
        ("https://u@h.example?k=v#f", "https://<redacted>@h.example?k=<redacted>#<redacted>"),
        ("not a url", "not a url"),
    ])
    func credentialsAreLeftOut(url: String, shown: String) {
        #expect(redactedURL(url) == shown)
    }
}
