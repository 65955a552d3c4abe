-- Undoes 026: 019's apply_staged_message_buffers(), which marks each message once, in the
-- batch that buffered it. Marks still waiting for their rows are applied one last time.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DO $$ BEGIN
    IF to_regclass('public.buffered_messages') IS NOT NULL AND to_regclass('changerelay.buffer_message_marks') IS NOT NULL THEN
        UPDATE public.buffered_messages m
        SET buffer_id = (jsonb_populate_record(NULL::public.buffered_messages,
                                               jsonb_build_object('buffer_id', k.buffer_id))).buffer_id
        FROM changerelay.buffer_message_marks k
        WHERE m.id = (jsonb_populate_record(NULL::public.buffered_messages, jsonb_build_object('id', k.message_id))).id;
    END IF;
END $$;

DROP FUNCTION IF EXISTS changerelay.apply_kept_buffer_marks();
DROP TABLE IF EXISTS changerelay.buffer_message_marks;

CREATE OR REPLACE FUNCTION changerelay.apply_staged_message_buffers() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    applied integer;
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

    INSERT INTO changerelay.buffer_messages (buffer_id, position, message_id, record, content)
    SELECT buffer_id, message_position, message_id, message_record, message_content
    FROM pg_temp.message_buffer_staged
    WHERE kind = 'buffer' AND message_id IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- With a state database apart from the source, buffered_messages is not here to mark.
    IF to_regclass('public.buffered_messages') IS NOT NULL THEN
        UPDATE public.buffered_messages m
        SET buffer_id = (jsonb_populate_record(NULL::public.buffered_messages,
                                               jsonb_build_object('buffer_id', s.buffer_id))).buffer_id
        FROM pg_temp.message_buffer_staged s
        WHERE s.kind = 'buffer' AND s.message_id IS NOT NULL
          AND m.id = (jsonb_populate_record(NULL::public.buffered_messages, jsonb_build_object('id', s.message_id))).id;
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
