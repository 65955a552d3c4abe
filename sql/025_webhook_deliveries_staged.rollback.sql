-- Undoes 025: binaries from before it stage webhook_logs rows apart (018, 022, 024) and find
-- each delivery's log row through webhook_log_ids, so the deliveries queued by 025's
-- statement, whose reports name their rows' ids, are mapped there first. An event mapped
-- already (logged before 025, its delivery swept by retention, then sent again by a replay)
-- is mapped to the row of the delivery that exists now.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id)
SELECT report->'webhook_log'->>'webhook_id', report->'webhook_log'->>'id'
FROM changerelay.deliveries
WHERE report->'webhook_log' ? 'id'
ON CONFLICT (webhook_id) DO UPDATE SET log_id = EXCLUDED.log_id;

DROP FUNCTION IF EXISTS changerelay.create_webhook_deliveries_staging(), changerelay.prepare_webhook_deliveries();
