import Core
import EmbeddedPostgres
import Replication
import Testing

/// "Is the state database the source?" asked of real servers, as `run` asks it.
@Suite struct DatabaseIdentityTests {
    @Test func oneDatabaseSpelledTwoWaysIsTheSameAndAnotherDatabaseIsNot() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let other = try LocalPostgres()
        try other.start()
        defer { try? other.stop() }
        try cluster.connect().execute("CREATE DATABASE state")
        let uri = cluster.url
        let conninfo = "host=localhost port=\(cluster.port) user=postgres dbname=postgres application_name=state"

        #expect(try DatabaseIdentity.sameDatabase(uri, conninfo))
        #expect(try !DatabaseIdentity.sameDatabase(uri, "postgresql://postgres@127.0.0.1:\(cluster.port)/state"))
        // Another cluster's database of the same name on the same host.
        #expect(try !DatabaseIdentity.sameDatabase(uri, other.url))
        let identity = try DatabaseIdentity(of: cluster.connect())
        #expect(identity.database == "postgres" && !identity.systemIdentifier.isEmpty)
    }

    /// A role with no grant at all may ask (PUBLIC may run `pg_control_system()`); where a
    /// host revoked that, the error names the grant that restores it, and the grant works.
    @Test func aRoleWithoutGrantsMayAskUnlessTheHostRevokedIt() throws {
        let cluster = try LocalPostgres()
        try cluster.start()
        defer { try? cluster.stop() }
        let admin = try cluster.connect()
        try admin.execute("CREATE ROLE changerelay LOGIN")
        let asRole = "postgresql://changerelay@127.0.0.1:\(cluster.port)/postgres"
        #expect(try DatabaseIdentity.sameDatabase(asRole, cluster.url))

        try admin.execute("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC")
        #expect {
            try DatabaseIdentity.sameDatabase(asRole, cluster.url)
        } throws: { error in
            guard case DatabaseIdentityError.controlDataDenied? = error as? DatabaseIdentityError else { return false }
            return "\(error)".contains("GRANT EXECUTE ON FUNCTION pg_control_system() TO changerelay")
        }
        try admin.execute("GRANT EXECUTE ON FUNCTION pg_control_system() TO changerelay")
        #expect(try DatabaseIdentity.sameDatabase(asRole, cluster.url))
    }
}
