import Core
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

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
        // The same host name on another machine (or after a reboot): its pids are not these.
        var otherBoot = own
        otherBoot.boot += "-other"
        #expect(otherBoot.hasEnded(seenFrom: own) == nil)
    }

    /// A child killed and not yet reaped is a zombie with its start time: it has ended.
    @Test func aZombieHasEnded() throws {
        let own = try #require(ProcessIdentity.current())
        // posix_spawn, not Foundation's Process, which reaps its children by itself.
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sleep"), strdup("30"), nil]
        defer { arguments.forEach { free($0) } }
        try #require(posix_spawn(&pid, "/bin/sleep", nil, nil, arguments, nil) == 0)
        defer { var status: Int32 = 0; waitpid(pid, &status, 0) }
        let stat = try #require(try FileHandle(forReadingAtPath: "/proc/\(pid)/stat")?.readToEnd())
        let fields = stat[stat.index(after: stat.lastIndex(of: UInt8(ascii: ")"))!)...].split(separator: UInt8(ascii: " "))
        var sleeper = own
        sleeper.pid = pid
        sleeper.start = try #require(UInt64(String(decoding: fields[19], as: UTF8.self)))
        #expect(sleeper.hasEnded(seenFrom: own) == false)
        kill(pid, SIGKILL)
        // Not reaped (no waitpid yet): its entry stays, in state Z, with its start time.
        let deadline = ContinuousClock.now.advanced(by: .seconds(10))
        while sleeper.hasEnded(seenFrom: own) != true {
            try #require(ContinuousClock.now < deadline, "the killed child still reads as running")
            usleep(10_000)
        }
    }

    @Test func namesThatAreNotProcessesAreRefused() {
        for text in ["", "host|b|1|2", "host|b|1|x|3", "|b|1|2|3", "host||1|2|3", "host|b||2|3", "host|b|1|2|3|4", "host|b|1|-|3"] {
            #expect(ProcessIdentity(parsing: text) == nil, "\(text)")
        }
    }
}
