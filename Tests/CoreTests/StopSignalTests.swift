import Core
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite struct StopSignalTests {
    @Test func aSleepRunsItsCourseWhenNoStopIsAsked() {
        let stop = StopSignal()
        let clock = ContinuousClock()
        let started = clock.now
        #expect(stop.sleep(for: .milliseconds(30)) == false)
        #expect(clock.now - started >= .milliseconds(30))
        #expect(!stop.isRequested)
    }

    @Test func aStopWakesASleepAtOnce() {
        let stop = StopSignal()
        // Asked while the sleep below is under way.
        let asker = startThread {
            sleepThread(for: .milliseconds(50))
            stop.request()
        }!
        let clock = ContinuousClock()
        let started = clock.now
        // An hour-long sleep can only end this test by being woken.
        #expect(stop.sleep(for: .seconds(3600)) == true)
        #expect(clock.now - started < .seconds(3600))
        pthread_join(asker, nil)
    }

    @Test func aStopStaysAskedAndItsDescriptorStaysReadable() {
        let stop = StopSignal()
        stop.request()
        stop.request()
        #expect(stop.isRequested)
        #expect(stop.sleep(for: .seconds(3600)) == true)
        var watch = pollfd(fd: stop.descriptor, events: Int16(POLLIN), revents: 0)
        #expect(poll(&watch, 1, 0) == 1)
        #expect(poll(&watch, 1, 0) == 1)
    }
}
