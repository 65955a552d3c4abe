-- 012: webhook fan-out on the durable pipeline.
--
-- * deliveries.endpoint groups the deliveries of one receiver (a webhook config), so a
--   claim can keep at most webhooks.max_in_flight_per_endpoint of them in flight: an
--   endpoint that hangs holds only its own share of the dispatcher.
-- * webhook_logs rows are the seed's: its id may be an identity column that a COPY cannot
--   fill, so the planned rows are staged here and inserted by set-based SQL in the
--   checkpoint transaction, which also records which webhook_logs row each event's
--   webhook-id got (webhook_log_ids); each try then updates that row.
-- * The tables the built-in event rules read carry their whole old row, as the seed's
--   triggers saw OLD: "status changed to ended" needs the old status, and old_record is
--   the old row.
DO $$
DECLARE
    t text;
    part regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    FOREACH t IN ARRAY ARRAY['trip_collaborators', 'chat_sessions', 'flights', 'accommodations'] LOOP
        CONTINUE WHEN to_regclass(format('public.%I', t)) IS NULL;
        -- A partitioned table's partitions too (see 003).
        FOR part IN SELECT c.oid FROM pg_class c
                    WHERE c.oid IN (SELECT format('public.%I', t)::regclass UNION SELECT relid FROM pg_partition_tree(format('public.%I', t)::regclass))
                      AND c.relkind IN ('r', 'p') AND c.relreplident <> 'f' LOOP
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', part);
        END LOOP;
    END LOOP;
END $$;

ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS endpoint text;
CREATE INDEX IF NOT EXISTS deliveries_endpoint_in_flight ON changerelay.deliveries (endpoint)
    WHERE status = 'sending' AND endpoint IS NOT NULL;

CREATE TABLE IF NOT EXISTS changerelay.webhook_logs_staged (
    webhook_id text NOT NULL,
    config_id  text NOT NULL,
    event_type text NOT NULL,
    payload    text NOT NULL
);

CREATE TABLE IF NOT EXISTS changerelay.webhook_log_ids (
    webhook_id text PRIMARY KEY,
    log_id     text NOT NULL
);

-- Inserts the staged webhook_logs rows of a batch, in the checkpoint transaction, and maps
-- each event's webhook-id to the row it got. Row by row, since an INSERT's RETURNING cannot
-- name the staged row it came from; the id column may be the seed's identity or a uuid, so
-- values reach it through jsonb_populate_record, which converts them to its type. An event
-- whose webhook-id is mapped already (its batch was committed before) gets no second row.
CREATE OR REPLACE FUNCTION changerelay.insert_staged_webhook_logs() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    staged record;
    log_id text;
    inserted integer := 0;
BEGIN
    FOR staged IN DELETE FROM changerelay.webhook_logs_staged RETURNING * LOOP
        CONTINUE WHEN EXISTS (SELECT FROM changerelay.webhook_log_ids m WHERE m.webhook_id = staged.webhook_id);
        -- A config deleted since the event was committed (read again after a restart) keeps
        -- its log row, without the reference, as the seed's ON DELETE SET NULL would have left it.
        INSERT INTO public.webhook_logs (webhook_config_id, event_type, payload, attempt_count)
        SELECT c.id, staged.event_type, staged.payload::jsonb, 0
        FROM jsonb_populate_record(NULL::public.webhook_logs, jsonb_build_object('webhook_config_id', staged.config_id)) r
        LEFT JOIN public.webhook_configs c ON c.id = r.webhook_config_id
        RETURNING id::text INTO log_id;
        INSERT INTO changerelay.webhook_log_ids (webhook_id, log_id) VALUES (staged.webhook_id, log_id);
        inserted := inserted + 1;
    END LOOP;
    RETURN inserted;
END $$;

-- The webhook handler's config cache, as of the checkpoint (as 011 does for workflows): every
-- webhook_configs change the handler follows is appended in the checkpoint transaction, and
-- at start the cache is this log replayed, so after a crash the changes the slot sends again
-- are planned against the configs of their own commit. A first start seeds it from
-- webhook_configs ('baseline'). `unchanged` lists the TOASTed columns an UPDATE left alone.
CREATE TABLE IF NOT EXISTS changerelay.webhook_config_log (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    commit_lsn   pg_lsn      NOT NULL,
    change_index int         NOT NULL,
    operation    text        NOT NULL CHECK (operation IN ('baseline', 'upsert', 'delete', 'truncate')),
    config_id    text,
    name         text,
    url          text,
    events       text,
    headers      text,
    retry_config text,
    is_active    text,
    unchanged    text[]      NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS webhook_config_log_order ON changerelay.webhook_config_log (commit_lsn, change_index, id);
