-- Undoes 005 in this database. Objects the role owns here (tables it created
-- in schema changerelay) are handed to the user running the rollback, then
-- every grant and default privilege naming the role is revoked.
-- A role is cluster-wide: while it still holds privileges in another database
-- it is kept (with a NOTICE naming them); the rollback run in the last such
-- database drops it.
DO $$
DECLARE
    elsewhere text;
BEGIN
    PERFORM pg_advisory_xact_lock(27991862643291504);
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'changerelay') THEN
        REASSIGN OWNED BY changerelay TO CURRENT_USER;
        DROP OWNED BY changerelay;
        SELECT string_agg(DISTINCT d.datname, ', ') INTO elsewhere
        FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass
          AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = 'changerelay');
        IF elsewhere IS NULL THEN
            DROP ROLE changerelay;
        ELSE
            RAISE NOTICE 'role changerelay kept: it still has privileges in database(s) %; run this rollback there too', elsewhere;
        END IF;
    END IF;
END $$;
