/// The names of the service's own jobs in `changerelay.schedule_runs`. Every name under
/// `changerelay.` is reserved for them, so no configured schedule can claim a built-in
/// job's ticks, now or after a later version adds one.
public enum BuiltInJobNames {
    public static let reservedPrefix = "changerelay."
    public static let idempotencyLogCleanup = "changerelay.idempotency_log_cleanup"
    public static let deliveryRetention = "changerelay.delivery_retention"
    public static let bufferMarks = "changerelay.buffer_marks"
}
