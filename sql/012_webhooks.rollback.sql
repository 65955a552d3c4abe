-- Undoes 012. Webhook deliveries still pending lose their link to their webhook_logs rows.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    DROP TABLE IF EXISTS changerelay.webhook_config_log;
    DROP FUNCTION IF EXISTS changerelay.insert_staged_webhook_logs();
    DROP TABLE IF EXISTS changerelay.webhook_log_ids;
    DROP TABLE IF EXISTS changerelay.webhook_logs_staged;
    DROP INDEX IF EXISTS changerelay.deliveries_endpoint_in_flight;
    IF to_regclass('changerelay.deliveries') IS NOT NULL THEN
        ALTER TABLE changerelay.deliveries DROP COLUMN IF EXISTS endpoint;
    END IF;
END $$;
