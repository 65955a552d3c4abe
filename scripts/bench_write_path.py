"""Write-path cost (see bench-write-path.sh): pgbench's TPS on the source while pg_recvlogical
drains a slot against while `changerelay run` does, with the source (and pgbench) on CPU 0 and
the reader, the state database and the receiver on CPU 1. Importable: bench_all.py calls
measure()."""
import collections, os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (Cluster, LIVE_CHILDREN, RELAY, echo_environment, pinned, receiver_latency, recvlogical_options,
                      rss_summary, start_receiver, start_relay, stop_receiver, stop_relay, wait_deliveries, wait_streaming,
                      wait_until)
from bench_pipeline import pgbench_tps

SOURCE_CPU, SERVICE_CPU = 0, 1


def unsent(source, slot):
    """Bytes of WAL the slot's walsender has not sent yet: a reader that falls behind lets its
    walsender wait on a full socket, which hands CPU 0 back to pgbench and flatters the reader."""
    return int(source.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn) FROM pg_stat_replication r "
                           "JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '%s'" % slot))


def recvlogical_phase(source, slot, seconds):
    """pgbench while pg_recvlogical (on SERVICE_CPU) drains a new slot to /dev/null."""
    source.psql("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot)
    drain = subprocess.Popen(pinned(["pg_recvlogical", "-d", source.url, "--slot", slot, "--start", "-f", "/dev/null"]
                                    + recvlogical_options("pgoutput", "changerelay_pub"), SERVICE_CPU),
                             stderr=subprocess.PIPE)
    LIVE_CHILDREN.append(drain)
    wait_streaming(source, slot, watch=[drain])
    tps = pgbench_tps(source, seconds, cpu=SOURCE_CPU)
    behind = unsent(source, slot)
    if drain.poll() is not None:
        sys.exit("pg_recvlogical exited during the phase: %s" % drain.stderr.read().decode()[-2000:])
    drain.terminate()
    drain.wait(timeout=60)
    source.psql("SELECT pg_drop_replication_slot('%s')" % slot)
    return tps, behind, 0.0


def relay_phase(source, state, env, slot, seconds, ranges):
    """pgbench while `changerelay run` (echo handler, on SERVICE_CPU, state database on
    SERVICE_CPU) reads a new slot; then waits until every row written in the phase has been
    delivered, so the next phase starts with nothing in flight. Appends the phase's id range
    (low, high] to `ranges`."""
    source.psql("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot)
    low = int(source.psql("SELECT coalesce(max(id), 0) FROM events"))
    service = start_relay(["run"], dict(env, CHANGERELAY_SOURCE_SLOT=slot), SERVICE_CPU)
    wait_streaming(source, slot, watch=[service])
    tps = pgbench_tps(source, seconds, cpu=SOURCE_CPU)
    written = time.monotonic()
    behind = unsent(source, slot)
    high = int(source.psql("SELECT max(id) FROM events"))
    ranges.append((low, high))
    expected = sum(h - l for l, h in ranges)
    session = state.session()
    wait_deliveries(session, "the phase's %d deliveries" % (high - low), succeeded=expected, watch=[service])
    catch_up = time.monotonic() - written
    session.close()
    stop_relay(service, "run (write path)")
    source.psql("SELECT pg_drop_replication_slot('%s')" % slot)
    return tps, behind, catch_up


def exactness(source, state, ranges, received):
    """Every row written while ChangeRelay read got exactly one echo delivery, and it
    succeeded; returns a line saying so, or exits with what is wrong."""
    where = " OR ".join("(id > %d AND id <= %d)" % r for r in ranges)
    rows = collections.Counter(int(v) for v in source.psql("SELECT id FROM events WHERE %s" % where).split())
    delivered = collections.Counter()
    statuses = collections.Counter()
    for line in state.psql("SELECT (body::jsonb -> 'new' ->> 'id') || ' ' || status FROM changerelay.deliveries "
                           "WHERE handler = 'echo'").splitlines():
        key, status = line.split()
        delivered[int(key)] += 1
        statuses[status] += 1
    missing = set(rows) - set(delivered)
    extra = set(delivered) - set(rows)
    doubled = [k for k, n in delivered.items() if n > 1]
    if missing or extra or doubled or set(statuses) != {"succeeded"}:
        sys.exit("exactness: %d rows, %d deliveries (%s); %d rows without a delivery, %d deliveries of no such row, "
                 "%d rows with more than one" % (sum(rows.values()), sum(delivered.values()), dict(statuses),
                                                 len(missing), len(extra), len(doubled)))
    total = sum(rows.values())
    # A retried request (at-least-once) would be a second request with the same key, not an error.
    if received["keys"] != total:
        sys.exit("exactness: %d rows but the receiver got %d requests with %d distinct keys"
                 % (total, received["requests"], received["keys"]))
    return ("exactness: %d rows written while ChangeRelay read, %d echo deliveries, one per row, all succeeded; "
            "the receiver got %d requests with %d distinct keys" % (total, sum(delivered.values()),
                                                                     received["requests"], received["keys"]))


def measure(seconds, rounds=2, report=print):
    """Runs the rounds; returns {"alone", "recvlogical", "changerelay", "ratio", "rounds",
    "exactness"} (TPS means over the rounds)."""
    if rounds < 2:
        sys.exit("write path: at least 2 rounds (the readers alternate)")
    source = Cluster(cpu=SOURCE_CPU)
    state = Cluster(cpu=SERVICE_CPU)
    receiver, url = start_receiver(cpu=SERVICE_CPU)
    try:
        # The production status interval (10 s, as pg_recvlogical's default), not the other
        # benchmarks' 200 ms: the catch-up is read from the state database here.
        env = echo_environment(source, url, "public.events")
        del env["CHANGERELAY_SOURCE_STATUS_INTERVAL_MS"]
        env["CHANGERELAY_STATE_DATABASE_URL"] = state.url
        # The state database's schema: setup pointed at it as a source, its slot dropped again.
        subprocess.run([RELAY, "setup"], env=dict(env, CHANGERELAY_SOURCE_DATABASE_URL=state.url), check=True,
                       capture_output=True)
        state.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        source.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
        source.psql("CREATE TABLE events (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());"
                    "ALTER PUBLICATION changerelay_pub ADD TABLE events")
        report("PostgreSQL %s; pgbench 4 clients, single-row inserts, %d s a phase, %d rounds; source server and "
               "pgbench on CPU %d; the reader, the state database (a second cluster) and the receiver on CPU %d"
               % (source.version, seconds, rounds, SOURCE_CPU, SERVICE_CPU))
        tps = collections.defaultdict(list)
        ranges = []
        for n in range(rounds):
            tps["alone"].append(pgbench_tps(source, seconds, cpu=SOURCE_CPU))
            order = ["recvlogical", "changerelay"] if n % 2 == 0 else ["changerelay", "recvlogical"]
            lag = {}
            for reader in order:
                if reader == "recvlogical":
                    value, behind, _ = recvlogical_phase(source, "recv_%d" % n, seconds)
                else:
                    value, behind, catch_up = relay_phase(source, state, env, "relay_%d" % n, seconds, ranges)
                tps[reader].append(value)
                lag[reader] = behind
            report("round %d (%s first): no reader %.0f TPS, pg_recvlogical %.0f TPS, changerelay run %.0f TPS "
                   "(ratio %.3f); WAL unsent by the walsender as pgbench ended: %.0f kB with pg_recvlogical, %.0f kB "
                   "with changerelay, whose last delivery followed %.1f s later"
                   % (n + 1, order[0], tps["alone"][-1], tps["recvlogical"][-1], tps["changerelay"][-1],
                      tps["recvlogical"][-1] / tps["changerelay"][-1], lag["recvlogical"] / 1024,
                      lag["changerelay"] / 1024, catch_up))
        received = receiver_latency(stop_receiver(receiver))
        check = exactness(source, state, ranges, received)
        report(check)
        mean = {k: sum(v) / len(v) for k, v in tps.items()}
        return dict(mean, ratio=mean["recvlogical"] / mean["changerelay"], rounds=dict(tps), exactness=check)
    finally:
        if receiver.poll() is None:
            receiver.kill()
        source.stop()
        state.stop()


def main(seconds, rounds):
    figures = measure(seconds, rounds)
    print("write path mean over %d rounds: no reader %.0f TPS; pg_recvlogical draining %.0f TPS; changerelay run "
          "%.0f TPS; pg_recvlogical / changerelay = %.3f (goal <= 1.05)"
          % (rounds, figures["alone"], figures["recvlogical"], figures["changerelay"], figures["ratio"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, int(sys.argv[2]) if len(sys.argv) > 2 else 2)
    print(rss_summary())
