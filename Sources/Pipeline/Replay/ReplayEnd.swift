import Core

/// Where a replay stops, and why there. The end is inclusive: a transaction is replayed
/// when its commit ends at or before it, the same test the checkpoint uses, so a replay to
/// L followed by one from L leaves no transaction out and handles none twice.
///
/// Never past the live service. The live service plans every transaction that ends past its
/// position (the larger of its checkpoint and its slot's confirmed position: its stream
/// starts at the one, its committer skips through the other) and COPYs the keys straight
/// into `changerelay.deliveries`. Had a replay planned one of those keys first, that batch
/// would fail on the unique key, and fail again on every restart: the live service would be
/// stuck. So the end is capped there; what lies past it, the live service plans itself.
///
/// Never past the server's WAL end at the start either: a `--to-lsn` in the future would
/// otherwise make the replay wait for WAL that may never come.
public struct ReplayEnd: Sendable, Equatable {
    public enum Limit: Sendable, Equatable {
        /// `--to-lsn`.
        case requested
        /// The server's WAL end when the replay started: the default, and the cap of a `--to-lsn` past it.
        case walEnd
        /// The live service's position: its slot (`source.slot`) plans what lies past it.
        case liveService(slot: String)
    }

    public var lsn: LSN
    public var limit: Limit
    /// The `--to-lsn` asked for, when one was.
    public var requested: LSN?

    /// Where the live service stands: nil when its slot does not exist, which replay accepts
    /// only with a `--to-lsn` (`ReplayError.noLiveSlot`): a slot created later starts beyond
    /// the WAL end of now, but a live service reading a slot under another name than the
    /// configured one would be passed unseen.
    public struct LivePosition: Sendable, Equatable {
        public var slot: String
        public var lsn: LSN

        public init(slot: String, lsn: LSN) {
            self.slot = slot
            self.lsn = lsn
        }
    }

    public static func decide(requested: LSN?, walEnd: LSN, live: LivePosition?) -> ReplayEnd {
        var end = if let requested, requested <= walEnd {
            ReplayEnd(lsn: requested, limit: .requested, requested: requested)
        } else {
            ReplayEnd(lsn: walEnd, limit: .walEnd, requested: requested)
        }
        if let live, live.lsn < end.lsn {
            end.lsn = live.lsn
            end.limit = .liveService(slot: live.slot)
        }
        return end
    }

    /// One line for the command's report: the end, and why it is there.
    public var explanation: String {
        switch limit {
        case .requested:
            return "to \(lsn), inclusive (--to-lsn)"
        case .walEnd:
            return "to \(lsn), inclusive: the server's WAL end when the replay started"
                + (requested.map { " (--to-lsn \($0) lies past it)" } ?? "")
        case .liveService(let slot):
            return "to \(lsn), inclusive: capped at the live service's position (slot \(slot))"
                + (requested.map { " (--to-lsn \($0) lies past it)" } ?? "") + "; "
                + "what lies past it the live service plans itself, and a key planned here first would stop its batches"
        }
    }
}
