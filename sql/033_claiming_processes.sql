-- 033: a claim names the dispatcher process that made it, so that the claims of a dispatcher
-- that died are sent again when the next one on its machine connects, not when their leases end.
--
-- A claimed delivery is held by its lease (`locked_until`) until its try is recorded. A
-- dispatcher killed mid-try (kill -9, an OOM kill) leaves its claims to wait out their leases:
-- four request timeouts and 30 s, 90 s by default, for every delivery it had in flight or
-- queued. The claim now writes the claiming process and the attempt it makes in `claimed_by`
-- (`host|boot id|pid namespace|pid|start ticks#attempt`); a dispatcher that connects holding
-- nothing looks up the processes of its own machine (host and boot) and PID namespace that
-- hold claims, and makes the claims of those that have ended (no such pid, a later start, a
-- zombie) due at once. A process that runs is never taken for ended, whatever its database
-- connection is doing (cut by a Postgres restart, it lives on with its requests in flight),
-- nor is one it cannot see (another user's under hidepid); one on another machine is left to
-- its leases.
--
-- The column is not indexed, so a claim that sets it stays a heap-only update (017).
-- Binaries from before this file leave it as it was: a claim they make keeps the name and
-- attempt of the claim before it, whose attempt is then not the row's, and waits out its lease.
DO $$ BEGIN PERFORM pg_advisory_xact_lock(27991862643291504); END $$;

ALTER TABLE changerelay.deliveries ADD COLUMN IF NOT EXISTS claimed_by text;
