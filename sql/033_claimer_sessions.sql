-- 033: a claim names the dispatcher session that made it, so that the claims of a dispatcher
-- that died are sent again when the next one connects, not when their leases end.
--
-- A claimed delivery is held by its lease (`locked_until`) until its try is recorded. A
-- dispatcher killed mid-try (kill -9, an OOM kill, a node lost) leaves its claims to wait
-- out their leases: four request timeouts and 30 s, 90 s by default, for every delivery it
-- had in flight or queued. The claim now writes the claiming session (`pid:start`, from
-- pg_stat_activity) in `claimed_by`; a dispatcher that connects holding nothing makes the
-- claims of sessions that no longer exist claimable at once. A live dispatcher's session
-- exists, so its claims are never taken; a session hidden from the role (another role's)
-- counts as live by its pid.
--
-- The column is not indexed, so a claim that sets it stays a heap-only update (017).
-- Binaries from before this file leave it null, and their claims wait out their leases.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS claimed_by text;
