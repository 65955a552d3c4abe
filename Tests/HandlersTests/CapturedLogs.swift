import Foundation
import Logging

/// Log records kept for a test to read.
final class CapturedLogs: @unchecked Sendable {
    struct Record {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    private let lock = NSLock()
    private var records: [Record] = []

    var logger: Logger {
        Logger(label: "test") { _ in CapturingHandler(logs: self) }
    }

    var all: [Record] { lock.withLock { records } }

    fileprivate func append(_ record: Record) {
        lock.withLock { records.append(record) }
    }
}

private struct CapturingHandler: LogHandler {
    let logs: CapturedLogs
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        logs.append(.init(level: event.level, message: "\(event.message)",
                          metadata: metadata.merging(event.metadata ?? [:]) { $1 }))
    }
}
