"""Dual-write benchmark (see bench-dual-write.sh): apply-mode sync throughput through
`changerelay run`, against a one-shot SQL copy of the same rows, and drift-check time."""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, wait_until
from habit_rows import ONE_SHOT, ROWS_SQL

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
PER_TRANSACTION = 1000

def count(cluster, sql):
    return int(cluster.psql(sql))


def main():
    cluster = Cluster()
    service = None
    try:
        env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
                   CHANGERELAY_SOURCE_STATUS_INTERVAL_MS="200", CHANGERELAY_DUAL_WRITE_MODE="apply")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        print("PostgreSQL %s, %d cores; %d habit_tracker rows of 5 habits (about 21 records each), "
              "written in transactions of %d" % (cluster.version, os.cpu_count(), ROWS, PER_TRANSACTION))

        service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until("the service to start", lambda: count(
            cluster, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'changerelay'") == 1, 60)
        began = time.monotonic()
        for first in range(1, ROWS + 1, PER_TRANSACTION):
            cluster.psql(ROWS_SQL % (first, min(ROWS, first + PER_TRANSACTION - 1)))
        writing = time.monotonic() - began
        wait_until("every row applied", lambda: count(cluster, "SELECT count(*) FROM idempotency_log") == ROWS)
        elapsed = time.monotonic() - began
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        service = None
        sizes = cluster.psql("SELECT (SELECT count(*) FROM weeks) || ' weeks, ' || (SELECT count(*) FROM habits) "
                             "|| ' habits, ' || (SELECT count(*) FROM habit_records) || ' records'")

        cluster.psql("VACUUM ANALYZE")
        checked = time.monotonic()
        done = subprocess.run([RELAY, "drift-check", "--json"], env=env, capture_output=True, text=True)
        check_wall = time.monotonic() - checked
        report = json.loads(done.stdout)

        cluster.psql("TRUNCATE children, weeks, habits, habit_records")
        one_shot_began = time.monotonic()
        cluster.psql(ONE_SHOT)
        one_shot = time.monotonic() - one_shot_began

        print("apply       %d rows (%s) in %.1f s from the first write to the last applied (writes took %.1f s): "
              "%.0f rows/s" % (ROWS, sizes, elapsed, writing, ROWS / elapsed))
        print("baseline    the same projection as one set-based SQL copy: %.1f s, %.0f rows/s; the service "
              "runs at %.2f of it, while also writing one idempotency_log row per change"
              % (one_shot, ROWS / one_shot, (ROWS / elapsed) / (ROWS / one_shot)))
        print("drift-check exit %d, %s rows checked, %s drifted, %.1f s (%.1f s with the process); "
              "the target is under 10 s" % (done.returncode, report["rows_checked"], report["rows_drifted"],
                                             report["elapsed_ms"] / 1000, check_wall))
    finally:
        if service is not None:
            service.kill()
        cluster.stop()


main()
