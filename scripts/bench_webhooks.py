"""Webhook fan-out benchmark (see bench-webhooks.sh)."""
import os, signal, socket, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import OPEN, Cluster, RELAY, wait_until

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
RECEIVER = os.path.abspath(".build/release/BenchReceiver")
TICKS = os.sysconf("SC_CLK_TCK")


def busy_seconds():
    """CPU time the whole machine spent (user, nice, system, irq, softirq) since boot: the
    service, the receiver, Postgres' backends and walsender, and this script's polls."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / TICKS


def backlog(cluster, env):
    """A fresh slot with MESSAGES chat messages (one transaction each 1 000) waiting in it."""
    cluster.psql("TRUNCATE changerelay.deliveries, changerelay.checkpoints RESTART IDENTITY CASCADE")
    # A new slot starts a new history: the config log of the last phase does not apply to it.
    cluster.psql("TRUNCATE chat_messages, webhook_logs, changerelay.webhook_log_ids, changerelay.webhook_config_log")
    cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    session = cluster.psql("INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid()) RETURNING id")
    for start in range(0, MESSAGES, 1000):
        cluster.psql("INSERT INTO chat_messages (session_id, role, content) SELECT '%s', 'assistant', 'message ' || g "
                     "FROM generate_series(%d, %d) g" % (session.split()[0], start + 1, min(MESSAGES, start + 1000)))
    cluster.psql("VACUUM ANALYZE")


def drain(cluster, env, planned, delivered, skipped_endpoint="''"):
    """Runs the service until `planned` deliveries are planned and every one of them but
    those to `skipped_endpoint` (an SQL expression) is finished: `delivered` of them.
    Returns deliveries/s over that time, the machine's CPU time per delivery (µs) and the WAL
    written per delivery (bytes): on two cores the drain is CPU-bound, so the second tells
    what a delivery costs whatever else moved the machine's speed, and the third is most of
    what Postgres spends on it (every row and index entry the pipeline writes, updated rows
    in full: with wal_level=logical an UPDATE logs the whole new row).
    The poll reads only the unfinished rows (through the claim's partial indexes): counting
    the finished ones walked the whole table five times a second, beside the service."""
    unfinished = ("SELECT coalesce(max(id), 0) >= %d AND NOT EXISTS (SELECT FROM changerelay.deliveries "
                  "WHERE %s AND endpoint IS DISTINCT FROM %s) "
                  "FROM changerelay.deliveries" % (planned, OPEN, skipped_endpoint))
    # Each phase starts from a checkpoint: one triggered by the WAL of the phases before
    # (every ~2 GB at max_wal_size 4 GB) would otherwise fall inside whichever phase
    # happened to be running, and every page it touched first after it would be logged whole.
    cluster.psql("CHECKPOINT")
    session = cluster.session()
    began, busy = time.monotonic(), busy_seconds()
    wal = session.value("SELECT pg_current_wal_insert_lsn()")
    service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until("%d deliveries" % delivered, lambda: session.value(unfinished) == "t", every=0.2)
        rate = delivered / (time.monotonic() - began)
        cpu = 1e6 * (busy_seconds() - busy) / delivered
        wal = float(session.value("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '%s')" % wal)) / delivered
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        session.close()
    succeeded = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'"))
    if succeeded < delivered:
        sys.exit("only %d of %d deliveries succeeded" % (succeeded, delivered))
    return rate, cpu, wal


def main():
    cluster = Cluster()
    receiver = subprocess.Popen([RECEIVER], stdout=subprocess.PIPE, text=True)
    url = receiver.stdout.readline().strip()
    # An endpoint that accepts connections and never answers.
    hanging = socket.socket()
    hanging.bind(("127.0.0.1", 0))
    hanging.listen(4096)
    hanging_url = "http://127.0.0.1:%d/hang" % hanging.getsockname()[1]
    try:
        base = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
                    CHANGERELAY_SOURCE_STATUS_INTERVAL_MS="200", CHANGERELAY_DELIVERY_CONCURRENCY="64",
                    CHANGERELAY_CONVERSATION_CHECKS_ENABLED="false", CHANGERELAY_AUTOMATIONS_ENABLED="false")
        echo = dict(base, CHANGERELAY_WEBHOOKS_ENABLED="false", CHANGERELAY_HANDLERS_ECHO_URL=url + "/echo",
                    CHANGERELAY_HANDLERS_ECHO_TABLES="public.chat_messages")
        hooks = dict(base, CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
                     CHANGERELAY_DELIVERY_TIMEOUT_MS="600000")
        subprocess.run([RELAY, "setup"], env=base, check=True, capture_output=True)
        print("PostgreSQL %s, %d cores; %d chat messages in the slot; delivery.concurrency 64"
              % (cluster.version, os.cpu_count(), MESSAGES))

        def configs(urls):
            # The last phase's log rows first: deleting their configs would set each one's reference NULL.
            cluster.psql("TRUNCATE webhook_logs; DELETE FROM webhook_configs")
            for index, target in enumerate(urls):
                cluster.psql("INSERT INTO webhook_configs (name, url, secret, events) "
                             "VALUES ('bench %d', '%s', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', "
                             "'{chat.message.created}')" % (index, target))

        # Rounds of echo then webhooks, each pair one measurement: the machine's speed moves
        # between runs by more than the ratio does within one, so the median pair is reported.
        rounds = []
        for number in range(1, ROUNDS + 1):
            configs([])
            backlog(cluster, echo)
            echo_rate, echo_cpu, echo_wal = drain(cluster, echo, MESSAGES, MESSAGES)
            configs([url + "/hook/%d" % i for i in range(4)])
            backlog(cluster, hooks)
            fast, fast_cpu, fast_wal = drain(cluster, hooks, 4 * MESSAGES, 4 * MESSAGES)
            rounds.append((fast / echo_rate, echo_rate, echo_cpu, echo_wal, fast, fast_cpu, fast_wal))
            print("round %d: echo %8.0f deliveries/s, %.0f us of CPU and %.0f bytes of WAL each; "
                  "webhooks %8.0f/s, %.0f us and %.0f bytes each: %.2f x echo"
                  % (number, echo_rate, echo_cpu, echo_wal, fast, fast_cpu, fast_wal, fast / echo_rate), flush=True)

        configs([url + "/hook/%d" % i for i in range(3)] + [hanging_url])
        backlog(cluster, hooks)
        others, _, _ = drain(cluster, hooks, 4 * MESSAGES, 3 * MESSAGES, skipped_endpoint="(SELECT 'webhook:' || id FROM webhook_configs "
                                                                        "WHERE url = '%s')" % hanging_url)
        last_fast = rounds[-1][4]

        ratio, echo_rate, echo_cpu, echo_wal, fast, fast_cpu, fast_wal = sorted(rounds)[len(rounds) // 2]
        print("median of %d rounds:" % len(rounds))
        print("echo        %8.0f deliveries/s (baseline), %.0f us of CPU and %.0f bytes of WAL each"
              % (echo_rate, echo_cpu, echo_wal))
        print("webhooks    %8.0f deliveries/s to 4 endpoints: %.2f x echo (goal >= 0.8), %.0f us of CPU each: "
              "echo's cost / theirs %.2f; %.0f bytes of WAL each (the webhook_logs row and its update)"
              % (fast, ratio, fast_cpu, echo_cpu / fast_cpu, fast_wal))
        # Isolation: the three healthy endpoints against the same three when none hangs, in the
        # round just before (the fast phase spread its deliveries evenly over four).
        print("one hanging %8.0f deliveries/s to the other 3: %.2f x their rate without it in the last round (goal >= 0.9)"
              % (others, others / (last_fast * 3 / 4)))
    finally:
        hanging.close()
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=120)
        cluster.stop()


main()
