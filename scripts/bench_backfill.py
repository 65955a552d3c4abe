"""Backfill benchmark (see bench-backfill.sh): ROWS existing habit_tracker rows backfilled into the
new schema in apply mode through `changerelay backfill`, rows/s against the one-shot SQL copy of the
same projection, and the live stream's commit-to-delivery latency while the backfill runs."""
import json, os, signal, subprocess, sys, threading, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, wait_deliveries, wait_until
from habit_rows import ONE_SHOT, ROWS_SQL

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
CHUNK = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
RECEIVER = os.path.abspath(".build/release/BenchReceiver")
PROBE_INTERVAL = 0.01


def count(cluster, sql):
    return int(cluster.psql(sql))


def probe(session, stop):
    """One live insert every 10 ms until stopped: the echo handler's deliveries carry their commit time."""
    while not stop.is_set():
        session.value("INSERT INTO live_probe (v) VALUES ('live') RETURNING id")
        time.sleep(PROBE_INTERVAL)


def main():
    cluster = Cluster()
    service = receiver = None
    try:
        receiver = subprocess.Popen([RECEIVER], stdout=subprocess.PIPE, text=True)
        receiver_url = receiver.stdout.readline().strip()
        env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
                   CHANGERELAY_SOURCE_STATUS_INTERVAL_MS="200", CHANGERELAY_DUAL_WRITE_MODE="apply",
                   CHANGERELAY_HANDLERS_ECHO_URL=receiver_url + "/echo", CHANGERELAY_HANDLERS_ECHO_TABLES="public.live_probe")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        cluster.psql("CREATE TABLE live_probe (id bigserial PRIMARY KEY, v text); "
                     "ALTER PUBLICATION changerelay_pub ADD TABLE live_probe")
        for first in range(1, ROWS + 1, 100_000):
            cluster.psql(ROWS_SQL % (first, min(ROWS, first + 99_999)))
        # The rows existed before the slot as far as the stream is concerned: only a backfill brings them.
        end = cluster.psql("SELECT pg_current_wal_lsn()")
        wait_until("the slot to pass the rows", lambda: cluster.psql(
            "SELECT (pg_replication_slot_advance('changerelay', '%s')).end_lsn >= '%s'" % (end, end)) == "t", 120)
        cluster.psql("VACUUM ANALYZE habit_tracker")
        print("PostgreSQL %s, %d cores; %d existing habit_tracker rows of 5 habits (about 21 records each); "
              "chunks of %d; a live insert every %d ms into an echo-handled table meanwhile"
              % (cluster.version, os.cpu_count(), ROWS, CHUNK, PROBE_INTERVAL * 1000))

        service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("the service to start", lambda: count(
            cluster, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'changerelay'") == 1, 60)
        stop = threading.Event()
        session = cluster.session()
        live = threading.Thread(target=probe, args=(session, stop))
        live.start()
        began = time.monotonic()
        done = subprocess.run([RELAY, "backfill", "--table", "habit_tracker", "--chunk-size", str(CHUNK)],
                              env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - began
        stop.set()
        live.join()
        if done.returncode != 0:
            sys.exit("backfill failed: " + done.stderr[-2000:])
        probes = int(session.value("SELECT count(*) FROM live_probe"))
        wait_deliveries(session, "the live deliveries", timeout=300)
        session.close()
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        service = None
        receiver.send_signal(signal.SIGTERM)
        latency = receiver.stdout.read().strip()
        receiver.wait(timeout=60)
        receiver = None
        keys = count(cluster, "SELECT count(*) FROM idempotency_log WHERE key LIKE 'dual_write:backfill:%'")
        sizes = cluster.psql("SELECT (SELECT count(*) FROM weeks) || ' weeks, ' || (SELECT count(*) FROM habits) "
                             "|| ' habits, ' || (SELECT count(*) FROM habit_records) || ' records'")
        check = subprocess.run([RELAY, "drift-check", "--json"], env=env, capture_output=True, text=True)
        report = json.loads(check.stdout)

        cluster.psql("TRUNCATE children, weeks, habits, habit_records")
        one_shot_began = time.monotonic()
        cluster.psql(ONE_SHOT)
        one_shot = time.monotonic() - one_shot_began

        print("backfill    %d rows (%s) in %.1f s: %.0f rows/s; %d idempotency_log keys of the backfill; drift-check "
              "exit %d, %s rows checked, %s drifted" % (ROWS, sizes, elapsed, ROWS / elapsed, keys, check.returncode,
                                                       report["rows_checked"], report["rows_drifted"]))
        print("baseline    the same projection as one set-based SQL copy: %.1f s, %.0f rows/s; the backfill runs at "
              "%.2f of it, while the live stream flows and every row gets its idempotency_log row"
              % (one_shot, ROWS / one_shot, one_shot / elapsed))
        print("live        %d inserts during the backfill, commit to request arrival: %s" % (probes, latency))
    finally:
        for child in (service, receiver):
            if child is not None and child.poll() is None:
                child.kill()
        cluster.stop()


main()
