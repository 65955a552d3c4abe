import Core
import Testing

@Suite struct HTTPURLShapeTests {
    @Test(arguments: [
        "http://example.com", "HTTPS://Example.com/path?q=1#f", "http://u:p@host:8080/x", "http://[::1]:65535/",
        "http://[fe80::1%25eth0]/", "https://127.0.0.1", "http://host:0",
    ])
    func accepted(_ url: String) {
        #expect(HTTPURLShape.isValid(url))
    }

    @Test(arguments: [
        "ftp://example.com", "file:///etc/passwd", "http://", "http:///path", "http://u:p@/x", "http://:80/x",
        "http://host:99999/x", "http://host:/x", "http://host:8o/x", "http://host:+80/x", "http://u:p@[::1/x",
        "http://[]/x", "http://[::1]x/", "http://ho]st/", "http://a:1:2/", "http://ex ample.com/", "http://host/\u{7F}",
        "http://host/a\r\nX-Injected: 1", " http://host/", "http://host:１２/",
    ])
    func refused(_ url: String) {
        #expect(!HTTPURLShape.isValid(url))
    }
}
