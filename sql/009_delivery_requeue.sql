-- 009: `deliveries retry` gives a delivery a fresh allowance of tries while its attempt
-- numbers run on, so attempt rows, log rows and the body's attempt field never repeat a
-- number. The retry policy counts the tries made after `requeued_at_attempt`, the
-- delivery's attempt count when an operator last re-queued it (0: never).
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS requeued_at_attempt int NOT NULL DEFAULT 0;
