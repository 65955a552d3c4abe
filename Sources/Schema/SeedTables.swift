/// The application tables ChangeRelay reads, and what each needs from Postgres.
public enum SeedTables {
    /// Members of the publication (`sql/` creates it with these).
    public static let published = [
        "user_conversations", "jobs", "automation_workflows", "habit_tracker", "trip_collaborators",
        "chat_sessions", "chat_messages", "flights", "accommodations", "webhook_configs", "buffered_messages",
        "automation_execution_logs", "feature_flags",
    ]

    /// Members published with a row filter: of the execution log, the automations' rate
    /// limit needs only the completed runs.
    public static let rowFilters = ["automation_execution_logs": "status = 'completed'"]

    /// Handlers compare old and new values of these, so they need the whole old row (and a
    /// row filter on UPDATEs may only name replica-identity columns); the webhook event
    /// rules read the old row of the last four ("status changed to", `old_record`).
    public static let needFullIdentity = ["jobs", "habit_tracker", "user_conversations", "automation_execution_logs",
                                          "trip_collaborators", "chat_sessions", "flights", "accommodations"]

    /// The application tables the handlers write their effects and logs into (`sql/005`
    /// grants them to `changerelay`): a role that cannot write one stops the stream at the
    /// first batch that does.
    public static let written = ["trigger_execution_logs", "automation_execution_logs", "communication_logs",
                                 "idempotency_log", "webhook_logs", "children", "weeks", "habits", "habit_records",
                                 "message_buffer", "buffer_processing_jobs"]

    /// Columns the handlers update in tables they otherwise only read (`sql/005` grants
    /// them): a buffered message's buffer, and the config a 410 Gone sets inactive.
    public static let columnsUpdated: [(table: String, column: String)] = [
        ("buffered_messages", "buffer_id"), ("webhook_configs", "is_active"), ("webhook_configs", "updated_at"),
    ]
}
