-- Undoes 014. Buffers still open lose the copy of their messages that a restart rebuilds
-- them from; feature_flags stays in the publication.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    DROP FUNCTION IF EXISTS changerelay.apply_staged_message_buffers();
    DROP VIEW IF EXISTS changerelay.message_buffer_latest;
    DROP TABLE IF EXISTS changerelay.message_buffer_staged;
    DROP TABLE IF EXISTS changerelay.buffer_messages;
    DROP TABLE IF EXISTS changerelay.message_buffering_state;
END $$;
