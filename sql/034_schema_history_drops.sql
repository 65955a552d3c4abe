-- 034: the wal2json path's schema history (010) sees every command that changes a table's
-- columns, and in every session.
--
-- 010's event trigger recorded a table's shape after CREATE TABLE and ALTER TABLE only, in
-- sessions replicating as origin. Three ways past it left the decoder laying wal2json's
-- changes out with an old shape (a phantom unchanged TOAST column, columns out of order, a
-- listed column's value left out):
-- - a column dropped by a cascade: DROP TYPE, DROP DOMAIN, DROP EXTENSION or DROP COLLATION
--   ... CASCADE drops the columns of that type, which only the sql_drop event shows;
-- - ALTER VIEW, ALTER MATERIALIZED VIEW, ALTER INDEX and ALTER FOREIGN TABLE, which Postgres
--   lets rename a table or its columns;
-- - a session in session_replication_role = replica (a restore, a replication tool), where
--   an event trigger enabled the default way does not fire.
-- 028's publication trigger also takes those, which can rename a listed column, and a column
-- dropped by a cascade takes its table out of a publication that lists the column: recorded too.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- The tables whose columns a cascade dropped, recorded after the drop. An ALTER TABLE's own
-- drops are recorded by the ddl_command_end trigger, with the rest of what it changed. A
-- column a publication's column list or row filter names takes the table out of the
-- publication with it (whatever the command: DROP DOMAIN, DROP COLLATION, ALTER TABLE ...
-- CASCADE), which the publication trigger's tags and its quick check cannot see.
CREATE OR REPLACE FUNCTION changerelay.record_dropped_columns()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    touched oid[];
BEGIN
    IF EXISTS (SELECT FROM pg_event_trigger_dropped_objects()
               WHERE object_type IN ('publication relation', 'publication namespace')) THEN
        PERFORM changerelay.record_publications('ddl');
    END IF;
    IF TG_TAG = 'ALTER TABLE' THEN
        RETURN;
    END IF;
    SELECT array_agg(DISTINCT d.objid) INTO touched
    FROM pg_event_trigger_dropped_objects() d
    JOIN pg_class c ON c.oid = d.objid
    WHERE d.classid = 'pg_class'::regclass AND d.object_type = 'table column';
    IF touched IS NOT NULL THEN
        PERFORM changerelay.record_table_shapes(touched, 'ddl');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION changerelay.record_publication_change()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_TAG IN ('ALTER TABLE', 'ALTER INDEX', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE') AND NOT EXISTS (
        SELECT FROM pg_event_trigger_ddl_commands() d
        JOIN pg_publication_rel r ON r.prrelid = d.objid
        WHERE d.classid = 'pg_class'::regclass) THEN
        RETURN;
    END IF;
    PERFORM changerelay.record_publications('ddl');
END $$;

REVOKE ALL ON FUNCTION changerelay.record_dropped_columns() FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.record_publication_change() FROM PUBLIC;

-- An event trigger's tags cannot be altered: 010's and 028's are made again with the new
-- ones (a trigger another migration did not create, because it ran without a superuser,
-- is created here if this one has one).
DO $$
BEGIN
    DROP EVENT TRIGGER IF EXISTS changerelay_schema_history;
    CREATE EVENT TRIGGER changerelay_schema_history ON ddl_command_end
        WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'ALTER VIEW',
                     'ALTER MATERIALIZED VIEW', 'ALTER INDEX', 'ALTER FOREIGN TABLE')
        EXECUTE FUNCTION changerelay.record_schema_change();
    DROP EVENT TRIGGER IF EXISTS changerelay_schema_drops;
    CREATE EVENT TRIGGER changerelay_schema_drops ON sql_drop
        EXECUTE FUNCTION changerelay.record_dropped_columns();
    DROP EVENT TRIGGER IF EXISTS changerelay_publication_history;
    CREATE EVENT TRIGGER changerelay_publication_history ON ddl_command_end
        WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                     'ALTER TABLE', 'ALTER INDEX', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER FOREIGN TABLE',
                     'ALTER SCHEMA',
                     'ALTER TYPE', 'DROP TABLE', 'DROP SCHEMA', 'DROP TYPE', 'DROP OWNED', 'DROP EXTENSION')
        EXECUTE FUNCTION changerelay.record_publication_change();
    -- Event triggers enabled the default way do not fire under session_replication_role = replica.
    ALTER EVENT TRIGGER changerelay_schema_history ENABLE ALWAYS;
    ALTER EVENT TRIGGER changerelay_schema_drops ENABLE ALWAYS;
    ALTER EVENT TRIGGER changerelay_publication_history ENABLE ALWAYS;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'changerelay: the schema-history event triggers need a superuser and were not changed; '
        'the wal2json path may lay out changes after a cascaded column drop or an ALTER VIEW with older columns '
        '(see changerelay doctor)';
END $$;
