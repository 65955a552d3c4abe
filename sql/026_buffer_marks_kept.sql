-- 026: a message's buffer_id is never lost to the instant between its commit reaching the
-- stream and its row becoming visible to other sessions.
--
-- apply_staged_message_buffers() set buffered_messages.buffer_id with one UPDATE in the
-- checkpoint transaction that opened or joined the buffer. A message committed an instant
-- before (the walsender sends a commit once it is flushed, which comes before it is visible),
-- or held back by a synchronous standby, had no visible row yet: the UPDATE found nothing and
-- the mark was gone for good, while the buffer itself went on and was flushed. Now a mark that
-- finds no row is kept in changerelay.buffer_message_marks and tried again by every later
-- call (each batch with a buffering step: a later message, or the buffer's own flush) until
-- the row is there; a mark applied leaves the table.
--
-- The function also moves message_buffer's identity past the ids it inserts (a buffer's id
-- is its first message's): until now the sequence stayed where the seed left it, and a row
-- inserted later by identity failed on a duplicate key.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- The role that runs the service moves message_buffer's identity past the ids it inserts.
DO $$ BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'changerelay')
       AND to_regclass('public.message_buffer') IS NOT NULL
       AND pg_get_serial_sequence('public.message_buffer', 'id') IS NOT NULL THEN
        EXECUTE format('GRANT USAGE, SELECT, UPDATE ON SEQUENCE %s TO changerelay',
                       pg_get_serial_sequence('public.message_buffer', 'id'));
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS changerelay.buffer_message_marks (
    -- The ids as text, as the staging has them: the seed's columns may be bigint or uuid.
    message_id text        PRIMARY KEY,
    buffer_id  text        NOT NULL,
    staged_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION changerelay.apply_staged_message_buffers() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    applied integer;
    identity_sequence text := pg_get_serial_sequence('public.message_buffer', 'id');
    highest bigint;
    used bigint;
BEGIN
    INSERT INTO changerelay.message_buffering_state (buffering_enabled, changed_at_lsn)
    SELECT buffering, event_lsn FROM pg_temp.message_buffer_staged
    WHERE kind = 'flag' ORDER BY event_lsn DESC, event_index DESC LIMIT 1
    ON CONFLICT (singleton) DO UPDATE
        SET buffering_enabled = EXCLUDED.buffering_enabled, changed_at_lsn = EXCLUDED.changed_at_lsn;

    SELECT count(*) INTO applied FROM pg_temp.message_buffer_latest;

    UPDATE public.message_buffer b
    SET status = l.status, message_count = l.message_count, buffer_start_time = l.buffer_start_time,
        last_message_at = l.last_message_at, flush_due_at = l.flush_due_at
    FROM pg_temp.message_buffer_latest l
    WHERE b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object('id', l.buffer_id))).id;

    INSERT INTO public.message_buffer (id, conversation_id, status, message_count, buffer_start_time,
                                       last_message_at, flush_due_at)
    OVERRIDING SYSTEM VALUE
    SELECT r.id, r.conversation_id, l.status, l.message_count, l.buffer_start_time, l.last_message_at, l.flush_due_at
    FROM pg_temp.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.message_buffer,
        jsonb_build_object('id', l.buffer_id, 'conversation_id', l.conversation_id)) r
    WHERE NOT EXISTS (SELECT FROM public.message_buffer b WHERE b.id = r.id);

    -- Rows inserted with ids of their own leave the table's identity behind them: it is moved
    -- past them, so a row someone else inserts later (the seed's code, after a rollback) gets
    -- an id of its own instead of failing on one of these. (A uuid id has no sequence.)
    -- A role that may not move it leaves it, with a warning: the buffers themselves are written.
    IF identity_sequence IS NOT NULL THEN
        SELECT max(l.buffer_id::bigint) INTO highest FROM pg_temp.message_buffer_latest l WHERE l.buffer_id ~ '^[0-9]{1,18}$';
        IF highest IS NOT NULL THEN
            BEGIN
                -- The last id handed out (or one below the first, before any): never moved back.
                EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM %s', identity_sequence)
                INTO used;
                IF highest > used THEN
                    PERFORM setval(identity_sequence::regclass, highest);
                END IF;
            EXCEPTION WHEN insufficient_privilege THEN
                RAISE WARNING 'message_buffer''s identity stays behind the buffers'' ids: %', SQLERRM;
            END;
        END IF;
    END IF;

    INSERT INTO changerelay.buffer_messages (buffer_id, position, message_id, record, content)
    SELECT buffer_id, message_position, message_id, message_record, message_content
    FROM pg_temp.message_buffer_staged
    WHERE kind = 'buffer' AND message_id IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- With a state database apart from the source, buffered_messages is not here to mark.
    -- A message's row may not be visible yet (its commit reached the stream an instant
    -- before other sessions could see it): every mark goes through buffer_message_marks, and
    -- one that finds no row stays there, tried again by each later call and the hourly job.
    IF to_regclass('public.buffered_messages') IS NOT NULL THEN
        -- A mark still kept for the same id is an earlier message's whose row was deleted
        -- before it could be marked: the id's new message takes its place (DO NOTHING marked
        -- the new row with the old message's buffer). Of one id staged twice in a batch (used
        -- again within it), the later message's. A batch read again stages the same marks.
        INSERT INTO changerelay.buffer_message_marks (message_id, buffer_id)
        SELECT DISTINCT ON (s.message_id) s.message_id, s.buffer_id FROM pg_temp.message_buffer_staged s
        WHERE s.kind = 'buffer' AND s.message_id IS NOT NULL
        ORDER BY s.message_id, s.event_lsn DESC, s.event_index DESC
        ON CONFLICT (message_id) DO UPDATE SET buffer_id = EXCLUDED.buffer_id, staged_at = EXCLUDED.staged_at;
        PERFORM changerelay.apply_kept_buffer_marks();
    END IF;

    INSERT INTO public.buffer_processing_jobs (buffer_id, status, attempts)
    SELECT r.buffer_id, 'pending', 0
    FROM pg_temp.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.buffer_processing_jobs,
        jsonb_build_object('buffer_id', l.buffer_id)) r
    WHERE l.status = 'processing'
      AND NOT EXISTS (SELECT FROM public.buffer_processing_jobs j WHERE j.buffer_id = r.buffer_id);

    DELETE FROM changerelay.buffer_messages m
    USING pg_temp.message_buffer_latest l
    WHERE l.status = 'processing' AND m.buffer_id = l.buffer_id;
    RETURN applied;
END $$;

-- Applies the marks whose rows are visible and drops them; the others stay. Called by each
-- batch with a buffering step, and by the hourly built-in job `changerelay.buffer_marks`: a
-- mark kept by the batch that also flushed its buffer (at max_size, or with buffering off)
-- may see no later batch for a long time. Returns the marks applied.
CREATE OR REPLACE FUNCTION changerelay.apply_kept_buffer_marks() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    applied integer;
BEGIN
    IF to_regclass('public.buffered_messages') IS NULL THEN
        RETURN 0;
    END IF;
    WITH marked AS (
        UPDATE public.buffered_messages m
        SET buffer_id = (jsonb_populate_record(NULL::public.buffered_messages,
                                               jsonb_build_object('buffer_id', k.buffer_id))).buffer_id
        FROM changerelay.buffer_message_marks k
        WHERE m.id = (jsonb_populate_record(NULL::public.buffered_messages, jsonb_build_object('id', k.message_id))).id
        RETURNING k.message_id)
    DELETE FROM changerelay.buffer_message_marks k USING marked WHERE k.message_id = marked.message_id;
    GET DIAGNOSTICS applied = ROW_COUNT;
    RETURN applied;
END $$;
