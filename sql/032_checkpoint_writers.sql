-- 032: which command wrote each slot's checkpoint: `run` (a live service) or `replay`.
--
-- `replay` refuses the service's own slot, but knew it only by the name in its own
-- configuration: a second service (another slot for another table group), or the same one
-- started under a name the replay's configuration does not give, had its slot read by a
-- replay that moved it on and wrote its checkpoint. The live service then started past
-- changes it never planned: the automation runs and message buffers replay leaves out
-- were lost. A replay now refuses a slot whose checkpoint `run` wrote.
--
-- Rows written before this file, or by a binary from before it, hold NULL: not known, and
-- a replay reads such a slot as before.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.checkpoints ADD COLUMN IF NOT EXISTS written_by text;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'checkpoints_written_by'
                   AND conrelid = 'changerelay.checkpoints'::regclass) THEN
        ALTER TABLE changerelay.checkpoints ADD CONSTRAINT checkpoints_written_by
            CHECK (written_by IN ('run', 'replay'));
    END IF;
END $$;
