import Core
import Foundation
import Testing

/// A claim's process is looked up by the dispatchers of its own machine only: itself runs, a
/// pid whose start differs or that no process has is ended, another host's or PID
/// namespace's cannot be told.
struct ProcessIdentityTests {
    @Test func thisProcessRunsAndItsNameReadsBack() throws {
        let own = try #require(ProcessIdentity.current())
        #expect(own.pid == getpid())
        #expect(ProcessIdentity(parsing: own.description) == own)
        #expect(own.hasEnded(seenFrom: own) == false)
    }

    @Test func aPidReusedOrUnusedHasEndedAndAnotherMachinesCannotBeTold() throws {
        let own = try #require(ProcessIdentity.current())
        var reused = own
        reused.start += 1
        #expect(reused.hasEnded(seenFrom: own) == true)
        var vanished = own
        vanished.pid = 2_000_000_000
        #expect(vanished.hasEnded(seenFrom: own) == true)
        var elsewhere = own
        elsewhere.host += "-other"
        #expect(elsewhere.hasEnded(seenFrom: own) == nil)
        var otherNamespace = own
        otherNamespace.pidNamespace += "1"
        #expect(otherNamespace.hasEnded(seenFrom: own) == nil)
    }

    @Test func namesThatAreNotProcessesAreRefused() {
        for text in ["", "host|1|2", "host|1|x|3", "|1|2|3", "host||2|3", "host|1|2|3|4", "host|1|-|3"] {
            #expect(ProcessIdentity(parsing: text) == nil, "\(text)")
        }
    }
}
