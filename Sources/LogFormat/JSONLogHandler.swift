import Core
import Decoding
import Logging

/// `log.format = "json"`: one JSON object per line, so that a log shipper reads fields instead of
/// parsing the plain handler's free text. Every line has the same five members, `time` (RFC 3339,
/// UTC, milliseconds), `level`, `label`, `message` and `metadata`.
///
/// Metadata stays nested under `metadata` rather than flattened beside the others: a metadata key
/// such as `message` or `level` can then never duplicate a fixed member (which JSON parsers resolve
/// differently), and shippers address or flatten it themselves (`metadata.slot`). Metadata values
/// are strings, arrays and objects as logged, object keys sorted so that equal records print alike.
/// The source location is left out: the label names the component, and file and line change with
/// every edit, which would break queries on them.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: LogOutput

    public init(label: String, output: LogOutput = .standardError) {
        self.label = label
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let explicit = event.metadata { merged.merge(explicit) { $1 } }
        // The names swift-log's own StreamLogHandler gives an event's error.
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var writer = JSONWriter(capacity: 256)
        writer.beginObject()
        writer.key("time")
        writer.string(PostgresTimestamp.now.rfc3339Milliseconds)
        writer.key("level")
        writer.string(event.level.rawValue)
        writer.key("label")
        writer.string(label)
        writer.key("message")
        writer.string(event.message.description)
        writer.key("metadata")
        Self.write(.dictionary(merged), to: &writer)
        writer.endObject()
        writer.newline()
        output.write(writer.bytes)
    }

    private static func write(_ value: Logger.MetadataValue, to writer: inout JSONWriter) {
        switch value {
        case .string(let text):
            writer.string(text)
        case .stringConvertible(let item):
            writer.string(item.description)
        case .array(let elements):
            writer.beginArray()
            for element in elements { write(element, to: &writer) }
            writer.endArray()
        case .dictionary(let members):
            writer.beginObject()
            for (key, member) in members.sorted(by: { $0.key < $1.key }) {
                writer.key(key)
                write(member, to: &writer)
            }
            writer.endObject()
        }
    }
}
