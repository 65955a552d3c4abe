-- Rolls back 028: the publication-history event triggers, their functions and table, and
-- 010's trigger function as 010 wrote it. Afterwards the wal2json path decides by the
-- publication as it is when the service connects.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP EVENT TRIGGER IF EXISTS changerelay_publication_history;
DROP EVENT TRIGGER IF EXISTS changerelay_schema_cascades;
DROP FUNCTION IF EXISTS changerelay.record_publication_change();
DROP FUNCTION IF EXISTS changerelay.record_publications(text);
DROP FUNCTION IF EXISTS changerelay.publication_membership(oid);
DROP TABLE IF EXISTS changerelay.publication_history;

CREATE OR REPLACE FUNCTION changerelay.record_schema_change()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    touched oid[];
BEGIN
    SELECT array_agg(DISTINCT objid) INTO touched
    FROM pg_event_trigger_ddl_commands()
    WHERE classid = 'pg_class'::regclass AND object_type IN ('table', 'table column');
    IF touched IS NOT NULL THEN
        PERFORM changerelay.record_table_shapes(touched, 'ddl');
    END IF;
END $$;
