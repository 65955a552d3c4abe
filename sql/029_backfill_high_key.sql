-- 029: a backfill reads the rows that exist when it starts, and no more.
--
-- The chunks walked the primary key from the cursor with no end: rows inserted after the
-- request, which the stream hands on as inserts already, were read again as `read` changes
-- (a second conversation check under another key), and a table written faster than it was
-- read kept its backfill going for ever. Like DBLog's and Debezium's snapshots, the runner
-- now reads the highest key matching the request when it starts (`high_key`, text values in
-- key order; an empty array for a table with no such row), and no chunk reads past it.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.backfills ADD COLUMN IF NOT EXISTS high_key text[];
