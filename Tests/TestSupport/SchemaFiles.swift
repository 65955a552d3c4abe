import Foundation

/// The repository's `sql/` directory, and the migrations `changerelay setup` applies from it
/// in order: what a test against a real cluster runs to get the schema.
public enum SchemaFiles {
    public static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/sql"
    }()

    /// The text of each forward migration (`NNN_name.sql`, not its rollback), in order.
    public static func migrations() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
            .filter { $0.hasSuffix(".sql") && !$0.hasSuffix(".rollback.sql") && $0.first?.isNumber == true }
            .map { try String(contentsOfFile: directory + "/" + $0, encoding: .utf8) }
    }
}
