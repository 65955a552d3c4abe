"""Message buffering benchmark (see bench-buffers.sh)."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, wait_until

CONVERSATIONS = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
ROUNDS = 10
PER_TRANSACTION = 100
# A round spread over this long: the last round's 10 000 deadlines fall due at 2 500/s, within
# what the dispatcher sends, so lateness measures the timers rather than a queue.
ROUND_SECONDS = 4.0
RECEIVER = os.path.abspath(".build/release/BenchReceiver")


def main():
    cluster = Cluster()
    receiver = subprocess.Popen([RECEIVER], stdout=subprocess.PIPE, text=True)
    url = receiver.stdout.readline().strip()
    env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
               CHANGERELAY_FUNCTIONS_BASE_URL=url + "/functions/v1", CHANGERELAY_SERVICE_KEY="bench",
               CHANGERELAY_MESSAGE_BUFFER_DURATION_MS="30000", CHANGERELAY_CONVERSATION_CHECKS_ENABLED="false",
               CHANGERELAY_AUTOMATIONS_ENABLED="false", CHANGERELAY_WEBHOOKS_ENABLED="false")
    service = None
    try:
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        print("PostgreSQL %s, %d cores; %d conversations x %d messages, 30 s windows"
              % (cluster.version, os.cpu_count(), CONVERSATIONS, ROUNDS))
        service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        session = cluster.session()
        pause = ROUND_SECONDS / max(1, CONVERSATIONS // PER_TRANSACTION)
        for round in range(ROUNDS):
            for start in range(0, CONVERSATIONS, PER_TRANSACTION):
                session.value("INSERT INTO buffered_messages (conversation_id, content, message_type) "
                              "SELECT g, 'round %d', 'incoming' FROM generate_series(%d, %d) g"
                              % (round, start, min(CONVERSATIONS, start + PER_TRANSACTION) - 1))
                time.sleep(pause)
        session.close()
        wait_until("every buffer completed", lambda: cluster.psql(
            "SELECT count(*) FROM message_buffer WHERE status = 'completed'") == str(CONVERSATIONS),
            timeout=600, every=0.5)
        print(cluster.psql("""
            SELECT format('%s buffers of %s messages; flushed at %s buffers/s; lateness ms p50 %s p99 %s max %s',
                          count(*), min(b.message_count),
                          round(count(*) / greatest(extract(epoch FROM max(a.started_at) - min(a.started_at)), 0.001)),
                          round((percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - b.flush_due_at) * 1000))::numeric, 1),
                          round((percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - b.flush_due_at) * 1000))::numeric, 1),
                          round(max(extract(epoch FROM a.started_at - b.flush_due_at) * 1000)::numeric, 1))
            FROM message_buffer b
            -- A flush's key is message_buffering:buffer:<first message id>@<first commit, µs>.
            JOIN changerelay.deliveries d ON split_part(d.idempotency_key, '@', 1) = 'message_buffering:buffer:' || b.id
                                           AND d.handler = 'message_buffering'
            JOIN changerelay.delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1"""))
    finally:
        if service:
            service.send_signal(signal.SIGTERM)
            service.wait(timeout=120)
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=120)
        cluster.stop()


main()
