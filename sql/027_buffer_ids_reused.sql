-- 027: a buffer whose id an application used again.
--
-- A buffer's id is its first message's (stable on every replay). An application may use a
-- message id again: rows deleted and inserted with their ids, TRUNCATE ... RESTART IDENTITY. The
-- new buffer then met the old one's message_buffer row, and apply_staged_message_buffers()
-- updated it: a finished buffer made active again under another conversation (a unique
-- violation on idx_message_buffer_active_conversation when the old conversation had an open
-- buffer, which stopped the stream on every read), its processing job never made (the old one
-- stood for it), and at a restart the old buffer's kept messages loaded into the new one.
--
-- release_reused_buffer_ids(), run by the batch committer just before it in the same
-- transaction, deletes a finished buffer row whose id a staged buffer of another start takes:
-- its processing jobs go with it (ON DELETE CASCADE), its messages keep their rows with
-- buffer_id NULL (ON DELETE SET NULL), and its kept messages go. Only a buffer whose flush
-- has ended (completed or failed) is released: an open one, or one whose flush is still
-- under way (its delivery's record finds its row by id), is left alone. Returns the rows
-- released.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE OR REPLACE FUNCTION changerelay.release_reused_buffer_ids() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    released integer;
BEGIN
    WITH reused AS (
        DELETE FROM public.message_buffer b
        USING pg_temp.message_buffer_latest l
        WHERE b.id = (jsonb_populate_record(NULL::public.message_buffer, jsonb_build_object('id', l.buffer_id))).id
          AND b.buffer_start_time IS DISTINCT FROM l.buffer_start_time AND b.status IN ('completed', 'failed')
        RETURNING b.id::text AS id),
    kept AS (
        DELETE FROM changerelay.buffer_messages m USING reused WHERE m.buffer_id = reused.id)
    SELECT count(*) INTO released FROM reused;
    RETURN released;
END $$;
