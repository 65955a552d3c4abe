"""Seed-handler benchmark (see bench-handlers.sh): conversation checks and automation runs
end to end through `changerelay run` to a fast loopback receiver, and the workload's
insert TPS with and without the service."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (Cluster, RELAY, echo_environment, relay_environment, rss_summary, start_receiver, start_relay,
                      stop_receiver, stop_relay, wait_deliveries, wait_until)

USERS, WORKFLOWS_PER_USER, STATUSES = 1000, 10, 5
CLIENTS = 4


def reset(cluster):
    """The same starting point for each phase: no conversations, every job at s0, and no
    completed automation run (sql/030 logs them for the rate limit: kept, every later phase's
    s0 -> s1 change fell within the window of the first phase's run and was skipped, and the
    phase waited for calls that never came)."""
    cluster.psql("TRUNCATE user_conversations, automation_execution_logs, trigger_execution_logs, "
                 "changerelay.automation_completion_log")
    cluster.psql("UPDATE jobs SET status = 's0' WHERE status <> 's0'")
    cluster.psql("ALTER SEQUENCE bench_job RESTART")
    cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
    cluster.psql("VACUUM ANALYZE")


def workload(cluster, transactions):
    """TRANSACTIONS transactions, each one conversation insert and one job status change
    (s0 → s1, every job once), from CLIENTS clients; returns (TPS, seconds)."""
    script = os.path.join(cluster.root, "workload.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) "
                "VALUES ('clerk', 'agent', 'el-' || random());\n"
                "UPDATE jobs SET status = 's1' WHERE n = (SELECT nextval('bench_job'));\n")
    began = time.monotonic()
    out = subprocess.run(["pgbench", "-n", "-f", script, "-c", str(CLIENTS), "-j", "2",
                          "-t", str(transactions // CLIENTS), cluster.url], check=True, capture_output=True, text=True).stdout
    return float([line for line in out.splitlines() if line.startswith("tps")][0].split()[2]), time.monotonic() - began


def echo_workload(cluster, transactions):
    """The handlers' workload in shape, for the echo handler: TRANSACTIONS transactions of two
    single-row inserts into `echo_bench` from CLIENTS clients."""
    script = os.path.join(cluster.root, "echo-workload.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO echo_bench (note) VALUES ('clerk');\nINSERT INTO echo_bench (note) VALUES ('s1');\n")
    subprocess.run(["pgbench", "-n", "-f", script, "-c", str(CLIENTS), "-j", "2", "-t", str(transactions // CLIENTS),
                    cluster.url], check=True, capture_output=True)


def finish(cluster, service, calls, began, label):
    """Waits until `calls` deliveries have succeeded, then stops the service; returns the seconds
    since `began` and the log rows written ("trigger_execution_logs completed_automation_logs")."""
    session = cluster.session()
    wait_deliveries(session, "every call (%s)" % label, succeeded=calls, watch=[service])
    elapsed = time.monotonic() - began
    session.close()
    logs = cluster.psql("SELECT (SELECT count(*) FROM trigger_execution_logs) || ' ' || "
                        "(SELECT count(*) FROM automation_execution_logs WHERE status = 'completed')")
    stop_relay(service, label)
    return elapsed, logs


def measure(transactions, report=print):
    """Returns {"alone", "with_service" (TPS), "changes_per_s", "calls_per_s", "seconds", "calls",
    "backlog_calls_per_s", "echo_backlog_per_s"}."""
    if transactions % CLIENTS:
        sys.exit("TRANSACTIONS must be a multiple of %d" % CLIENTS)
    cluster = Cluster()
    receiver, url = start_receiver()
    service = None
    try:
        env = relay_environment(cluster, CHANGERELAY_FUNCTIONS_BASE_URL=url + "/functions/v1",
                                CHANGERELAY_SERVICE_KEY="bench-key")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        cluster.psql("SELECT pg_drop_replication_slot('changerelay')")
        # Workflow k of each user fires on status s(k mod 5): two workflows per status change.
        cluster.psql("""
            INSERT INTO automation_workflows (user_id, name, trigger_type, trigger_config, is_active, status)
            SELECT ('00000000-0000-0000-0000-' || lpad(u::text, 12, '0'))::uuid, 'w' || k, 'job_status_changed',
                   jsonb_build_object('conditions', jsonb_build_array(
                       jsonb_build_object('field', 'status', 'value', 's' || (k %% %d)))), true, 'active'
            FROM generate_series(1, %d) u, generate_series(0, %d) k""" % (STATUSES, USERS, WORKFLOWS_PER_USER - 1))
        cluster.psql("ALTER TABLE jobs ADD COLUMN n int UNIQUE; CREATE SEQUENCE bench_job")
        cluster.psql("""INSERT INTO jobs (user_id, title, status, n)
            SELECT ('00000000-0000-0000-0000-' || lpad((g %% %d + 1)::text, 12, '0'))::uuid, 'job ' || g, 's0', g
            FROM generate_series(1, %d) g""" % (USERS, transactions))
        report("PostgreSQL %s, %d cores; %d transactions of one conversation insert and one job status change; "
               "%d users x %d workflows (each status change fires 2)"
               % (cluster.version, os.cpu_count(), transactions, USERS, WORKFLOWS_PER_USER))

        reset(cluster)
        alone, _ = workload(cluster, transactions)

        reset(cluster)
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        service = start_relay(["run"], env)
        wait_until("the service to stream", lambda: cluster.psql(
            "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'changerelay'") == "1", 60,
            watch=[service])
        began = time.monotonic()
        with_service, writing = workload(cluster, transactions)
        calls = transactions * 3
        elapsed, logs = finish(cluster, service, calls, began, "run (seed handlers)")
        service = None

        # The same workload written first, with no reader, then drained: the handlers' own rate,
        # with the cores to themselves as the echo baseline has them.
        reset(cluster)
        cluster.psql("SELECT pg_drop_replication_slot('changerelay')")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        workload(cluster, transactions)
        cluster.psql("VACUUM ANALYZE")
        drain_began = time.monotonic()
        service = start_relay(["run"], env)
        drained, backlog_logs = finish(cluster, service, calls, drain_began, "run (seed handlers, backlog)")
        service = None
        if backlog_logs != logs:
            sys.exit("the backlog's log rows (%s) differ from the live run's (%s)" % (backlog_logs, logs))

        # The echo handler over as many changes in as many transactions, drained the same way:
        # planning and dispatch both, as the backlog row above has them.
        reset(cluster)
        cluster.psql("SELECT pg_drop_replication_slot('changerelay')")
        cluster.psql("CREATE TABLE echo_bench (id bigserial PRIMARY KEY, note text, at timestamptz DEFAULT now());"
                     "ALTER PUBLICATION changerelay_pub ADD TABLE echo_bench")
        echo_env = echo_environment(cluster, url, "public.echo_bench")
        subprocess.run([RELAY, "setup"], env=echo_env, check=True, capture_output=True)
        echo_workload(cluster, transactions)
        cluster.psql("VACUUM ANALYZE")
        echo_began = time.monotonic()
        service = start_relay(["run"], echo_env)
        echo_drained, _ = finish(cluster, service, 2 * transactions, echo_began, "run (echo, backlog)")
        service = None
        summary = stop_receiver(receiver)
        report("insert TPS  %.0f without ChangeRelay; %.0f with it running (ratio %.3f, cost %.1f %%)"
               % (alone, with_service, with_service / alone, 100 * (alone - with_service) / alone))
        report("end to end  %d changes and %d calls in %.1f s from the first write to the last recorded call "
               "(writes took %.1f s): %.0f changes/s, %.0f calls/s" % (2 * transactions, calls, elapsed, writing,
                                                                      2 * transactions / elapsed, calls / elapsed))
        report("backlog     the same %d calls drained from a slot written beforehand: %.1f s from start to the "
               "last recorded call, %.0f calls/s" % (calls, drained, calls / drained))
        report("echo        %d echo changes in as many transactions, drained the same way: %.1f s, %.0f deliveries/s; "
               "the handlers' backlog calls/s are %.2f× that" % (2 * transactions, echo_drained,
                                                                2 * transactions / echo_drained,
                                                                calls / drained / (2 * transactions / echo_drained)))
        report("log rows    trigger_execution_logs + completed automation_execution_logs: %s (each run); receiver, over the three runs: %s"
               % (logs, summary))
        return {"alone": alone, "with_service": with_service, "changes_per_s": 2 * transactions / elapsed,
                "calls_per_s": calls / elapsed, "seconds": elapsed, "calls": calls,
                "backlog_calls_per_s": calls / drained, "echo_backlog_per_s": 2 * transactions / echo_drained}
    finally:
        if service is not None:
            service.kill()
        if receiver.poll() is None:
            receiver.kill()
        cluster.stop()


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
    print(rss_summary())
