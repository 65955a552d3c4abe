-- 010: schema history for the wal2json path.
--
-- wal2json prints each change with the columns the table had when the change was
-- made, but names neither the dropped nor the generated columns, nor the partition
-- root the publication reports a change under. To lay a change out the way pgoutput
-- does, the decoder needs each table's shape AS OF THE CHANGE, not as of today.
-- An event trigger records the shape of every table a DDL command touches (the whole
-- partition tree when partitions are involved) into changerelay.schema_history, in
-- the DDL's own transaction. wal2json streams those rows in place, and the service
-- loads the older ones at start: an entry applies to changes whose LSN is above its
-- `position`. That is exact because the DDL holds a lock on the table from before
-- `position` until its commit, so no other transaction's change to it falls between.
--
-- Creating an event trigger needs a superuser. Where the role running this is not
-- one, the table is still created, the trigger is skipped with a WARNING, and the
-- wal2json path uses today's catalog (`changerelay doctor` says what that loses).
-- pgoutput needs none of this: it sends the relation's shape in the stream itself.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE SCHEMA IF NOT EXISTS changerelay;

-- shape: {"columns": [names in attribute order, dropped ones left out],
--         "generated": [generated column names],
--         "ancestors": [[schema, name], ... parent first, root last],
--         "partitions": [[schema, name], ... every descendant of a partitioned table]}
CREATE TABLE IF NOT EXISTS changerelay.schema_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position    pg_lsn      NOT NULL,
    schema_name text        NOT NULL,
    table_name  text        NOT NULL,
    shape       jsonb       NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('baseline', 'ddl')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS schema_history_table ON changerelay.schema_history (schema_name, table_name, position);

-- Records the shape of each table in `tables` and of every table in its partition tree.
CREATE OR REPLACE FUNCTION changerelay.record_table_shapes(tables oid[], entry_kind text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    recorded integer := 0;
BEGIN
    INSERT INTO changerelay.schema_history (position, schema_name, table_name, shape, kind)
    SELECT pg_current_wal_insert_lsn(), n.nspname, c.relname,
           jsonb_build_object(
               'columns', COALESCE((SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '[]'),
               'generated', COALESCE((SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                                        AND a.attgenerated <> ''), '[]'),
               'ancestors', COALESCE((SELECT jsonb_agg(jsonb_build_array(an.nspname, ac.relname) ORDER BY anc.depth)
                                      FROM pg_partition_ancestors(c.oid) WITH ORDINALITY AS anc(relid, depth)
                                      JOIN pg_class ac ON ac.oid = anc.relid
                                      JOIN pg_namespace an ON an.oid = ac.relnamespace
                                      WHERE anc.relid <> c.oid), '[]'),
               'partitions', COALESCE((SELECT jsonb_agg(jsonb_build_array(dn.nspname, dc.relname) ORDER BY dc.oid)
                                       FROM pg_partition_tree(c.oid) AS tree
                                       JOIN pg_class dc ON dc.oid = tree.relid
                                       JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                                       WHERE tree.relid <> c.oid), '[]')),
           entry_kind
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid IN (
        SELECT touched.relid FROM unnest(tables) AS touched(relid)
        UNION
        SELECT tree.relid
        FROM unnest(tables) AS touched(relid)
        CROSS JOIN LATERAL pg_partition_tree(COALESCE(pg_partition_root(touched.relid), touched.relid)) AS tree)
      AND c.relkind IN ('r', 'p')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%'
      AND n.nspname NOT LIKE 'pg_temp%';
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END $$;

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

REVOKE ALL ON FUNCTION changerelay.record_table_shapes(oid[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.record_schema_change() FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_schema_history') THEN
        CREATE EVENT TRIGGER changerelay_schema_history ON ddl_command_end
            WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE')
            EXECUTE FUNCTION changerelay.record_schema_change();
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'changerelay: the schema-history event trigger needs a superuser and was not created; '
        'the wal2json path will use today''s columns for older changes (see changerelay doctor)';
END $$;

-- The shape of every table as of now: what a change older than the first DDL entry
-- is laid out with. Only once: running this file again adds nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM changerelay.schema_history WHERE kind = 'baseline') THEN
        PERFORM changerelay.record_table_shapes(
            ARRAY(SELECT c.oid FROM pg_class c WHERE c.relkind IN ('r', 'p')), 'baseline');
    END IF;
END $$;
