"""Where a delivery's database time goes: one drain of the webhook benchmark's backlog, through
the echo handler or to 4 webhook configs, on a cluster with pg_stat_statements, then each
statement's time per delivery, how many of `deliveries`' updates were heap-only (HOT), and
the tables' sizes. A phase of `bench_webhooks.py` alone, for comparing two builds or two
settings statement by statement, where the benchmark's end-to-end ratio is within its noise.

    python3 scripts/profile_delivery_statements.py MESSAGES echo|webhooks [SQL run before the drain]

Needs the release build (`scripts/bench-webhooks.sh` makes it)."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import OPEN, RELAY, Cluster, start_receiver, stop_receiver, wait_until

MESSAGES, MODE = int(sys.argv[1]), sys.argv[2]
BEFORE = sys.argv[3] if len(sys.argv) > 3 else None
if MODE not in ("echo", "webhooks"):
    sys.exit("the mode is echo or webhooks, not %r" % MODE)

cluster = Cluster(settings="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all")
receiver, url = start_receiver()
try:
    base = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
                CHANGERELAY_DELIVERY_CONCURRENCY="64", CHANGERELAY_CONVERSATION_CHECKS_ENABLED="false",
                CHANGERELAY_AUTOMATIONS_ENABLED="false")
    if MODE == "echo":
        env = dict(base, CHANGERELAY_WEBHOOKS_ENABLED="false", CHANGERELAY_HANDLERS_ECHO_URL=url + "/echo",
                   CHANGERELAY_HANDLERS_ECHO_TABLES="public.chat_messages")
        deliveries = MESSAGES
    else:
        env = dict(base, CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true")
        deliveries = 4 * MESSAGES
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    cluster.psql("CREATE EXTENSION pg_stat_statements")
    if MODE == "webhooks":
        for i in range(4):
            cluster.psql("INSERT INTO webhook_configs (name, url, secret, events) VALUES "
                         "('bench-%d', '%s/hook/%d', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{chat.message.created}')"
                         % (i, url, i))
    session_id = cluster.psql("INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid()) RETURNING id").split()[0]
    for start in range(0, MESSAGES, 1000):
        cluster.psql("INSERT INTO chat_messages (session_id, role, content) SELECT '%s', 'assistant', 'message ' || g "
                     "FROM generate_series(%d, %d) g" % (session_id, start + 1, min(MESSAGES, start + 1000)))
    if BEFORE:
        cluster.psql(BEFORE)
    cluster.psql("VACUUM ANALYZE")
    cluster.psql("CHECKPOINT")
    cluster.psql("SELECT pg_stat_statements_reset()")
    session = cluster.session()
    done = ("SELECT coalesce(max(id), 0) >= %d AND NOT EXISTS (SELECT FROM changerelay.deliveries WHERE %s) "
            "FROM changerelay.deliveries" % (deliveries, OPEN))
    began = time.monotonic()
    service = subprocess.Popen([RELAY, "run"], env=env, stdout=subprocess.DEVNULL)
    try:
        wait_until("%d deliveries" % deliveries, lambda: session.value(done) == "t", every=0.2)
        print("%s: %d deliveries, %.0f/s" % (MODE, deliveries, deliveries / (time.monotonic() - began)))
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait()
    print("calls | ms | us a delivery | rows | statement")
    print(cluster.psql(
        "SELECT calls, round(total_exec_time::numeric), round((1000 * total_exec_time / %d)::numeric, 1), rows, "
        "left(regexp_replace(query, '\\s+', ' ', 'g'), 100) FROM pg_stat_statements "
        "ORDER BY total_exec_time DESC LIMIT 12" % deliveries))
    print("table | inserted | updated | HOT updates")
    print(cluster.psql("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                       "WHERE relname IN ('deliveries', 'delivery_attempts', 'webhook_logs') ORDER BY relname"))
    print("table | heap | with indexes")
    print(cluster.psql("SELECT relname, pg_size_pretty(pg_relation_size(oid)), pg_size_pretty(pg_total_relation_size(oid)) "
                       "FROM pg_class WHERE relname IN ('deliveries', 'delivery_attempts', 'webhook_logs') ORDER BY relname"))
finally:
    stop_receiver(receiver)
    cluster.stop()
