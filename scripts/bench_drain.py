"""Drain benchmark driver (see bench-drain.sh)."""
import os, sys
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, timed_drain, recvlogical_options

ROWS, ROUNDS = int(sys.argv[1]), int(sys.argv[2])


def main():
    cluster = Cluster()
    try:
        cluster.psql("CREATE TABLE bench (id bigint PRIMARY KEY, a text, b text, c text, d text, ts timestamptz);"
                     "CREATE PUBLICATION bench_pub FOR TABLE bench")
        plugins = ["pgoutput", "wal2json"]
        for plugin in plugins:
            for r in range(ROUNDS):
                for tool in ("relay", "recv"):
                    cluster.psql("SELECT pg_create_logical_replication_slot('%s_%s_%d', '%s')" % (tool, plugin, r, plugin))
        cluster.psql("""DO $$ BEGIN FOR t IN 0..%d LOOP
                  INSERT INTO bench SELECT g, md5(g::text), 'customer ' || g, 'status-' || (g %% 7), repeat('x', 20), now()
                  FROM generate_series(t * 10000 + 1, t * 10000 + 10000) g;
                  COMMIT; END LOOP; END $$""" % (ROWS // 10000 - 1))
        endpos = cluster.psql("SELECT pg_current_wal_insert_lsn()")
        env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_SOURCE_PUBLICATION="bench_pub",
                   CHANGERELAY_LOG_LEVEL="warning")
        print("backlog: %d rows in %d transactions, end %s; PostgreSQL %s" % (ROWS, ROWS // 10000, endpos, cluster.version))
        for plugin in plugins:
            relay_times, recv_times, rss = [], [], []
            for r in range(ROUNDS):
                t, m, out = timed_drain([RELAY, "tail", "--plugin", plugin, "--slot", "relay_%s_%d" % (plugin, r),
                                         "--format", "none", "--limit", str(ROWS)], env)
                assert out.strip() == "%d changes" % ROWS, out
                relay_times.append(t), rss.append(m)
                t, _, _ = timed_drain(["pg_recvlogical", "-d", cluster.url, "--slot", "recv_%s_%d" % (plugin, r), "--start",
                                       "--endpos", endpos, "-f", "/dev/null", "--no-loop"]
                                      + recvlogical_options(plugin, "bench_pub"))
                recv_times.append(t)
            best_relay, best_recv = min(relay_times), min(recv_times)
            print("%-9s changerelay %.2f s (%.0f rows/s)  pg_recvlogical %.2f s  ratio %.2f  peak RSS %.1f MiB  "
                  "[all: relay %s, recv %s]" % (plugin, best_relay, ROWS / best_relay, best_recv,
                                                best_relay / best_recv, max(rss),
                                                ", ".join("%.2f" % x for x in relay_times),
                                                ", ".join("%.2f" % x for x in recv_times)))
    finally:
        cluster.stop()


main()
