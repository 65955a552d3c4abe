"""Timer lateness benchmark (see bench-timers.sh)."""
import os, signal, subprocess, sys, tempfile, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (Cluster, RELAY, relay_environment, rss_summary, start_receiver, start_relay, stop_receiver,
                      stop_relay, wait_until)

CHECKS_PER_TICK = 10
MESSAGES_PER_TICK = 2


def percentiles(cluster, what, lateness_sql, report):
    """Prints the lateness percentiles of `lateness_sql`'s rows; returns {"count", "p50", "p99", "max"}."""
    row = cluster.psql("SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1), "
                       "round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1) "
                       "FROM (%s) lateness(ms)" % lateness_sql)
    count, p50, p99, worst = row.split("|")
    if int(count) == 0:
        sys.exit("bench-timers: no %s found to measure: the query matched no rows" % what)
    report("%-9s %6s timers  lateness ms: p50 %6s  p99 %6s  max %6s" % (what, count, p50, p99, worst))
    return {"count": int(count), "p50": float(p50), "p99": float(p99), "max": float(worst)}


def measure(retries, report=print):
    """Returns {"retries", "flushes", "schedules"}, each {"count", "p50", "p99", "max"} in ms."""
    cluster = Cluster()
    receiver, url = start_receiver(env=dict(os.environ, BENCH_RECEIVER_FAIL_FIRST="1"))
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write('[[schedules]]\nname = "tick"\ncron = "* * * * *"\nsql = "SELECT 1"\n')
    config.close()
    # The default status interval (10 s), as this benchmark always ran.
    env = relay_environment(cluster, CHANGERELAY_FUNCTIONS_BASE_URL=url + "/functions/v1", CHANGERELAY_SERVICE_KEY="bench",
                            CHANGERELAY_CONVERSATION_CHECKS_RETRY_DELAY_MS="300",
                            CHANGERELAY_CONVERSATION_CHECKS_MAX_ATTEMPTS="3",
                            CHANGERELAY_MESSAGE_BUFFER_DURATION_MS="1000", CHANGERELAY_AUTOMATIONS_ENABLED="false",
                            CHANGERELAY_WEBHOOKS_ENABLED="false")
    del env["CHANGERELAY_SOURCE_STATUS_INTERVAL_MS"]
    service = None
    try:
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        report("PostgreSQL %s, %d cores; %d failing-once conversation checks and %d one-message windows, "
              "every 50 ms %d and %d" % (cluster.version, os.cpu_count(), retries,
                                          retries // CHECKS_PER_TICK * MESSAGES_PER_TICK, CHECKS_PER_TICK,
                                          MESSAGES_PER_TICK))
        service = start_relay(["run", "--config", config.name], env)
        began = time.monotonic()
        # A steady load well below capacity, so lateness measures the timers rather than a
        # queue: every 50 ms, CHECKS_PER_TICK checks (each fails once: its retry falls due
        # 300 ms after its first try is recorded) and MESSAGES_PER_TICK messages, each of a
        # conversation of its own (its window closes 1 s after it, by a tick on a quiet
        # stream or by a later commit).
        session = cluster.session()
        sent = 0
        conversation = 0
        while sent < retries:
            count = min(CHECKS_PER_TICK, retries - sent)
            session.value("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) "
                          "SELECT 'c', 'a', 'el' || g FROM generate_series(%d, %d) g" % (sent, sent + count - 1))
            session.value("INSERT INTO buffered_messages (conversation_id, content, message_type) "
                          "SELECT g, 'm' || g, 'incoming' FROM generate_series(%d, %d) g"
                          % (conversation, conversation + MESSAGES_PER_TICK - 1))
            sent += count
            conversation += MESSAGES_PER_TICK
            time.sleep(0.05)
        session.close()
        wait_until("every retry", lambda: int(cluster.psql(
            "SELECT count(*) FROM changerelay.delivery_attempts WHERE attempt = 2")) >= retries, every=0.5,
            watch=[service])
        wait_until("every flush", lambda: cluster.psql(
            "SELECT count(*) FROM message_buffer WHERE status = 'active'") == "0", every=0.5, watch=[service])
        # At least one scheduled run after the load began.
        wait_until("a scheduled run", lambda: int(cluster.psql(
            "SELECT count(*) FROM changerelay.schedule_runs WHERE schedule = 'tick' AND finished_at IS NOT NULL")) >= 1,
            timeout=130, every=1, watch=[service])
        elapsed = time.monotonic() - began
        report("load ran %.0f s" % elapsed)
        stop_relay(service, "run (timers)")
        service = None
        figures = {}
        figures["retries"] = percentiles(cluster, "retries", """
            SELECT extract(epoch FROM second.started_at - (first.finished_at + interval '300 milliseconds')) * 1000
            FROM changerelay.delivery_attempts first
            JOIN changerelay.delivery_attempts second ON second.delivery_id = first.delivery_id AND second.attempt = 2
            JOIN changerelay.deliveries d ON d.id = first.delivery_id AND d.handler = 'conversation_checks'
            WHERE first.attempt = 1""", report)
        figures["flushes"] = percentiles(cluster, "flushes", """
            SELECT extract(epoch FROM a.started_at - b.flush_due_at) * 1000
            FROM message_buffer b
            -- A flush's key is message_buffering:buffer:<first message id>@<first commit, µs>.
            JOIN changerelay.deliveries d ON split_part(d.idempotency_key, '@', 1) = 'message_buffering:buffer:' || b.id
                                           AND d.handler = 'message_buffering'
            JOIN changerelay.delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1""", report)
        figures["schedules"] = percentiles(cluster, "schedules", """
            SELECT extract(epoch FROM started_at - due_at) * 1000 FROM changerelay.schedule_runs WHERE schedule = 'tick'""",
            report)
        return figures
    finally:
        if service:
            service.kill()
        stop_receiver(receiver)
        os.unlink(config.name)
        cluster.stop()


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5000)
    print(rss_summary())
