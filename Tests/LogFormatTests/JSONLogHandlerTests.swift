import Foundation
import LogFormat
import Logging
import Testing

/// What `body` logs through a JSON handler, at level trace, into a temporary file.
func loggedBytes(_ body: (Logger) -> Void) throws -> Data {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)").path
    let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    try #require(descriptor >= 0)
    defer { unlink(path) }
    let output = LogOutput(descriptor: descriptor)
    var logger = Logger(label: "changerelay.test") { JSONLogHandler(label: $0, output: output) }
    logger.logLevel = .trace
    body(logger)
    close(descriptor)
    return try Data(contentsOf: URL(fileURLWithPath: path))
}

func loggedRecords(_ body: (Logger) -> Void) throws -> [[String: Any]] {
    try parseLines(loggedBytes(body))
}

/// Each line, parsed with Foundation's parser: a line that is not one JSON object, or holds a raw
/// control character (which a lenient parser might let through), fails the test.
func parseLines(_ data: Data) throws -> [[String: Any]] {
    #expect(data.last == 0x0A, "the last record ends its line")
    return try data.split(separator: 0x0A, omittingEmptySubsequences: false).dropLast().map { line in
        #expect(!line.contains { $0 < 0x20 }, "a raw control character in \(String(decoding: line, as: UTF8.self))")
        let parsed = try JSONSerialization.jsonObject(with: Data(line))
        return try #require(parsed as? [String: Any], "not an object: \(String(decoding: line, as: UTF8.self))")
    }
}

@Suite struct JSONLogHandlerTests {
    @Test(arguments: [
        "plain words",
        "a \"quoted\" word",
        #"back\slash and \n as text"#,
        "two\nlines\r\nand a\ttab",
        "controls \u{0} \u{1} \u{8} \u{C} \u{1B} \u{1F} \u{7F}",
        "emoji 🚀 and a family 👩‍👩‍👧 and é (e\u{301})",
        "line separators \u{2028}\u{2029} and </script>",
        String(decoding: [0x62, 0x61, 0x64, 0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80], as: UTF8.self),
        "",
    ])
    func textIsEscapedAndReadsBackUnchanged(text: String) throws {
        let records = try loggedRecords { logger in
            logger.info("\(text)", metadata: ["value": "\(text)", text: "key", "list": [.string(text)]])
        }
        let record = try #require(records.first)
        #expect(records.count == 1)
        #expect(record["message"] as? String == text)
        let metadata = try #require(record["metadata"] as? [String: Any])
        #expect(metadata["value"] as? String == text)
        #expect(metadata[text] as? String == "key")
        #expect(metadata["list"] as? [String] == [text])
    }

    @Test func everyRecordHasTheSameFiveMembers() throws {
        let records = try loggedRecords { logger in
            for level in Logger.Level.allCases { logger.log(level: level, "at \(level)") }
        }
        #expect(records.map { $0["level"] as? String } == Logger.Level.allCases.map(\.rawValue))
        #expect(Logger.Level.allCases.map(\.rawValue) == ["trace", "debug", "info", "notice", "warning", "error", "critical"])
        let time = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/
        for record in records {
            #expect(Set(record.keys) == ["time", "level", "label", "message", "metadata"])
            #expect(record["label"] as? String == "changerelay.test")
            #expect((record["metadata"] as? [String: Any])?.isEmpty == true)
            let text = try #require(record["time"] as? String)
            #expect(text.wholeMatch(of: time) != nil, "\(text)")
        }
        let logged = try #require(ISO8601DateFormatter().date(from: String((records[0]["time"] as? String ?? "").prefix(19)) + "Z"))
        #expect(abs(logged.timeIntervalSinceNow) < 60, "the time is now, in UTC")
    }

    @Test func nestedMetadataIsRenderedAsJSON() throws {
        struct Position: CustomStringConvertible { var description: String { "0/16B3748" } }
        let records = try loggedRecords { logger in
            var logger = logger
            logger[metadataKey: "slot"] = "changerelay"
            logger[metadataKey: "table"] = "public.jobs"
            logger.warning("nested", metadata: [
                "table": "public.items",
                "lsn": .stringConvertible(Position()),
                "keys": ["1", .stringConvertible(2), ["3"]],
                "delivery": ["id": "42", "handler": "echo", "tries": [["status": "503"], [:]]],
            ])
        }
        let metadata = try #require(records.first?["metadata"] as? [String: Any])
        #expect(metadata["slot"] as? String == "changerelay", "the logger's own metadata")
        #expect(metadata["table"] as? String == "public.items", "the call's metadata wins")
        #expect(metadata["lsn"] as? String == "0/16B3748")
        let keys = try #require(metadata["keys"] as? [Any])
        #expect(keys.count == 3 && keys[0] as? String == "1" && keys[1] as? String == "2" && keys[2] as? [String] == ["3"])
        let delivery = try #require(metadata["delivery"] as? [String: Any])
        #expect(delivery["id"] as? String == "42" && delivery["handler"] as? String == "echo")
        let tries = try #require(delivery["tries"] as? [[String: Any]])
        #expect(tries.count == 2 && tries[0]["status"] as? String == "503" && tries[1].isEmpty)
    }

    @Test func anEventsErrorIsKeptInTheMetadata() throws {
        struct Refused: Error, CustomStringConvertible { var description: String { "refused \"x\"" } }
        let records = try loggedRecords { $0.error("send failed", error: Refused()) }
        let metadata = try #require(records.first?["metadata"] as? [String: Any])
        #expect(metadata["error.message"] as? String == "refused \"x\"")
        #expect((metadata["error.type"] as? String)?.hasSuffix("Refused") == true)
    }

    @Test func metadataKeysPrintSortedSoEqualRecordsPrintAlike() throws {
        let line = String(decoding: try loggedBytes { $0.info("m", metadata: ["b": "2", "a": "1", "c": ["z": "1", "y": "2"]]) },
                          as: UTF8.self)
        #expect(line.hasSuffix(#","level":"info","label":"changerelay.test","message":"m","metadata":{"a":"1","b":"2","c":{"y":"2","z":"1"}}}"#
            + "\n"))
    }

    /// Eight threads log records longer than a pipe holds into one pipe at once: each write blocks
    /// part way while the reader drains, another writer's bytes would go in between, so only the
    /// output's lock keeps the lines whole.
    @Test func recordsFromManyThreadsNeverInterleave() throws {
        let pipe = Pipe()
        let output = LogOutput(descriptor: pipe.fileHandleForWriting.fileDescriptor)
        let received = Received()
        let reader = Thread { received.data = pipe.fileHandleForReading.readDataToEndOfFile(); received.done.signal() }
        reader.start()
        let threads = 8, perThread = 50
        let padding = String(repeating: "x", count: 100_000)
        let finished = DispatchGroup()
        for thread in 0..<threads {
            finished.enter()
            Thread {
                let logger = Logger(label: "changerelay.thread\(thread)") { JSONLogHandler(label: $0, output: output) }
                for index in 0..<perThread {
                    logger.info("record \(index) \"of\" thread \(thread)\n\(padding)", metadata: ["thread": "\(thread)", "index": "\(index)"])
                }
                finished.leave()
            }.start()
        }
        finished.wait()
        try pipe.fileHandleForWriting.close()
        received.done.wait()
        let records = try parseLines(received.data)
        #expect(records.count == threads * perThread)
        var seen: [String: [Int]] = [:]
        for record in records {
            let metadata = try #require(record["metadata"] as? [String: Any])
            let thread = try #require(metadata["thread"] as? String), index = try #require(metadata["index"] as? String)
            #expect(record["message"] as? String == "record \(index) \"of\" thread \(thread)\n\(padding)")
            seen[thread, default: []].append(Int(index) ?? -1)
        }
        #expect(seen.count == threads)
        #expect(seen.values.allSatisfy { $0 == Array(0..<perThread) }, "each thread's records arrive whole and in order")
    }
}

private final class Received: @unchecked Sendable {
    var data = Data()
    let done = DispatchSemaphore(value: 0)
}
