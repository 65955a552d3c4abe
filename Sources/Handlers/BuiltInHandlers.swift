import PlannedEffects

/// What the handlers built into ChangeRelay share with the commands that serve them.
public enum BuiltInHandlers {
    /// Every log a built-in handler's deliveries may keep current, whether or not that
    /// handler is configured now: `deliveries retry` re-queues whatever an earlier run
    /// planned, so it must know them all. A handler that adds a log adds it here.
    public static let deliveryLogs: Set<DeliveryLog> = [.triggerAttempts, .automationExecution, .webhookLog,
                                                        .bufferProcessingJob]
}
