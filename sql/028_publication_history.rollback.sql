-- Rolls back 028: the publication-history and schema-cascades event triggers, their
-- functions, view and table. Afterwards the wal2json path decides by the publication as it
-- is when the service connects.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP EVENT TRIGGER IF EXISTS changerelay_publication_history;
DROP EVENT TRIGGER IF EXISTS changerelay_schema_cascades;
DROP FUNCTION IF EXISTS changerelay.record_publication_change();
DROP FUNCTION IF EXISTS changerelay.record_schema_cascades();
DROP FUNCTION IF EXISTS changerelay.record_publications(text);
DROP VIEW IF EXISTS changerelay.publication_changes;
DROP FUNCTION IF EXISTS changerelay.publication_membership(oid);
DROP TABLE IF EXISTS changerelay.publication_history;
DROP FUNCTION IF EXISTS changerelay.settle_publication_entry();
