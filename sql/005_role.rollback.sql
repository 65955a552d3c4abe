-- Undoes 005. Objects the role owns in this database (tables it created in
-- schema changerelay) are handed to the user running the rollback, then every
-- grant and default privilege naming the role is revoked and the role dropped.
-- A role is cluster-wide: if it holds privileges in another database, DROP ROLE
-- fails and names it; run REASSIGN OWNED / DROP OWNED there first.
DO $$
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'changerelay') THEN
        REASSIGN OWNED BY changerelay TO CURRENT_USER;
        DROP OWNED BY changerelay;
        DROP ROLE changerelay;
    END IF;
END $$;
