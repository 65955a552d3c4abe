import Testing

/// A spill directory that cannot take a file is refused at start, naming where it was set,
/// before any connection: it used to be found at the first transaction large enough to
/// spill, which then stopped the stream on every start.
@Suite struct SpillDirectoryTests {
    static let source = ["CHANGERELAY_SOURCE_DATABASE_URL": "postgresql://relay@127.0.0.1:1/app"]

    static let refusals: [(arguments: [String], environment: [String: String], message: String)] = [
        (["run"], ["CHANGERELAY_PIPELINE_SPILL_DIRECTORY": "/nonexistent"],
         "key 'pipeline.spill_directory' (environment CHANGERELAY_PIPELINE_SPILL_DIRECTORY): cannot create a change spill file in /nonexistent: No such file or directory"),
        (["run"], ["CHANGERELAY_PIPELINE_SPILL_DIRECTORY": "/etc/passwd"],
         "cannot create a change spill file in /etc/passwd: Not a directory"),
        (["tail"], ["TMPDIR": "/nonexistent"], "(environment TMPDIR, the default spill directory): cannot create a change spill file in /nonexistent"),
    ]

    @Test(arguments: refusals.indices)
    func aDirectoryThatCannotTakeASpillFileIsRefusedAtStart(_ index: Int) throws {
        let (arguments, environment, message) = Self.refusals[index]
        let result = try runChangeRelay(arguments, environment: Self.source.merging(environment) { $1 })
        #expect(result.status != 0, "\(arguments)")
        #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        #expect(!result.stderr.contains("cannot connect"), "\(arguments): \(result.stderr)")
    }
}
