-- Undoes 034: 010's and 028's event triggers as those files make them, and no sql_drop trigger.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DO $$
BEGIN
    DROP EVENT TRIGGER IF EXISTS changerelay_schema_drops;
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_schema_history') THEN
        DROP EVENT TRIGGER changerelay_schema_history;
        CREATE EVENT TRIGGER changerelay_schema_history ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
            EXECUTE FUNCTION changerelay.record_schema_change();
    END IF;
    IF EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_publication_history') THEN
        DROP EVENT TRIGGER changerelay_publication_history;
        CREATE EVENT TRIGGER changerelay_publication_history ON ddl_command_end
            WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                         'ALTER TABLE', 'ALTER INDEX', 'ALTER SCHEMA', 'ALTER TYPE', 'DROP TABLE',
                         'DROP SCHEMA', 'DROP TYPE', 'DROP OWNED', 'DROP EXTENSION')
            EXECUTE FUNCTION changerelay.record_publication_change();
        ALTER EVENT TRIGGER changerelay_publication_history ENABLE ALWAYS;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION changerelay.record_publication_change()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_TAG IN ('ALTER TABLE', 'ALTER INDEX') AND NOT EXISTS (
        SELECT FROM pg_event_trigger_ddl_commands() d
        JOIN pg_publication_rel r ON r.prrelid = d.objid
        WHERE d.classid = 'pg_class'::regclass) THEN
        RETURN;
    END IF;
    PERFORM changerelay.record_publications('ddl');
END $$;

DROP FUNCTION IF EXISTS changerelay.record_dropped_columns();
