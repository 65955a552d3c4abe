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
TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(cluster):
    """CPU seconds the cluster's server has used so far: the postmaster, its live children
    (backends, the walsender, background processes) and the children it has reaped (the
    pgbench clients' backends once they exit). pgbench and the reader are not counted."""
    def stat(pid):
        """/proc/PID/stat's fields after the command name: [2] is the parent, [11:15] the
        process's user and system ticks, then its reaped children's."""
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()
    with open(cluster.data + "/postmaster.pid") as f:
        postmaster = f.readline().strip()
    ticks = sum(int(v) for v in stat(postmaster)[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = stat(entry)
            except OSError:
                continue  # a process that ended meanwhile: its time moved to the postmaster's reaped total
            if fields[1] == postmaster:
                ticks += int(fields[11]) + int(fields[12])
    return ticks / TICK


def drained(source, slot, what, watch=()):
    """Waits until the slot's walsender has sent all WAL written so far: the decoding it
    left for after the phase is part of the phase's cost."""
    session = source.session()
    target = session.value("SELECT pg_current_wal_lsn()")
    wait_until(what, lambda: session.value(
        "SELECT r.sent_lsn >= '%s' FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid "
        "WHERE s.slot_name = '%s'" % (target, slot)) == "t", timeout=300, watch=watch)
    session.close()


Phase = collections.namedtuple("Phase", "tps behind cost ended ids")


def server_cost(source, slot, seconds, rate, watch):
    """pgbench for SECONDS (at `rate` TPS, or as fast as it goes when None) while the reader of
    `slot` runs. Returns a Phase: its TPS, the WAL unsent as it ended, the server's CPU
    microseconds a transaction counted until the walsender has sent the phase's WAL, the
    monotonic time pgbench ended, and the range (low, high] of the `events` ids it wrote."""
    low = int(source.psql("SELECT coalesce(max(id), 0) FROM events"))
    before = server_cpu(source)
    tps = pgbench_tps(source, seconds, rate=rate, cpu=SOURCE_CPU)
    ended = time.monotonic()
    behind = unsent(source, slot)
    drained(source, slot, "the walsender to send the phase's WAL", watch)
    spent = server_cpu(source) - before
    high = int(source.psql("SELECT max(id) FROM events"))
    return Phase(tps, behind, spent * 1e6 / max(high - low, 1), ended, (low, high))


def unsent(source, slot):
    """Bytes of WAL the slot's walsender has not sent yet. pg_recvlogical's walsender ends each
    phase tens of MB behind: it never sleeps (a handful of voluntary context switches in 20 s),
    so the scheduler gives it the share of any busy process, less than decoding every commit
    takes, and pgbench keeps the rest. ChangeRelay's ends caught up: it sleeps and is woken at
    each commit (about 7 000 times a second), and the scheduler favours a process just woken.
    The decoding left unsent is done after the phase, outside the TPS figure, which this
    flatters."""
    return int(source.psql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), r.sent_lsn) FROM pg_stat_replication r "
                           "JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '%s'" % slot))


def recvlogical_phase(source, slot, seconds, rate):
    """pgbench while pg_recvlogical (on SERVICE_CPU) drains a new slot to /dev/null."""
    source.psql("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot)
    drain = subprocess.Popen(pinned(["pg_recvlogical", "-d", source.url, "--slot", slot, "--start", "-f", "/dev/null"]
                                    + recvlogical_options("pgoutput", "changerelay_pub"), SERVICE_CPU),
                             stderr=subprocess.PIPE)
    LIVE_CHILDREN.append(drain)
    wait_streaming(source, slot, watch=[drain])
    phase = server_cost(source, slot, seconds, rate, [drain])
    if drain.poll() is not None:
        sys.exit("pg_recvlogical exited during the phase: %s" % drain.stderr.read().decode()[-2000:])
    drain.terminate()
    drain.wait(timeout=60)
    source.psql("SELECT pg_drop_replication_slot('%s')" % slot)
    return phase.tps, phase.behind, phase.cost, 0.0


def relay_phase(source, state, env, slot, seconds, rate, ranges):
    """pgbench while `changerelay run` (echo handler, on SERVICE_CPU, state database on
    SERVICE_CPU) reads a new slot; then waits until every row written in the phase has been
    delivered, so the next phase starts with nothing in flight. Appends the phase's id range
    (low, high] to `ranges`."""
    source.psql("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot)
    service = start_relay(["run"], dict(env, CHANGERELAY_SOURCE_SLOT=slot), SERVICE_CPU)
    wait_streaming(source, slot, watch=[service])
    phase = server_cost(source, slot, seconds, rate, [service])
    low, high = phase.ids
    ranges.append((low, high))
    expected = sum(h - l for l, h in ranges)
    session = state.session()
    wait_deliveries(session, "the phase's %d deliveries" % (high - low), succeeded=expected, watch=[service])
    catch_up = time.monotonic() - phase.ended
    session.close()
    stop_relay(service, "run (write path)")
    source.psql("SELECT pg_drop_replication_slot('%s')" % slot)
    return phase.tps, phase.behind, phase.cost, catch_up


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


def measure(seconds, rounds=2, report=print, rate=None):
    """Runs the rounds; returns {"alone", "recvlogical", "changerelay", "ratio", "rounds",
    "exactness", "cost", "cost_ratio"}: TPS means over the rounds, and the means of the source
    server's CPU microseconds a transaction with each reader (`server_cost`). With `rate`, every
    pgbench runs at that many TPS, and the cost is what tells the readers apart."""
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
        report("PostgreSQL %s; pgbench 4 clients, single-row inserts%s, %d s a phase, %d rounds; source server and "
               "pgbench on CPU %d; the reader, the state database (a second cluster) and the receiver on CPU %d"
               % (source.version, " at %d TPS" % rate if rate else "", seconds, rounds, SOURCE_CPU, SERVICE_CPU))
        tps, cost = collections.defaultdict(list), collections.defaultdict(list)
        ranges = []
        for n in range(rounds):
            tps["alone"].append(pgbench_tps(source, seconds, rate=rate, cpu=SOURCE_CPU))
            order = ["recvlogical", "changerelay"] if n % 2 == 0 else ["changerelay", "recvlogical"]
            lag = {}
            for reader in order:
                if reader == "recvlogical":
                    value, behind, spent, _ = recvlogical_phase(source, "recv_%d" % n, seconds, rate)
                else:
                    value, behind, spent, catch_up = relay_phase(source, state, env, "relay_%d" % n, seconds, rate,
                                                                     ranges)
                tps[reader].append(value)
                cost[reader].append(spent)
                lag[reader] = behind
            report("round %d (%s first): no reader %.0f TPS, pg_recvlogical %.0f TPS, changerelay run %.0f TPS "
                   "(ratio %.3f); WAL unsent by the walsender as pgbench ended: %.0f kB with pg_recvlogical, %.0f kB "
                   "with changerelay, whose last delivery followed %.1f s later; the source server's CPU a "
                   "transaction, until its walsender had sent the phase's WAL: %.1f us with pg_recvlogical, %.1f us "
                   "with changerelay (ratio %.3f)"
                   % (n + 1, order[0], tps["alone"][-1], tps["recvlogical"][-1], tps["changerelay"][-1],
                      tps["recvlogical"][-1] / tps["changerelay"][-1], lag["recvlogical"] / 1024,
                      lag["changerelay"] / 1024, catch_up, cost["recvlogical"][-1], cost["changerelay"][-1],
                      cost["changerelay"][-1] / cost["recvlogical"][-1]))
        received = receiver_latency(stop_receiver(receiver))
        check = exactness(source, state, ranges, received)
        report(check)
        mean = {k: sum(v) / len(v) for k, v in tps.items()}
        cost_mean = {k: sum(v) / len(v) for k, v in cost.items()}
        return dict(mean, ratio=mean["recvlogical"] / mean["changerelay"], rounds=dict(tps), exactness=check,
                    cost=cost_mean, cost_ratio=cost_mean["changerelay"] / cost_mean["recvlogical"])
    finally:
        if receiver.poll() is None:
            receiver.kill()
        source.stop()
        state.stop()


def main(seconds, rounds, rate):
    figures = measure(seconds, rounds, rate=rate)
    print("write path mean over %d rounds: no reader %.0f TPS; pg_recvlogical draining %.0f TPS; changerelay run "
          "%.0f TPS; pg_recvlogical / changerelay = %.3f (goal <= 1.05)"
          % (rounds, figures["alone"], figures["recvlogical"], figures["changerelay"], figures["ratio"]))
    print("the source server's CPU a transaction, the walsender's decoding after the phase included: %.1f us with "
          "pg_recvlogical, %.1f us with changerelay run; changerelay / pg_recvlogical = %.3f"
          % (figures["cost"]["recvlogical"], figures["cost"]["changerelay"], figures["cost_ratio"]))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30, int(sys.argv[2]) if len(sys.argv) > 2 else 2,
         int(sys.argv[3]) if len(sys.argv) > 3 else None)
    print(rss_summary())
