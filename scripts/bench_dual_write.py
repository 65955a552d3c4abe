"""Dual-write benchmark (see bench-dual-write.sh): apply-mode sync throughput through
`changerelay run`, against a one-shot SQL copy of the same rows, and drift-check time."""
import json, os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, relay_environment, rss_summary, start_relay, stop_relay, wait_until
from habit_rows import ONE_SHOT, ROWS_SQL

PER_TRANSACTION = 1000

def count(cluster, sql):
    return int(cluster.psql(sql))


def measure(rows, report=print):
    """Returns {"rows_per_s", "one_shot_rows_per_s", "ratio", "drift_check_s", "drifted"}."""
    cluster = Cluster()
    service = None
    try:
        env = relay_environment(cluster, CHANGERELAY_DUAL_WRITE_MODE="apply")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        report("PostgreSQL %s, %d cores; %d habit_tracker rows of 5 habits (about 21 records each), "
               "written in transactions of %d" % (cluster.version, os.cpu_count(), rows, PER_TRANSACTION))

        service = start_relay(["run"], env)
        wait_until("the service to start", lambda: count(
            cluster, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'changerelay'") == 1, 60,
            watch=[service])
        began = time.monotonic()
        for first in range(1, rows + 1, PER_TRANSACTION):
            cluster.psql(ROWS_SQL % (first, min(rows, first + PER_TRANSACTION - 1)))
        writing = time.monotonic() - began
        # The last row's week is written in the same checkpoint transaction as its log row,
        # and batches commit in order: one index probe a poll, on one kept session. Counting
        # idempotency_log instead read a table growing to ROWS wide rows (23 ms a poll at
        # 100 000, 5 s of a core over the run, taken from the service being measured).
        last = count(cluster, "SELECT max(id) FROM habit_tracker")
        session = cluster.session()
        wait_until("every row applied", lambda: session.value(
            "SELECT count(*) FROM weeks WHERE source_habit_tracker_id = %d" % last) == "1", watch=[service])
        elapsed = time.monotonic() - began
        session.close()
        logged = count(cluster, "SELECT count(*) FROM idempotency_log")
        if logged != rows:
            sys.exit("dual-write: %d idempotency_log rows once the last week was applied, not %d" % (logged, rows))
        stop_relay(service, "run (dual-write apply)")
        service = None
        sizes = cluster.psql("SELECT (SELECT count(*) FROM weeks) || ' weeks, ' || (SELECT count(*) FROM habits) "
                             "|| ' habits, ' || (SELECT count(*) FROM habit_records) || ' records'")

        cluster.psql("VACUUM ANALYZE")
        checked = time.monotonic()
        done = subprocess.run([RELAY, "drift-check", "--json"], env=env, capture_output=True, text=True)
        check_wall = time.monotonic() - checked
        report_json = json.loads(done.stdout)

        cluster.psql("TRUNCATE children, weeks, habits, habit_records")
        one_shot_began = time.monotonic()
        cluster.psql(ONE_SHOT)
        one_shot = time.monotonic() - one_shot_began

        report("apply       %d rows (%s) in %.1f s from the first write to the last applied (writes took %.1f s): "
               "%.0f rows/s" % (rows, sizes, elapsed, writing, rows / elapsed))
        report("baseline    the same projection as one set-based SQL copy: %.1f s, %.0f rows/s; the service "
               "runs at %.2f of it, while also writing one idempotency_log row per change"
               % (one_shot, rows / one_shot, (rows / elapsed) / (rows / one_shot)))
        report("drift-check exit %d, %s rows checked, %s drifted, %.1f s (%.1f s with the process); "
               "the target is under 10 s" % (done.returncode, report_json["rows_checked"], report_json["rows_drifted"],
                                              report_json["elapsed_ms"] / 1000, check_wall))
        if done.returncode != 0 or report_json["rows_drifted"] != 0:
            sys.exit("drift-check: exit %d, %s rows drifted" % (done.returncode, report_json["rows_drifted"]))
        return {"rows_per_s": rows / elapsed, "one_shot_rows_per_s": rows / one_shot,
                "ratio": (rows / elapsed) / (rows / one_shot), "drift_check_s": report_json["elapsed_ms"] / 1000,
                "drifted": report_json["rows_drifted"]}
    finally:
        if service is not None:
            service.kill()
        cluster.stop()


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    print(rss_summary())
