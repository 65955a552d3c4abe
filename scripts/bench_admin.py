"""What metrics and the admin server cost the pipeline (see bench-admin.sh).

The same backlog is planned, and the same deliveries dispatched, with `admin.listen = "off"`
(no admin server, swift-metrics not bootstrapped) and with the admin server on and scraped
every second (`/metrics` and `/api/status`, as Prometheus and the dashboard would). The runs
alternate, off and on then on and off, ROUNDS pairs; each planning run reads its own slot, created before
the backlog, so every run reads the same WAL.
"""
import os, signal, statistics, subprocess, sys, threading, time, urllib.request
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import OPEN, Cluster, RELAY, echo_environment, start_receiver, free_port, wait_until

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
DISPATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2


class Scraper:
    """GETs /metrics and /api/status every second until stopped; counts what it got."""

    def __init__(self, base):
        self.base, self.stopped, self.scrapes = base, threading.Event(), 0
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        while not self.stopped.wait(1.0):
            try:
                for path in ("/metrics", "/api/status"):
                    urllib.request.urlopen(self.base + path, timeout=5).read()
                self.scrapes += 1
            except OSError:
                pass  # not listening yet

    def stop(self):
        self.stopped.set()
        self.thread.join()
        return self.scrapes


def alternating(index):
    """Off, on, then on, off, and so on: neither setting always runs first of its pair."""
    return (index % 2 == 1) != ((index // 2) % 2 == 1)


def timed(env, only, done, admin):
    """Runs `run --only ONLY` until `done()`; with the admin server scraped when `admin`."""
    env = dict(env)
    scraper = None
    if admin:
        port = free_port()
        env["CHANGERELAY_ADMIN_LISTEN"] = "127.0.0.1:%d" % port
        scraper = Scraper("http://127.0.0.1:%d" % port)
    else:
        env["CHANGERELAY_ADMIN_LISTEN"] = "off"
    began = time.monotonic()
    proc = subprocess.Popen([RELAY, "run", "--only", only], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(only, done)
    elapsed = time.monotonic() - began
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    scrapes = scraper.stop() if scraper else 0
    if admin and scrapes == 0:
        raise SystemExit("the admin server was never scraped")
    return elapsed


def main():
    cluster = Cluster()
    receiver, receiver_url = start_receiver()
    try:
        env = echo_environment(cluster, receiver_url, "public.bench")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        cluster.psql("CREATE TABLE bench (id bigint PRIMARY KEY, a text, b text, c text, d text, ts timestamptz);"
                     "ALTER PUBLICATION changerelay_pub ADD TABLE bench")
        slots = ["bench_%d" % n for n in range(2 * ROUNDS)]
        for slot in slots:
            cluster.psql("SELECT pg_create_logical_replication_slot('%s', 'pgoutput')" % slot)
        cluster.psql("""DO $$ BEGIN FOR t IN 0..%d LOOP
                  INSERT INTO bench SELECT g, md5(g::text), 'customer ' || g, 'status-' || (g %% 7), repeat('x', 20), now()
                  FROM generate_series(t * 10000 + 1, t * 10000 + 10000) g;
                  COMMIT; END LOOP; END $$""" % (ROWS // 10000 - 1))
        endpos = cluster.psql("SELECT pg_current_wal_insert_lsn()")
        print("PostgreSQL %s; backlog %d rows in %d transactions; %d pairs of runs, off and on"
              % (cluster.version, ROWS, ROWS // 10000, ROUNDS))

        planning = {False: [], True: []}
        for index, slot in enumerate(slots):
            admin = alternating(index)
            cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
            run_env = dict(env, CHANGERELAY_SOURCE_SLOT=slot)
            planning[admin].append(ROWS / timed(run_env, "planner", lambda: cluster.psql(
                "SELECT coalesce((SELECT lsn >= '%s' FROM changerelay.checkpoints WHERE slot_name = '%s'), false)"
                % (endpos, slot)) == "t", admin))

        cluster.psql("DELETE FROM changerelay.deliveries WHERE id NOT IN "
                     "(SELECT id FROM changerelay.deliveries ORDER BY id LIMIT %d)" % DISPATCH)
        dispatch = {False: [], True: []}
        for index in range(2 * ROUNDS):
            admin = alternating(index)
            cluster.psql("TRUNCATE changerelay.delivery_attempts; UPDATE changerelay.deliveries SET status = 'pending', "
                         "attempt = 0, next_attempt_at = now(), locked_until = NULL, completed_at = NULL")
            cluster.psql("VACUUM ANALYZE changerelay.deliveries")
            # Every row is open from the start, so none open is all sent; the poll reads them through
            # the claim's index rather than counting the table.
            session = cluster.session()
            dispatch[admin].append(DISPATCH / timed(env, "dispatcher", lambda: session.value(
                "SELECT NOT EXISTS (SELECT FROM changerelay.deliveries WHERE %s)" % OPEN) == "t", admin))
            session.close()
            succeeded = cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'")
            if succeeded != str(DISPATCH):
                sys.exit("dispatch: %s of %d deliveries succeeded" % (succeeded, DISPATCH))

        for name, rates, unit in (("planning", planning, "rows/s"), ("dispatch", dispatch, "deliveries/s")):
            off, on = statistics.median(rates[False]), statistics.median(rates[True])
            print("%-9s admin off %s %s; admin on, scraped every second %s %s; ratio %.3f (goal >= 0.97)"
                  % (name, " ".join("%.0f" % r for r in rates[False]), unit,
                     " ".join("%.0f" % r for r in rates[True]), unit, on / off))
    finally:
        receiver.kill()
        cluster.stop()


main()
