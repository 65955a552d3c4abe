import Core

/// The slot's checkpoint is not where this process's planner loaded it: another instance
/// streamed the slot in between. The process rebuilds its planner (handlers included) from
/// the stored checkpoint before it streams; `run` does so in place.
public struct CheckpointMoved: Error, CustomStringConvertible {
    public var slot: String
    public var stored: LSN
    public var loaded: LSN

    public var description: String {
        "the checkpoint of slot \(slot) moved from \(loaded) to \(stored) while another instance streamed it; "
            + "the planner's state is reloaded as of \(stored)"
    }
}
