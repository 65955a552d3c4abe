-- 017: a claim rewrites a delivery in place.
--
-- A claim sets status, attempt, locked_until and updated_at. While any index named one of
-- them (in its columns or its WHERE), every claim wrote a new entry into every index of
-- the table (six, the unique idempotency_key among them) and the record that followed did
-- it again: half of a fan-out claim's time. The indexes now name only columns a claim never
-- changes, and a "finished" row is told by completed_at, which the record sets with the
-- final status, so the claim is a heap-only (HOT) update. The room it needs on the row's
-- own page is left free when rows are written (fillfactor); a row that finds none is
-- updated as before.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- The indexes rely on completed_at being set exactly when a delivery is finished.
UPDATE changerelay.deliveries SET completed_at = updated_at
WHERE status IN ('succeeded', 'dead') AND completed_at IS NULL;
UPDATE changerelay.deliveries SET completed_at = NULL
WHERE status NOT IN ('succeeded', 'dead') AND completed_at IS NOT NULL;
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conname = 'deliveries_completed_when_finished'
                   AND conrelid = 'changerelay.deliveries'::regclass) THEN
        ALTER TABLE changerelay.deliveries ADD CONSTRAINT deliveries_completed_when_finished
            CHECK ((status IN ('succeeded', 'dead')) = (completed_at IS NOT NULL));
    END IF;
END $$;

-- Room for a claim's version of each row beside it: a page is claimed a few rows at a time,
-- and rows a claim cannot keep on their page cost an entry in every index again.
ALTER TABLE changerelay.deliveries SET (fillfactor = 60);

CREATE INDEX IF NOT EXISTS deliveries_endpoint_open ON changerelay.deliveries (endpoint, next_attempt_at, id)
    WHERE completed_at IS NULL AND endpoint IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_unrouted_open ON changerelay.deliveries (next_attempt_at, id)
    WHERE completed_at IS NULL AND endpoint IS NULL;
CREATE INDEX IF NOT EXISTS deliveries_ordering_open ON changerelay.deliveries (ordering_key, id)
    WHERE completed_at IS NULL AND ordering_key IS NOT NULL;
-- Retention (succeeded) and `deliveries purge --dead` find old finished rows by when they finished.
CREATE INDEX IF NOT EXISTS deliveries_completed ON changerelay.deliveries (completed_at)
    WHERE completed_at IS NOT NULL;

DROP INDEX IF EXISTS changerelay.deliveries_endpoint_due;
DROP INDEX IF EXISTS changerelay.deliveries_unrouted_due;
DROP INDEX IF EXISTS changerelay.deliveries_ordering;
-- A dispatcher counts its own claims per endpoint; no index of leases is needed.
DROP INDEX IF EXISTS changerelay.deliveries_in_flight;
DROP INDEX IF EXISTS changerelay.deliveries_succeeded_completed;
DROP INDEX IF EXISTS changerelay.deliveries_dead_updated;
