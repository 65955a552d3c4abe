-- Undoes 009. A re-queued delivery still due then counts its tries from its first
-- attempt again, so it may be given up before it has had a full allowance.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF to_regclass('changerelay.deliveries') IS NOT NULL THEN
        ALTER TABLE changerelay.deliveries DROP COLUMN IF EXISTS requeued_at_attempt;
    END IF;
END $$;
