import ArgumentParser
import RelayConfiguration
import Core
import Replication
import Schema

struct Setup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply sql/ idempotently and create the publication, role and slot.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Folder holding the numbered migrations (default: the repository's sql/).")
    var sqlDir: String?

    func run() throws {
        let config = try options.load()
        do {
            let url = try config.requireSourceURL()
            guard let directory = sqlDir ?? SchemaInstaller.locateSQLDirectory() else { throw SetupError.sqlDirectoryMissing }
            let connection = try PostgresConnection(url: url)
            var progress = ProgressReporter(label: "setup", unit: "migrations")
            let applied = try SchemaInstaller(sqlDirectory: directory).apply(to: connection) { index, count, file in
                progress.update(done: Int64(index), total: Int64(count), detail: "applying " + file)
            }
            progress.finish("\(applied.count) migrations applied")
            print("applied \(applied.count) migrations from \(directory): \(applied.joined(separator: ", "))")
            // A state database of its own holds the service's tables (and the seed's log
            // tables the handlers write): `run` refuses one that lacks them.
            if let stateURL = config.stateDatabaseURL, stateURL != url {
                var stateProgress = ProgressReporter(label: "setup (state database)", unit: "migrations")
                let state = try SchemaInstaller(sqlDirectory: directory).apply(to: try PostgresConnection(url: stateURL)) {
                    index, count, file in stateProgress.update(done: Int64(index), total: Int64(count), detail: "applying " + file)
                }
                stateProgress.finish("\(state.count) migrations applied")
                print("applied \(state.count) migrations to the state database")
            }
            let publication = config.source.publication
            let added = try SchemaInstaller.ensurePublication(publication, on: connection)
            if publication != SchemaInstaller.defaultPublication {
                print("publication \(publication): " + (added.isEmpty ? "has every table of \(SchemaInstaller.defaultPublication)"
                    : "added \(added.count) tables of \(SchemaInstaller.defaultPublication)"))
            }
            let created = try SchemaInstaller.ensureSlot(config.source.slot, plugin: config.source.plugin, on: connection)
            print(created ? "created slot \(config.source.slot) (\(config.source.plugin))"
                          : "slot \(config.source.slot) already exists")
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
    }
}

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the source database; print each problem with the statement that fixes it.")

    @OptionGroup var options: ConfigOptions

    @Option(parsing: .unconditional, help: "The service's inactive slot retaining more WAL than this many bytes is a problem; another slot, a warning.")
    var maxRetainedBytes: Int64 = 1 << 30

    func validate() throws {
        guard maxRetainedBytes >= 0 else {
            throw ValidationError("--max-retained-bytes must be 0 or more, got \(maxRetainedBytes)")
        }
    }

    func run() throws {
        let config = try options.load()
        let findings: [Finding]
        do {
            let sourceURL = try config.requireSourceURL()
            let connection = try PostgresConnection(url: sourceURL)
            // The migrations are the state database's, where `run` and `replay` look for them.
            let state = try config.stateDatabaseURL.map { try PostgresConnection(url: $0) }
            findings = try Schema.Doctor(slot: config.source.slot, plugin: config.source.plugin,
                                         publication: config.source.publication,
                                         maxRetainedBytes: maxRetainedBytes).run(on: connection, state: state)
        } catch let error as CustomStringConvertible & Error {
            throw failure(error.description)
        }
        findings.forEach { print($0) }
        let problems = findings.filter(\.isProblem).count, warnings = findings.filter(\.isWarning).count
        print((problems == 0 ? "no problems found" : "\(problems) problem\(problems == 1 ? "" : "s") found")
            + (warnings == 0 ? "" : ", \(warnings) warning\(warnings == 1 ? "" : "s")"))
        if problems > 0 { throw ExitCode.failure }
    }
}
