import Core

/// The open message buffers, one per conversation, and the rules that open, grow and close
/// them, decided by commit times only: the same stream gives the same windows whether it is
/// read live, after a backlog, after a crash or in a replay. No I/O and no clock.
///
/// A buffer closes `duration` after its last message's commit, at the latest `maxAge` after
/// its first's, and at once when it holds `maxSize` messages. A message committed after its
/// conversation's buffer closed opens a new one. Closing is only ever decided by a commit
/// later than the deadline (`closeDue(before:)`): then nothing committed before it is unread.
public struct BufferBook: Sendable, Hashable {
    public struct Windows: Sendable, Hashable {
        public var duration: Duration
        public var maxAge: Duration
        public var maxSize: Int

        public init(duration: Duration, maxAge: Duration, maxSize: Int) {
            self.duration = duration
            self.maxAge = maxAge
            self.maxSize = maxSize
        }
    }

    /// One `buffered_messages` row, as the flush sends it.
    public struct Message: Sendable, Hashable {
        public var id: String
        /// The row as JSON, rendered as `tail` renders values.
        public var record: String
        /// Its `content`, joined into the flush's `combinedContent`.
        public var content: String

        public init(id: String, record: String, content: String) {
            self.id = id
            self.record = record
            self.content = content
        }
    }

    public struct Buffer: Sendable, Hashable {
        /// The id of its first message: stable on every replay, and above every id the seed's
        /// own buffers took, since each of those had a message before it; negated when another
        /// open buffer has that id (`BufferBook.freeID`).
        public var id: String
        public var conversationID: String
        public var firstCommit: PostgresTimestamp
        public var lastCommit: PostgresTimestamp
        /// In commit order.
        public var messages: [Message]

        public init(id: String, conversationID: String, firstCommit: PostgresTimestamp, lastCommit: PostgresTimestamp,
                    messages: [Message]) {
            self.id = id
            self.conversationID = conversationID
            self.firstCommit = firstCommit
            self.lastCommit = lastCommit
            self.messages = messages
        }

        /// When its window closes: a message committed after this opens a new buffer.
        public func deadline(_ windows: Windows) -> PostgresTimestamp {
            min(lastCommit.advanced(by: windows.duration), firstCommit.advanced(by: windows.maxAge))
        }
    }

    /// What a message did to its conversation's buffers.
    public struct Arrival: Sendable, Hashable {
        /// The buffer the message is in, after it joined.
        public var buffer: Buffer
        /// Whether that buffer closed with it (full, or buffering is off).
        public var closed: Bool
    }

    public let windows: Windows
    /// By conversation id.
    public private(set) var open: [String: Buffer] = [:]
    /// Every open buffer's deadline; its top is always an open buffer's current one.
    private var deadlines = DeadlineHeap()

    public init(windows: Windows, open: [Buffer] = []) {
        self.windows = windows
        for buffer in open { track(buffer) }
    }

    /// The earliest deadline of an open buffer: when a tick must be written to close it.
    public var earliestDeadline: PostgresTimestamp? { deadlines.first?.deadline }

    /// Closes the buffers whose window closed before `commitTime`, in deadline order (then
    /// by id, so a replay closes them in the same order).
    public mutating func closeDue(before commitTime: PostgresTimestamp) -> [Buffer] {
        var due: [Buffer] = []
        while let next = deadlines.first, next.deadline < commitTime {
            _ = deadlines.popFirst()
            if let buffer = open.removeValue(forKey: next.conversationID) { due.append(buffer) }
            dropStaleDeadlines()
        }
        return due
    }

    /// Closes every open buffer, in deadline order (then by id): buffering was turned off,
    /// and each message from then on is flushed alone, after what its conversation buffered.
    public mutating func closeAll() -> [Buffer] {
        var closed: [Buffer] = []
        while let next = deadlines.popFirst() {
            guard let buffer = open[next.conversationID], buffer.id == next.bufferID,
                  buffer.deadline(windows) == next.deadline else { continue }
            open[next.conversationID] = nil
            closed.append(buffer)
        }
        return closed
    }

    /// A message committed at `commitTime` joins its conversation's open buffer, or opens
    /// one; with `buffering` off it is flushed alone. Buffers due before `commitTime` must
    /// have been closed first (`closeDue(before:)`).
    public mutating func add(_ message: Message, conversationID: String, at commitTime: PostgresTimestamp,
                             buffering: Bool) -> Arrival {
        var buffer: Buffer
        if var joined = open[conversationID] {
            precondition(joined.deadline(windows) >= commitTime, "a buffer due before the message was not closed")
            joined.messages.append(message)
            joined.lastCommit = commitTime
            buffer = joined
        } else {
            buffer = Buffer(id: freeID(for: message.id), conversationID: conversationID, firstCommit: commitTime,
                            lastCommit: commitTime, messages: [message])
        }
        let closes = !buffering || buffer.messages.count >= windows.maxSize
        if closes { open[conversationID] = nil } else { track(buffer) }
        dropStaleDeadlines()
        return Arrival(buffer: buffer, closed: closes)
    }

    /// The id a new buffer takes: its first message's, unless another conversation's open
    /// buffer has that id already (the application deleted that message and used its id
    /// again within the window, or restarted its identity): two open buffers with one id
    /// shared one `message_buffer` row, and the second one's messages were lost at the next
    /// restart. Then it is the id negated, pushed on by 2^40 while that is taken too: no
    /// identity sequence gives a negative id, and the choice depends only on the open buffers,
    /// which a restart or a replay restores as they were. An id that is not an integer (a
    /// uuid) is kept as it is.
    private func freeID(for messageID: String) -> String {
        let taken = Set(open.values.map(\.id))
        guard taken.contains(messageID), let number = Int64(messageID), number > 0 else { return messageID }
        var step: Int64 = 0
        while true {
            let (shifted, overflow) = number.addingReportingOverflow(step << 40)
            guard !overflow else { return messageID }
            let candidate = String(-shifted)
            if !taken.contains(candidate) { return candidate }
            step += 1
        }
    }

    private mutating func track(_ buffer: Buffer) {
        open[buffer.conversationID] = buffer
        deadlines.push(.init(deadline: buffer.deadline(windows), bufferID: buffer.id, conversationID: buffer.conversationID))
    }

    /// Pops entries that no longer name an open buffer's deadline (it grew, or closed).
    private mutating func dropStaleDeadlines() {
        while let top = deadlines.first {
            if let buffer = open[top.conversationID], buffer.id == top.bufferID, buffer.deadline(windows) == top.deadline {
                return
            }
            _ = deadlines.popFirst()
        }
    }
}
