-- 037: a backfill request names the slot whose service works on it.
--
-- Services on other slots may share a state database (a table group each). Each one's
-- backfill runner took the oldest unfinished request, whoever asked: two services shared
-- one cursor, and a table's rows reached the handlers of whichever read each chunk, or
-- the same rows were planned twice and the second batch stopped its service on the
-- deliveries' unique key. `changerelay backfill` now records its configuration's
-- `source.slot`, and a runner takes only its own slot's requests. A request recorded
-- before this file has none and is taken by any runner, as it was.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.backfills ADD COLUMN IF NOT EXISTS slot_name text;
