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
-- change it: CREATE/ALTER/DROP PUBLICATION, and ALTER TABLE/ALTER INDEX (which can rename a
-- table)/ALTER SCHEMA/ALTER TYPE/DROP TABLE/DROP SCHEMA/DROP TYPE/DROP OWNED/DROP EXTENSION (a
-- renamed table or column is listed under its new name from then on), when it differs from the
-- last entry. The rows reach the wal2json stream
-- in that transaction, and the decoder routes each later change by the entry of its time, as
-- it lays it out by 010's shapes: from the statement for its own transaction, and from its
-- commit for the others (see the table).
-- A baseline entry of each publication is taken when this file is first applied; applied
-- again, it records what changed while no trigger did.
--
-- A second trigger records the table shapes 010's trigger misses: on ALTER SCHEMA (a schema
-- renamed took the partitions of its tables out of the publication for the wal2json path,
-- since their recorded ancestors kept the old schema's name), on ALTER TYPE ... CASCADE (typed
-- tables), and for the inheritance children of an altered table (their dropped and renamed
-- columns).
--
-- The triggers need a superuser: run by another role, the table is created, the triggers are
-- skipped with a WARNING, and the wal2json path keeps deciding by the publication of when it
-- connected (it uses the history only while the trigger exists).
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

-- `position` is where the statement recorded the entry: its own transaction's later changes
-- follow it from there. Other transactions follow it from `settled_at`, written by a deferred
-- trigger as the transaction commits, after all of its statements: a change another
-- transaction makes before that (ALTER PUBLICATION blocks no writer) was made under the old
-- membership, as pgoutput decides it. `xid` (32 bits, as the stream numbers transactions)
-- tells the two apart.
CREATE TABLE IF NOT EXISTS changerelay.publication_history (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position    pg_lsn      NOT NULL,
    publication text        NOT NULL,
    membership  jsonb       NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('baseline', 'ddl')),
    xid         bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint % 4294967296),
    settled_at  pg_lsn,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- SECURITY DEFINER: it fires at the commit of whoever ran the DDL (the application's role,
-- which may not even see the changerelay schema), after the event trigger's own function
-- has returned.
CREATE OR REPLACE FUNCTION changerelay.settle_publication_entry()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
    UPDATE changerelay.publication_history SET settled_at = pg_current_wal_insert_lsn() WHERE id = NEW.id;
    RETURN NULL;
END $$;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgname = 'publication_history_settled'
                                           AND tgrelid = 'changerelay.publication_history'::regclass) THEN
        CREATE CONSTRAINT TRIGGER publication_history_settled AFTER INSERT ON changerelay.publication_history
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION changerelay.settle_publication_entry();
    END IF;
    -- Also for a session in session_replication_role = replica (a restore, a replication tool).
    ALTER TABLE changerelay.publication_history ENABLE ALWAYS TRIGGER publication_history_settled;
END $$;
CREATE INDEX IF NOT EXISTS publication_history_latest ON changerelay.publication_history (publication, id);

-- {"relations": [[schema, table, [column, ...] or null], ...], "schemas": [schema, ...],
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

-- Each publication's membership as the catalog has it now, beside its last entry; a
-- publication dropped since its last entry is {"dropped": true}: the wal2json path stops
-- there, as pgoutput does on a publication that no longer exists, rather than skip every
-- change as unpublished.
CREATE OR REPLACE VIEW changerelay.publication_changes AS
    WITH latest AS (
        SELECT DISTINCT ON (publication) publication, membership
        FROM changerelay.publication_history
        ORDER BY publication, id DESC),
    current_state AS (
        SELECT p.pubname::text AS publication, changerelay.publication_membership(p.oid) AS membership
        FROM pg_catalog.pg_publication p
        UNION ALL
        SELECT l.publication, '{"dropped": true}'::jsonb
        FROM latest l
        WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_publication p WHERE p.pubname = l.publication))
    SELECT s.publication, s.membership
    FROM current_state s LEFT JOIN latest l ON l.publication = s.publication
    WHERE l.membership IS DISTINCT FROM s.membership;

-- Records each publication whose membership differs from its last entry. Two DDL
-- transactions at once each see the catalog without the other's uncommitted change: the
-- one that records waits for the other to commit (the lock, held to commit), then reads the
-- catalog again with a new snapshot, so no entry leaves out a change committed before it.
-- DDL that changes no membership takes no lock.
CREATE OR REPLACE FUNCTION changerelay.record_publications(entry_kind text)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    recorded integer := 0;
BEGIN
    IF NOT EXISTS (SELECT FROM changerelay.publication_changes) THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(27991862643291528);
    INSERT INTO changerelay.publication_history (position, publication, membership, kind)
    SELECT pg_current_wal_insert_lsn(), c.publication, c.membership, entry_kind
    FROM changerelay.publication_changes c;
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END $$;

-- An ALTER TABLE or ALTER INDEX changes a membership only through a table a publication
-- lists by name (renamed, or a listed column renamed): any other is let through without
-- reading every publication, which on a publication of thousands of tables costs more than
-- the ALTER itself.
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

-- The tables a command changes without naming them, which 010's trigger does not take: a
-- renamed schema's tables, the typed tables of an ALTER TYPE ... CASCADE, and the inheritance
-- children of an altered table (010 takes partition trees; children by inheritance that are
-- not partitions are not in them).
CREATE OR REPLACE FUNCTION changerelay.record_schema_cascades()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
DECLARE
    touched oid[];
BEGIN
    WITH RECURSIVE named AS (
        SELECT c.oid AS relid, false AS own
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class c ON c.relnamespace = d.objid
        WHERE d.classid = 'pg_namespace'::regclass AND c.relkind IN ('r', 'p')
        UNION
        -- ALTER TYPE ... ATTRIBUTE alters the composite type's own relation (relkind 'c').
        SELECT c.oid, false
        FROM pg_event_trigger_ddl_commands() d
        JOIN pg_class composite ON composite.oid = d.objid AND composite.relkind = 'c'
        JOIN pg_class c ON c.reloftype = composite.reltype
        WHERE d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p')
        UNION
        SELECT d.objid, true
        FROM pg_event_trigger_ddl_commands() d
        WHERE d.classid = 'pg_class'::regclass AND d.object_type IN ('table', 'table column')),
    descendants AS (
        SELECT relid, own FROM named
        UNION
        SELECT i.inhrelid, false
        FROM pg_inherits i
        JOIN descendants d ON i.inhparent = d.relid
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE NOT c.relispartition)
    -- The tables the command named are 010's to record.
    SELECT array_agg(DISTINCT relid) INTO touched FROM descendants WHERE NOT own;
    IF touched IS NOT NULL THEN
        PERFORM changerelay.record_table_shapes(touched, 'ddl');
    END IF;
END $$;

REVOKE ALL ON FUNCTION changerelay.record_publications(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.record_publication_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.record_schema_cascades() FROM PUBLIC;
REVOKE ALL ON FUNCTION changerelay.settle_publication_entry() FROM PUBLIC;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_publication_history') THEN
        CREATE EVENT TRIGGER changerelay_publication_history ON ddl_command_end
            WHEN TAG IN ('CREATE PUBLICATION', 'ALTER PUBLICATION', 'DROP PUBLICATION',
                         'ALTER TABLE', 'ALTER INDEX', 'ALTER SCHEMA', 'ALTER TYPE', 'DROP TABLE',
                         'DROP SCHEMA', 'DROP TYPE', 'DROP OWNED', 'DROP EXTENSION')
            EXECUTE FUNCTION changerelay.record_publication_change();
    END IF;
    IF NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'changerelay_schema_cascades') THEN
        CREATE EVENT TRIGGER changerelay_schema_cascades ON ddl_command_end
            WHEN TAG IN ('ALTER SCHEMA', 'ALTER TYPE', 'ALTER TABLE')
            EXECUTE FUNCTION changerelay.record_schema_cascades();
    END IF;
    -- Event triggers enabled the default way do not fire under session_replication_role = replica.
    ALTER EVENT TRIGGER changerelay_publication_history ENABLE ALWAYS;
    ALTER EVENT TRIGGER changerelay_schema_cascades ENABLE ALWAYS;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'changerelay: the publication-history event triggers need a superuser and were not created; '
        'the wal2json path will decide by the publication as it is when the service connects (see changerelay doctor)';
END $$;

-- The first time, a baseline of every publication; every later time, whatever changed while
-- no trigger recorded it (installed without a superuser, dropped or disabled a while): an
-- entry is written only where the membership differs from the last one.
DO $$
BEGIN
    PERFORM changerelay.record_publications(
        CASE WHEN EXISTS (SELECT FROM changerelay.publication_history) THEN 'ddl' ELSE 'baseline' END);
END $$;
