-- 028: what the publication published, as of each WAL position, for the wal2json path.
--
-- pgoutput reads the publication as it was when each change was made; wal2json publishes
-- every table, and ChangeRelay decided from the publication as it was when the service
-- connected. So in a live stream an ALTER PUBLICATION (a table dropped from it, its
-- publish actions or publish_via_partition_root changed) was not followed until a restart,
-- and a backlog or a replay read after one was decided by today's publication: changes were
-- kept that pgoutput leaves out, and a replay numbered a transaction's changes otherwise
-- than the live service had (its idempotency keys differed, so it sent them again).
--
-- An event trigger now records every publication's membership (its tables with their
-- column lists, its schemas, FOR ALL TABLES, publish_via_partition_root and the published
-- actions) in changerelay.publication_history, in the transaction of each command that can
-- change it: CREATE/ALTER/DROP PUBLICATION, and ALTER TABLE/ALTER SCHEMA/DROP TABLE/DROP
-- SCHEMA (a renamed table is listed under its new name from then on), when it differs from
-- the last entry. The rows reach the wal2json stream in that transaction, and the decoder
-- routes each later change by the entry of its time, as it lays it out by 010's shapes.
-- A baseline entry of each publication is taken when this file is first applied.
--
-- It also records the table shapes 010's trigger missed: on ALTER SCHEMA (a schema renamed
-- took the partitions of its tables out of the publication for the wal2json path, since their
-- recorded ancestors kept the old schema's name), on ALTER TYPE … CASCADE (typed tables), and
-- for the inheritance children of an altered table (their dropped and renamed columns).
--
-- The triggers need a superuser: run by another role, the table is created, the triggers are
-- skipped with a WARNING, and the wal2json path keeps deciding by the publication of when it
-- connected (it uses the history only while the trigger exists).
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE TABLE IF NOT EXISTS changerelay.publication_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position    pg_lsn      NOT NULL,
    publication text        NOT NULL,
    membership  jsonb       NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('baseline', 'ddl')),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS publication_history_latest ON changerelay.publication_history (publication, id);

-- {"relations": [[schema, table, [column, …] or null], …], "schemas": [schema, …],
--  "all_tables": bool, "via_root": bool, "actions": {"insert", "update", "delete", "truncate"}}
CREATE OR REPLACE FUNCTION changerelay.publication_membership(publication oid)
RETURNS jsonb
LANGUAGE sql
STABLE
SET search_path = pg_catalog
AS $$
    SELECT jsonb_build_object(
        'relations', COALESCE((
            SELECT jsonb_agg(jsonb_build_array(
                       n.nspname, c.relname,
                       CASE WHEN r.prattrs IS NULL THEN NULL ELSE
                           (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a
                            WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)) END)
                   ORDER BY n.nspname, c.relname)
            FROM pg_publication_rel r
            JOIN pg_class c ON c.oid = r.prrelid
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE r.prpubid = p.oid), '[]'),
        'schemas', COALESCE((
            SELECT jsonb_agg(n.nspname ORDER BY n.nspname)
            FROM pg_publication_namespace s JOIN pg_namespace n ON n.oid = s.pnnspid
            WHERE s.pnpubid = p.oid), '[]'),
        'all_tables', p.puballtables,
        'via_root', p.pubviaroot,
        'actions', jsonb_build_object('insert', p.pubinsert, 'update', p.pubupdate,
                                      'delete', p.pubdelete, 'truncate', p.pubtruncate))
    FROM pg_publication p
    WHERE p.oid = publication
$$;

-- Records each publication whose membership differs from its last entry; a publication
-- dropped since its last entry is recorded as publishing nothing.
CREATE OR REPLACE FUNCTION changerelay.record_publications(entry_kind text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    recorded integer := 0;
BEGIN
    WITH latest AS (
        SELECT DISTINCT ON (publication) publication, membership
        FROM changerelay.publication_history
        ORDER BY publication, id DESC),
    current_state AS (
        SELECT p.pubname::text AS publication, changerelay.publication_membership(p.oid) AS membership
        FROM pg_publication p
        UNION ALL
        SELECT l.publication, jsonb_build_object(
                   'relations', '[]'::jsonb, 'schemas', '[]'::jsonb, 'all_tables', false, 'via_root', false,
                   'actions', jsonb_build_object('insert', false, 'update', false, 'delete', false, 'truncate', false))
        FROM latest l
        WHERE NOT EXISTS (SELECT FROM pg_publication p WHERE p.pubname = l.publication))
    INSERT INTO changerelay.publication_history (position, publication, membership, kind)
    SELECT pg_current_wal_insert_lsn(), s.publication, s.membership, entry_kind
    FROM current_state s LEFT JOIN latest l ON l.publication = s.publication
    WHERE l.membership IS DISTINCT FROM s.membership;
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END $$;

CREATE OR REPLACE FUNCTION changerelay.record_publication_change()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM changerelay.record_publications('ddl');
END $$;

-- 010's trigger function, which now also takes the tables a command changed without naming
-- them: a renamed schema's tables, the typed tables of an ALTER TYPE … CASCADE, and the
-- inheritance children an ALTER TABLE of their parent changed (010's partition trees were
-- taken already; inheritance children were not).
CREATE OR REPLACE FUNCTION changerelay.record_schema_change()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    touched oid[];
BEGIN
    WITH RECURSIVE named AS (
        SELECT objid AS relid
        FROM pg_event_trigger_ddl_commands()
        WHERE classid = 'pg_class'::regclass AND object_type IN ('table', 'table column')
        UNION
        SELECT c.oid
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.relnamespace = d.objid
        WHERE d.classid = 'pg_namespace'::regclass AND c.relkind IN ('r', 'p')
        UNION
        -- ALTER TYPE … ATTRIBUTE alters the composite type's own relation (relkind 'c').
        SELECT c.oid
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class composite ON composite.oid = d.objid AND composite.relkind = 'c'
        JOIN pg_class c ON c.reloftype = composite.reltype
        WHERE d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p')
        UNION
        SELECT c.oid
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.reloftype = d.objid
        WHERE d.classid = 'pg_type'::regclass AND c.relkind IN ('r', 'p')),
    descendants AS (
        SELECT relid FROM named
        UNION
        SELECT i.inhrelid FROM pg_inherits i JOIN descendants d ON i.inhparent = d.relid)
    SELECT array_agg(DISTINCT relid) INTO touched FROM descendants;
    IF touched IS NOT NULL THEN
        PERFORM changerelay.record_table_shapes(touched, 'ddl');
    END IF;
END $$;

REVOKE ALL ON FUNCTION changerelay.record_publications(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.record_publication_change() FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_publication_history') THEN
        CREATE EVENT TRIGGER changerelay_publication_history ON ddl_command_end
            WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                         'ALTER TABLE', 'ALTER SCHEMA', 'DROP TABLE', 'DROP SCHEMA')
            EXECUTE FUNCTION changerelay.record_publication_change();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_schema_cascades') THEN
        CREATE EVENT TRIGGER changerelay_schema_cascades ON ddl_command_end
            WHEN TAG IN ('ALTER SCHEMA', 'ALTER TYPE')
            EXECUTE FUNCTION changerelay.record_schema_change();
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'changerelay: the publication-history event triggers need a superuser and were not created; '
        'the wal2json path will decide by the publication as it is when the service connects (see changerelay doctor)';
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM changerelay.publication_history WHERE kind = 'baseline') THEN
        PERFORM changerelay.record_publications('baseline');
    END IF;
END $$;
