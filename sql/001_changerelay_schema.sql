-- 001: the service's own schema. Later migrations add deliveries, drift, ...
--
-- Every file takes the same transaction-scoped advisory lock first, so two
-- setups started at once (two replicas booting) run one after the other instead
-- of racing on CREATE ... IF NOT EXISTS. The key is 'crsetup' read as a bigint.
-- The lock lasts until the surrounding transaction ends: `changerelay setup`
-- runs each file in one transaction, and so does `psql -1 -f`.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

CREATE SCHEMA IF NOT EXISTS changerelay;

-- The last commit LSN whose effects are committed, per slot. Written in the
-- same transaction as those effects; the slot is acknowledged up to it.
CREATE TABLE IF NOT EXISTS changerelay.checkpoints (
    slot_name  text        PRIMARY KEY,
    lsn        pg_lsn      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
