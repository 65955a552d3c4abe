import Core
import Foundation
import Synchronization
import Testing

@Suite struct POSIXThreadTests {
    @Test func aJoinableThreadRunsTheBodyOnItsOwnThread() throws {
        let caller = pthread_self()
        let ranElsewhere = Atomic<Bool>(false)
        let thread = try #require(startThread { ranElsewhere.store(pthread_equal(pthread_self(), caller) == 0, ordering: .relaxed) })
        #expect(pthread_join(thread, nil) == 0)
        let ran = ranElsewhere.load(ordering: .relaxed)
        #expect(ran)
    }

    @Test func aDetachedThreadRunsTheBody() throws {
        let done = DispatchSemaphore(value: 0)
        try #require(startThread(detached: true) { done.signal() } != nil)
        #expect(done.wait(timeout: .now() + 10) == .success)
    }
}
