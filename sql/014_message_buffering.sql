-- 014: message buffering on the durable pipeline (what seed 002's buffer tables and its
-- pg_cron poll of buffer-processor did).
--
-- * feature_flags joins the publication: the handler follows `message_buffering` from the
--   commit that changes it, and keeps the value as of its checkpoint in
--   message_buffering_state.
-- * buffer_messages holds the messages of the buffers still open, in commit order, so a
--   restart rebuilds them exactly as the checkpoint left them (and a flush still sends a
--   message deleted from buffered_messages since it was buffered).
-- * message_buffer_staged receives a batch's steps (a message joined a buffer, a buffer
--   closed, the flag changed); apply_staged_message_buffers() applies them in the
--   checkpoint transaction.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF EXISTS (SELECT FROM pg_publication WHERE pubname = 'changerelay_pub')
       AND to_regclass('public.feature_flags') IS NOT NULL
       AND NOT EXISTS (SELECT FROM pg_publication_tables
                       WHERE pubname = 'changerelay_pub' AND schemaname = 'public' AND tablename = 'feature_flags')
       AND NOT EXISTS (SELECT FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid  -- see 004
                       WHERE p.pubname = 'changerelay_pub' AND r.prrelid = 'public.feature_flags'::regclass) THEN
        ALTER PUBLICATION changerelay_pub ADD TABLE public.feature_flags;
    END IF;
END $$;

CREATE TABLE IF NOT EXISTS changerelay.message_buffering_state (
    singleton         boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    buffering_enabled boolean NOT NULL,
    changed_at_lsn    pg_lsn  NOT NULL
);

CREATE TABLE IF NOT EXISTS changerelay.buffer_messages (
    buffer_id  text NOT NULL,
    position   int  NOT NULL,
    message_id text NOT NULL,
    record     text NOT NULL,
    content    text NOT NULL,
    PRIMARY KEY (buffer_id, position)
);

CREATE UNLOGGED TABLE IF NOT EXISTS changerelay.message_buffer_staged (
    kind              text    NOT NULL CHECK (kind IN ('buffer', 'flag')),
    event_lsn         pg_lsn  NOT NULL,
    event_index       int     NOT NULL,
    buffer_id         text,
    conversation_id   text,
    status            text,
    message_count     int,
    buffer_start_time timestamptz,
    last_message_at   timestamptz,
    flush_due_at      timestamptz,
    message_id        text,
    message_position  int,
    message_record    text,
    message_content   text,
    buffering         boolean
);

-- Each staged buffer as the batch's last step on it left it.
CREATE OR REPLACE VIEW changerelay.message_buffer_latest AS
SELECT DISTINCT ON (buffer_id) * FROM changerelay.message_buffer_staged
WHERE kind = 'buffer' ORDER BY buffer_id, event_lsn DESC, event_index DESC;

-- Applies and empties message_buffer_staged. Each buffer ends the batch as its last step
-- left it; existing rows are updated before new ones are inserted, so a conversation's
-- closed buffer has left 'active' before its next one takes that place in the seed's
-- unique index. Ids reach the seed's columns through jsonb_populate_record, which
-- converts the text to each column's own type.
CREATE OR REPLACE FUNCTION changerelay.apply_staged_message_buffers() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    applied integer;
BEGIN
    INSERT INTO changerelay.message_buffering_state (buffering_enabled, changed_at_lsn)
    SELECT buffering, event_lsn FROM changerelay.message_buffer_staged
    WHERE kind = 'flag' ORDER BY event_lsn DESC, event_index DESC LIMIT 1
    ON CONFLICT (singleton) DO UPDATE
        SET buffering_enabled = EXCLUDED.buffering_enabled, changed_at_lsn = EXCLUDED.changed_at_lsn;

    SELECT count(*) INTO applied FROM changerelay.message_buffer_latest;

    UPDATE public.message_buffer b
    SET status = l.status, message_count = l.message_count, buffer_start_time = l.buffer_start_time,
        last_message_at = l.last_message_at, flush_due_at = l.flush_due_at
    FROM changerelay.message_buffer_latest l
    WHERE b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object('id', l.buffer_id))).id;

    INSERT INTO public.message_buffer (id, conversation_id, status, message_count, buffer_start_time,
                                       last_message_at, flush_due_at)
    OVERRIDING SYSTEM VALUE
    SELECT r.id, r.conversation_id, l.status, l.message_count, l.buffer_start_time, l.last_message_at, l.flush_due_at
    FROM changerelay.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.message_buffer,
        jsonb_build_object('id', l.buffer_id, 'conversation_id', l.conversation_id)) r
    WHERE NOT EXISTS (SELECT FROM public.message_buffer b WHERE b.id = r.id);

    INSERT INTO changerelay.buffer_messages (buffer_id, position, message_id, record, content)
    SELECT buffer_id, message_position, message_id, message_record, message_content
    FROM changerelay.message_buffer_staged
    WHERE kind = 'buffer' AND message_id IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- With a state database apart from the source, buffered_messages is not here to mark.
    IF to_regclass('public.buffered_messages') IS NOT NULL THEN
        UPDATE public.buffered_messages m
        SET buffer_id = (jsonb_populate_record(NULL::public.buffered_messages,
                                               jsonb_build_object('buffer_id', s.buffer_id))).buffer_id
        FROM changerelay.message_buffer_staged s
        WHERE s.kind = 'buffer' AND s.message_id IS NOT NULL
          AND m.id = (jsonb_populate_record(NULL::public.buffered_messages, jsonb_build_object('id', s.message_id))).id;
    END IF;

    INSERT INTO public.buffer_processing_jobs (buffer_id, status, attempts)
    SELECT r.buffer_id, 'pending', 0
    FROM changerelay.message_buffer_latest l
    CROSS JOIN LATERAL jsonb_populate_record(NULL::public.buffer_processing_jobs,
        jsonb_build_object('buffer_id', l.buffer_id)) r
    WHERE l.status = 'processing'
      AND NOT EXISTS (SELECT FROM public.buffer_processing_jobs j WHERE j.buffer_id = r.buffer_id);

    DELETE FROM changerelay.buffer_messages m
    USING changerelay.message_buffer_latest l
    WHERE l.status = 'processing' AND m.buffer_id = l.buffer_id;

    DELETE FROM changerelay.message_buffer_staged;
    RETURN applied;
END $$;
