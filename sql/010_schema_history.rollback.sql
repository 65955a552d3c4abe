-- Rolls back 010: the schema-history event trigger, its functions and table.
-- Afterwards the wal2json path lays older changes out with today's columns.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP EVENT TRIGGER IF EXISTS changerelay_schema_history;
DROP FUNCTION IF EXISTS changerelay.record_schema_change();
DROP FUNCTION IF EXISTS changerelay.record_table_shapes(oid[], text);
DROP TABLE IF EXISTS changerelay.schema_history;
