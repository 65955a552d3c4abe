import Core

/// The open buffers' deadlines, earliest first, so that the check every transaction makes
/// ("is anything due before this commit?") costs nothing however many buffers are open.
/// A buffer that grows pushes its new deadline and leaves the old entry behind; the book
/// drops such stale entries when they reach the top.
struct DeadlineHeap: Sendable, Hashable {
    struct Entry: Sendable, Hashable, Comparable {
        var deadline: PostgresTimestamp
        var bufferID: String
        var conversationID: String

        /// By deadline, then by buffer id: the order buffers are closed in, on every replay.
        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.bufferID) < (rhs.deadline, rhs.bufferID)
        }
    }

    private var entries: [Entry] = []

    var first: Entry? { entries.first }

    mutating func push(_ entry: Entry) {
        entries.append(entry)
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child] < entries[parent] else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> Entry? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let first = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count, entries[left] < entries[smallest] { smallest = left }
            if right < entries.count, entries[right] < entries[smallest] { smallest = right }
            guard smallest != parent else { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}
