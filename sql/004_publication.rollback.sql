-- Undoes 004. A slot still streaming with publication_names = 'changerelay_pub'
-- fails at its next change once the publication is gone: drop or stop it first.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

DROP PUBLICATION IF EXISTS changerelay_pub;
