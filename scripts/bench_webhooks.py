"""Webhook fan-out benchmark (see bench-webhooks.sh)."""
import os, signal, socket, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, wait_until

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
RECEIVER = os.path.abspath(".build/release/BenchReceiver")


def backlog(cluster, env):
    """A fresh slot with MESSAGES chat messages (one transaction each 1 000) waiting in it."""
    cluster.psql("TRUNCATE changerelay.deliveries, changerelay.checkpoints CASCADE")
    # A new slot starts a new history: the config log of the last phase does not apply to it.
    cluster.psql("TRUNCATE chat_messages, webhook_logs, changerelay.webhook_log_ids, changerelay.webhook_config_log")
    cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    session = cluster.psql("INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid()) RETURNING id")
    for start in range(0, MESSAGES, 1000):
        cluster.psql("INSERT INTO chat_messages (session_id, role, content) SELECT '%s', 'assistant', 'message ' || g "
                     "FROM generate_series(%d, %d) g" % (session.split()[0], start + 1, min(MESSAGES, start + 1000)))
    cluster.psql("VACUUM ANALYZE")


def drain(cluster, env, done_sql, expected):
    """Runs the service until `done_sql` counts `expected`; deliveries/s over that time."""
    session = cluster.session()
    began = time.monotonic()
    service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until("%d deliveries" % expected, lambda: int(session.value(done_sql)) >= expected, every=0.2)
        return expected / (time.monotonic() - began)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(timeout=120)
        session.close()


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

        backlog(cluster, echo)
        echo_rate = drain(cluster, echo, "SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'",
                          MESSAGES)

        def configs(urls):
            cluster.psql("DELETE FROM webhook_configs")
            for index, target in enumerate(urls):
                cluster.psql("INSERT INTO webhook_configs (name, url, secret, events) "
                             "VALUES ('bench %d', '%s', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', "
                             "'{chat.message.created}')" % (index, target))

        configs([url + "/hook/%d" % i for i in range(4)])
        backlog(cluster, hooks)
        fast = drain(cluster, hooks, "SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'",
                     4 * MESSAGES)

        configs([url + "/hook/%d" % i for i in range(3)] + [hanging_url])
        backlog(cluster, hooks)
        others = drain(cluster, hooks, "SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'",
                       3 * MESSAGES)

        print("echo        %8.0f deliveries/s (baseline)" % echo_rate)
        print("webhooks    %8.0f deliveries/s to 4 endpoints: %.2f x echo (goal >= 0.8)" % (fast, fast / echo_rate))
        print("one hanging %8.0f deliveries/s to the other 3: %.2f x without it (goal >= 0.9)" % (others, others / fast))
    finally:
        hanging.close()
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=120)
        cluster.stop()


main()
