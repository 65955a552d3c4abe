import Core
import Handlers
import Testing

/// Message windows decided by commit times alone: the cases a live stream, a backlog and
/// a replay must all agree on.
@Suite struct BufferBookTests {
    private static let windows = BufferBook.Windows(duration: .seconds(30), maxAge: .seconds(60), maxSize: 3)
    private static let start = PostgresTimestamp(microsecondsSince2000: 800_000_000_000_000)

    private static func at(_ seconds: Double) -> PostgresTimestamp {
        start.advanced(by: .microseconds(Int64(seconds * 1_000_000)))
    }

    private static func message(_ id: Int) -> BufferBook.Message {
        BufferBook.Message(id: String(id), record: #"{"id":\#(id)}"#, content: "m\(id)")
    }

    /// Closes what is due before `seconds`, then adds message `id` of `conversation`: the
    /// order the handler follows for every commit.
    private static func arrive(_ book: inout BufferBook, _ id: Int, conversation: String = "c1", at seconds: Double,
                               buffering: Bool = true) -> (closed: [BufferBook.Buffer], arrival: BufferBook.Arrival) {
        let closed = book.closeDue(before: at(seconds))
        let arrival = book.add(message(id), conversationID: conversation, at: at(seconds), buffering: buffering)
        return (closed, arrival)
    }

    /// A message id used again while the buffer it named is still open, in another
    /// conversation: the new buffer takes the id negated, then pushed on by 2^40, so that no
    /// two open buffers share a `message_buffer` row; a book restored with the same open
    /// buffers chooses the same ids. A uuid id is kept.
    @Test func aMessageIdUsedAgainWhileItsBufferIsOpenOpensABufferOfAnotherId() {
        var book = BufferBook(windows: Self.windows)
        _ = Self.arrive(&book, 100, conversation: "c1", at: 0)
        #expect(Self.arrive(&book, 100, conversation: "c2", at: 1).arrival.buffer.id == "-100")
        #expect(Self.arrive(&book, 100, conversation: "c3", at: 2).arrival.buffer.id == "-1099511627876")
        #expect(Self.arrive(&book, 100, conversation: "c1", at: 3).arrival.buffer.id == "100", "its own buffer: joined")
        var restored = BufferBook(windows: Self.windows, open: Array(book.open.values))
        #expect(Self.arrive(&restored, 100, conversation: "c4", at: 4).arrival.buffer.id == "-2199023255652")
        #expect(Set(book.closeDue(before: Self.at(100)).map(\.id)) == ["100", "-100", "-1099511627876"])

        var uuids = BufferBook(windows: Self.windows)
        let id = "6f1d4c1e-5b7a-5d0c-9a57-3f0c2b9e8d11"
        for conversation in ["c1", "c2"] {
            _ = uuids.add(BufferBook.Message(id: id, record: "{}", content: ""), conversationID: conversation, at: Self.at(0),
                          buffering: true)
        }
        #expect(uuids.open.values.map(\.id) == [id, id])
    }

    @Test func messagesWithinTheWindowJoinAndTheDeadlineFollowsTheLast() {
        var book = BufferBook(windows: Self.windows)
        #expect(Self.arrive(&book, 1, at: 0).arrival.buffer.id == "1")
        let second = Self.arrive(&book, 2, at: 29.5)
        #expect(second.closed.isEmpty && !second.arrival.closed)
        #expect(second.arrival.buffer.id == "1" && second.arrival.buffer.messages.map(\.id) == ["1", "2"])
        #expect(book.earliestDeadline == Self.at(59.5))
    }

    @Test func aMessageCommittedExactlyAtTheDeadlineJoinsAndOneLaterOpensANewBuffer() {
        var book = BufferBook(windows: Self.windows)
        _ = Self.arrive(&book, 1, at: 0)
        #expect(book.closeDue(before: Self.at(30)).isEmpty)
        #expect(Self.arrive(&book, 2, at: 30).arrival.buffer.messages.count == 2)
        let late = Self.arrive(&book, 3, at: 60.000001)
        #expect(late.closed.map(\.id) == ["1"] && late.closed.first?.messages.map(\.id) == ["1", "2"])
        #expect(late.arrival.buffer.id == "3" && late.arrival.buffer.messages.map(\.id) == ["3"])
    }

    @Test func maxAgeCapsAWindowThatKeepsGrowing() {
        var book = BufferBook(windows: BufferBook.Windows(duration: .seconds(30), maxAge: .seconds(60), maxSize: 100))
        for (index, second) in [0.0, 25, 50].enumerated() { _ = Self.arrive(&book, index + 1, at: second) }
        #expect(book.earliestDeadline == Self.at(60))
        let fourth = Self.arrive(&book, 4, at: 61)
        #expect(fourth.closed.first?.messages.count == 3 && fourth.arrival.buffer.id == "4")
    }

    @Test func aFullBufferClosesWithItsLastMessage() {
        var book = BufferBook(windows: Self.windows)
        _ = Self.arrive(&book, 1, at: 0)
        _ = Self.arrive(&book, 2, at: 1)
        let third = Self.arrive(&book, 3, at: 2)
        #expect(third.arrival.closed && third.arrival.buffer.messages.map(\.id) == ["1", "2", "3"])
        #expect(book.open.isEmpty && book.earliestDeadline == nil)
        #expect(Self.arrive(&book, 4, at: 3).arrival.buffer.id == "4")
    }

    @Test func withBufferingOffEveryMessageIsFlushedAlone() {
        var book = BufferBook(windows: Self.windows)
        let first = Self.arrive(&book, 1, at: 0, buffering: false)
        let second = Self.arrive(&book, 2, at: 0.5, buffering: false)
        #expect(first.arrival.closed && second.arrival.closed)
        #expect([first.arrival.buffer.id, second.arrival.buffer.id] == ["1", "2"])
        #expect(book.open.isEmpty)
    }

    @Test func conversationsHaveWindowsOfTheirOwnAndCloseInDeadlineOrder() {
        var book = BufferBook(windows: Self.windows)
        _ = Self.arrive(&book, 1, conversation: "b", at: 10)
        _ = Self.arrive(&book, 2, conversation: "a", at: 0)
        _ = Self.arrive(&book, 3, conversation: "c", at: 20)
        #expect(book.earliestDeadline == Self.at(30))
        // A commit after two deadlines closes both, the earlier first; the third stays open.
        let closed = book.closeDue(before: Self.at(45))
        #expect(closed.map(\.id) == ["2", "1"])
        #expect(book.open.keys.sorted() == ["c"])
    }

    /// A buffer that grew is due at its new deadline only: its earlier one is forgotten.
    @Test func aGrownBufferIsDueAtItsNewDeadline() {
        var book = BufferBook(windows: Self.windows)
        _ = Self.arrive(&book, 1, conversation: "a", at: 0)
        _ = Self.arrive(&book, 2, conversation: "b", at: 10)
        _ = Self.arrive(&book, 3, conversation: "a", at: 20)
        #expect(book.earliestDeadline == Self.at(40))
        #expect(book.closeDue(before: Self.at(45)).map(\.id) == ["2"])
        #expect(book.earliestDeadline == Self.at(50))
        #expect(book.closeDue(before: Self.at(49)).isEmpty)
        #expect(book.closeDue(before: Self.at(51)).map { $0.messages.map(\.id) } == [["1", "3"]])
        #expect(book.earliestDeadline == nil && book.open.isEmpty)
    }

    @Test func aRunOfCommitsGivesItsWindows() {
        let commits: [(Int, Double)] = [(1, 0), (2, 10), (3, 45), (4, 50), (5, 120)]
        var live = BufferBook(windows: Self.windows)
        var liveClosed: [[String]] = []
        for (id, second) in commits {
            liveClosed += Self.arrive(&live, id, at: second).closed.map { $0.messages.map(\.id) }
        }
        #expect(liveClosed == [["1", "2"], ["3", "4"]])
        #expect(live.open["c1"]?.messages.map(\.id) == ["5"])
    }
}
