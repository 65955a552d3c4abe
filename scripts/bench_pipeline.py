"""Pipeline benchmarks (see bench-pipeline.sh): planning, dispatch, latency, write-path cost.
Importable: bench_all.py calls the phases one by one and reads the figures they return."""
import os, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import (OPEN, Cluster, RELAY, echo_environment, pinned, receiver_latency, recvlogical_options,
                      relay_environment, rss_summary, start_receiver, start_relay, stop_receiver, stop_relay,
                      timed_drain, wait_deliveries, wait_streaming, wait_until)
from habit_rows import ROWS_SQL

TRANSACTION = 10_000  # backlog rows per transaction


def setup(cluster, env):
    """Schema, publication and the benchmark's own published tables: `bench` (backlogs) and
    `events` (pgbench's single-row inserts)."""
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    cluster.psql("CREATE TABLE bench (id bigint PRIMARY KEY, a text, b text, c text, d text, ts timestamptz);"
                 "CREATE TABLE events (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());"
                 "ALTER PUBLICATION changerelay_pub ADD TABLE bench, events")


def pgbench_tps(cluster, seconds, rate=None, cpu=None, script_text="INSERT INTO events (payload) VALUES ('x');\n"):
    """pgbench, 4 clients, SECONDS of `script_text` (by default a single-row insert into
    events), optionally at a fixed rate and pinned to a CPU; returns its TPS."""
    script = os.path.join(cluster.root, "pgbench-%d.sql" % time.monotonic_ns())
    with open(script, "w") as f:
        f.write(script_text)
    argv = ["pgbench", "-n", "-f", script, "-c", "4", "-j", "2", "-T", str(seconds), cluster.url]
    if rate:
        argv[2:2] = ["-R", str(rate)]
    done = subprocess.run(pinned(argv, cpu), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit("pgbench failed: %s\n%s" % (" ".join(argv), done.stderr[-3000:]))
    return float([line for line in done.stdout.splitlines() if line.startswith("tps")][0].split()[2])


def backlog(cluster, rows, insert):
    """ROWS rows in transactions of TRANSACTION, `insert` an INSERT … SELECT … FROM
    generate_series(%d, %d) g; returns a WAL position inside the last of them, before its commit:
    a position read after it may include WAL of no published transaction (an autovacuum's),
    which no checkpoint ever passes."""
    starts = range(1, rows + 1, TRANSACTION)
    for first in starts[:-1]:
        cluster.psql(insert % (first, min(rows, first + TRANSACTION - 1)))
    return cluster.psql("BEGIN; " + insert % (starts[-1], rows) + "; SELECT pg_current_wal_insert_lsn(); COMMIT")


BENCH_ROWS = ("INSERT INTO bench SELECT g, md5(g::text), 'customer ' || g, 'status-' || (g %% 7), repeat('x', 20), now() "
              "FROM generate_series(%d, %d) g")
CONVERSATION_ROWS = ("INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) "
                     "SELECT 'clerk ' || g, 'agent', 'el-' || g FROM generate_series(%d, %d) g")


def plan(cluster, env, slot, endpos, label):
    """`run --only planner` on `slot` until its checkpoint reaches `endpos`; returns seconds."""
    env = dict(env, CHANGERELAY_SOURCE_SLOT=slot)
    session = cluster.session()  # one backend for the polls, not one psql and backend each
    began = time.monotonic()
    planner = start_relay(["run", "--only", "planner"], env)
    wait_until("the checkpoint of " + slot, lambda: session.value(
        "SELECT coalesce((SELECT lsn >= '%s' FROM changerelay.checkpoints WHERE slot_name = '%s'), false)"
        % (endpos, slot)) == "t", watch=[planner])
    planning = time.monotonic() - began
    stop_relay(planner, label)
    session.close()
    return planning


def recv(cluster, slot, endpos):
    """pg_recvlogical draining `slot` up to `endpos` into /dev/null; returns (seconds, peak RSS MiB)."""
    seconds, rss, _ = timed_drain(["pg_recvlogical", "-d", cluster.url, "--slot", slot, "--start", "--endpos", endpos,
                                 "-f", "/dev/null", "--no-loop"] + recvlogical_options("pgoutput", "changerelay_pub"))
    return seconds, rss


def plan_echo(cluster, env, rows):
    """A backlog of ROWS `bench` rows planned through the echo handler (planner only, slot
    changerelay) and drained by pg_recvlogical (slot recv, made at the same point);
    returns {"planning", "recv", "recv_rss", "planned"}."""
    cluster.psql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')")
    endpos = backlog(cluster, rows, BENCH_ROWS)
    planning = plan(cluster, env, "changerelay", endpos, "planner (echo)")
    drain, rss = recv(cluster, "recv", endpos)
    cluster.psql("SELECT pg_drop_replication_slot('recv')")
    planned = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE handler = 'echo'"))
    if planned != rows:
        sys.exit("planning: %d echo deliveries for %d rows" % (planned, rows))
    return {"planning": planning, "recv": drain, "recv_rss": rss, "planned": planned}


def conversation_environment(cluster, receiver_url):
    """Conversation checks only (to the receiver's /functions/v1), no echo."""
    return relay_environment(cluster, CHANGERELAY_FUNCTIONS_BASE_URL=receiver_url + "/functions/v1",
                             CHANGERELAY_SERVICE_KEY="bench-key", CHANGERELAY_AUTOMATIONS_ENABLED="false",
                             CHANGERELAY_WEBHOOKS_ENABLED="false", CHANGERELAY_MESSAGE_BUFFER_ENABLED="false")


def plan_conversations(cluster, receiver_url, rows):
    """A backlog of ROWS `user_conversations` inserts (transactions of TRANSACTION) planned
    through the conversation-checks handler (planner only, its own new slot) and drained by
    pg_recvlogical (another slot made at the same point); returns {"planning", "recv", "recv_rss",
    "planned"}. Its deliveries are deleted afterwards: they would be sent by a later phase."""
    env = conversation_environment(cluster, receiver_url)
    cluster.psql("SELECT pg_create_logical_replication_slot('conversations', 'pgoutput'), "
                 "pg_create_logical_replication_slot('conversations_recv', 'pgoutput')")
    endpos = backlog(cluster, rows, CONVERSATION_ROWS)
    planning = plan(cluster, env, "conversations", endpos, "planner (conversation checks)")
    drain, rss = recv(cluster, "conversations_recv", endpos)
    planned = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE handler = 'conversation_checks'"))
    if planned != rows:
        sys.exit("conversation planning: %d deliveries for %d conversations" % (planned, rows))
    cluster.psql("DELETE FROM changerelay.deliveries WHERE handler = 'conversation_checks';"
                 "SELECT pg_drop_replication_slot('conversations'), pg_drop_replication_slot('conversations_recv')")
    return {"planning": planning, "recv": drain, "recv_rss": rss, "planned": planned}


def dispatch(cluster, env, count, keep=0):
    """Dispatches `count` planned echo deliveries to the receiver (dispatcher only): the
    lowest ids are due now; the next `keep` ones are kept for a later call, due tomorrow,
    and the rest are marked succeeded an hour ago. Returns deliveries/s from the start of
    the process to the last success.

    The rest stay as the finished rows a service retains, in a table rewritten without
    dead space (VACUUM FULL): the backlog after an outage sits among the history of what
    was sent before it. Deleting them instead left the table's files and indexes at the
    size of every row planned so far, with the due rows' new versions scattered over the
    freed pages: a table no outage leaves behind, which measured the benchmark's own
    deletion more than the dispatcher (README, "Tests and benchmarks")."""
    excess = "status = 'pending' AND id > (SELECT min(id) - 1 + %d FROM changerelay.deliveries WHERE status = 'pending')"
    cluster.psql("UPDATE changerelay.deliveries SET status = 'succeeded', attempt = 1, completed_at = now() - interval '1 hour', "
                 "updated_at = now() - interval '1 hour' WHERE " + excess % (count + keep))
    cluster.psql("UPDATE changerelay.deliveries SET next_attempt_at = CASE WHEN id > "
                 "(SELECT min(id) - 1 + %d FROM changerelay.deliveries WHERE status = 'pending') "
                 "THEN now() + interval '1 day' ELSE now() END WHERE status = 'pending'" % count)
    pending = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE status = 'pending'"))
    if pending != count + keep:
        sys.exit("dispatch: %d pending deliveries, %d needed" % (pending, count + keep))
    cluster.psql("VACUUM FULL changerelay.deliveries")
    cluster.psql("VACUUM ANALYZE changerelay.deliveries")
    before = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'"))
    session = cluster.session()
    began = time.monotonic()
    dispatcher = start_relay(["run", "--only", "dispatcher"], env)
    # The poll reads the open rows through the claim's own index: counting the succeeded ones
    # scanned the whole table five times a second and took a third of a core from the service.
    wait_until("dispatch", lambda: session.value(
        "SELECT NOT EXISTS (SELECT FROM changerelay.deliveries WHERE %s AND next_attempt_at < now() + interval '1 hour')"
        % OPEN) == "t", watch=[dispatcher])
    seconds = time.monotonic() - began
    stop_relay(dispatcher, "dispatcher")
    session.close()
    succeeded = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'"))
    if succeeded != before + count:
        sys.exit("dispatch: %d deliveries succeeded, %d expected" % (succeeded - before, count))
    return count / seconds


def latency(cluster, env, seconds, label, script_for=None):
    """The whole service on slot changerelay (setup makes it when missing) and a new receiver
    (so its summary covers this phase only); pgbench at 500 commits/s for SECONDS of
    `script_for(receiver URL)` (default: single-row inserts into events); waits until every
    delivery has finished. Returns (the receiver's figures for echo bodies, commits/s, seconds
    from the end of the writes to the last delivery)."""
    receiver, url = start_receiver()
    try:
        env = dict(env, CHANGERELAY_HANDLERS_ECHO_URL=url + "/echo")
        if "CHANGERELAY_FUNCTIONS_BASE_URL" in env:
            env["CHANGERELAY_FUNCTIONS_BASE_URL"] = url + "/functions/v1"
        kwargs = {"script_text": script_for(url)} if script_for else {}
        # A new slot, so an earlier phase's WAL (a backlog planned on another slot) is not decoded
        # during the measurement; a new slot starts a new history, without the checkpoint and the
        # webhook config log of the last (the caches are read from the tables at start).
        cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'changerelay';"
                     "DELETE FROM changerelay.checkpoints WHERE slot_name = 'changerelay';"
                     "TRUNCATE changerelay.webhook_config_log")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        service = start_relay(["run"], env)
        wait_streaming(cluster, "changerelay", watch=[service])
        steady = pgbench_tps(cluster, seconds, rate=500, **kwargs)
        written = time.monotonic()
        session = cluster.session()
        wait_deliveries(session, "the latency deliveries", watch=[service])
        session.close()
        tail = time.monotonic() - written
        stop_relay(service, label)
        return receiver_latency(stop_receiver(receiver)), steady, tail
    finally:
        if receiver.poll() is None:
            receiver.kill()


def echo_latency(cluster, receiver_url, seconds):
    """Commit to request arrival at 500 commits/s of single-row inserts, echo handler only."""
    cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
    figures, steady, _ = latency(cluster, echo_environment(cluster, receiver_url, "public.bench,public.events"), seconds,
                                 "run (latency, echo)")
    return dict(figures, rate=steady)


ALL_HANDLERS_SCRIPT = """\\set kind random(1, 6)
\\set n random(1, 1000)
\\if :kind = 1
INSERT INTO events (payload) VALUES ('x');
\\elif :kind = 2
INSERT INTO user_conversations (clerk_id, agent_id, elevenlabs_conversation_id) VALUES ('clerk', 'agent', 'el-' || :n);
\\elif :kind = 3
UPDATE jobs SET status = 's' || ((substr(status, 2)::int + 1) %% 5) WHERE n = :n;
\\elif :kind = 4
INSERT INTO chat_messages (session_id, role, content) SELECT id, 'assistant', 'message ' || :n FROM chat_sessions LIMIT 1;
\\elif :kind = 5
INSERT INTO buffered_messages (conversation_id, content, message_type) VALUES (:n, 'm', 'incoming');
\\else
%s;
\\endif
"""


def all_handlers_latency(cluster, receiver_url, seconds):
    """Commit to request arrival at 500 commits/s (one change each) with every seed handler
    on: a sixth each of echo inserts (the probes whose bodies carry commit_time), conversation
    inserts (conversation checks), job status changes (2 of 10 workflows of the job's user
    fire), chat messages (a webhook config on the receiver), buffered messages (1 s windows)
    and habit_tracker rows (dual-write apply). Also the conversation checks' own figure: the
    first try's start - the row's now(). Returns the echo figures with rate, checks_p99."""
    cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
    cluster.psql("""
        INSERT INTO automation_workflows (user_id, name, trigger_type, trigger_config, is_active, status)
        SELECT ('00000000-0000-0000-0000-' || lpad(u::text, 12, '0'))::uuid, 'w' || k, 'job_status_changed',
               jsonb_build_object('conditions', jsonb_build_array(jsonb_build_object('field', 'status', 'value', 's' || (k % 5)))),
               true, 'active'
        FROM generate_series(1, 100) u, generate_series(0, 9) k;
        ALTER TABLE jobs ADD COLUMN IF NOT EXISTS n int UNIQUE;
        INSERT INTO jobs (user_id, title, status, n)
        SELECT ('00000000-0000-0000-0000-' || lpad((g % 100 + 1)::text, 12, '0'))::uuid, 'job ' || g, 's0', g
        FROM generate_series(1, 1000) g;
        INSERT INTO chat_sessions (user_id) VALUES (gen_random_uuid());
        CREATE SEQUENCE IF NOT EXISTS bench_habit""")
    cluster.psql("INSERT INTO webhook_configs (name, url, secret, events) VALUES ('bench', '%s/hook/0', "
                 "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', '{chat.message.created}')" % receiver_url)
    habit = (ROWS_SQL % (0, 0)).replace("generate_series(0, 0) g", "(SELECT nextval('bench_habit')::int) s(g)").strip()
    script = ALL_HANDLERS_SCRIPT % habit
    env = relay_environment(cluster, CHANGERELAY_HANDLERS_ECHO_URL=receiver_url + "/echo",
                            CHANGERELAY_HANDLERS_ECHO_TABLES="public.events",
                            CHANGERELAY_FUNCTIONS_BASE_URL=receiver_url + "/functions/v1",
                            CHANGERELAY_SERVICE_KEY="bench-key", CHANGERELAY_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
                            CHANGERELAY_AUTOMATIONS_RATE_LIMIT_WINDOW_S="0", CHANGERELAY_DUAL_WRITE_MODE="apply",
                            CHANGERELAY_MESSAGE_BUFFER_DURATION_MS="1000")

    def script_for(url):
        """The webhook config points at the phase's own receiver."""
        cluster.psql("UPDATE webhook_configs SET url = '%s/hook/0' WHERE name = 'bench'" % url)
        return script
    figures, steady, tail = latency(cluster, env, seconds, "run (latency, every handler)", script_for)
    handlers = cluster.psql("SELECT string_agg(handler || ' ' || n, ', ' ORDER BY handler) FROM "
                            "(SELECT handler, count(*) AS n FROM changerelay.deliveries GROUP BY handler) h")
    checks = cluster.psql("""
        SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM a.started_at - c.created_at) * 1000)::numeric, 1)
        FROM changerelay.deliveries d
        JOIN public.user_conversations c ON d.ordering_key = 'public.user_conversations:' || c.id
        JOIN changerelay.delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1
        WHERE d.handler = 'conversation_checks'""")
    applied = cluster.psql("SELECT count(*) FROM weeks")
    return dict(figures, rate=steady, checks_p99=float(checks or "nan"), handlers=handlers, applied=int(applied),
                tail=tail)


def write_path(cluster, env, seconds):
    """pgbench single-row inserts with nothing reading the WAL, with pg_recvlogical draining a
    slot (the cost of logical decoding itself on this host), with the planner only and with
    the service; each reader gets a new slot, so none starts with the earlier phases' WAL as a
    backlog. Everything shares the machine's cores (see bench-write-path.sh for the pinned,
    separate-state version). Returns TPS by phase."""
    cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
    cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
    without = pgbench_tps(cluster, seconds)
    cluster.psql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')")
    drain = subprocess.Popen(["pg_recvlogical", "-d", cluster.url, "--slot", "recv", "--start", "-f", "/dev/null"]
                             + recvlogical_options("pgoutput", "changerelay_pub"), stderr=subprocess.DEVNULL)
    wait_streaming(cluster, "recv", watch=[drain])
    with_recvlogical = pgbench_tps(cluster, seconds)
    drain.terminate()
    drain.wait(timeout=60)
    cluster.psql("SELECT pg_drop_replication_slot('recv')")
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    planner = start_relay(["run", "--only", "planner"], env)
    wait_streaming(cluster, "changerelay", watch=[planner])
    with_planner = pgbench_tps(cluster, seconds)
    stop_relay(planner, "planner (write path)")
    cluster.psql("SELECT pg_drop_replication_slot('changerelay')")
    cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
    subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
    service = start_relay(["run"], env)
    wait_streaming(cluster, "changerelay", watch=[service])
    with_service = pgbench_tps(cluster, seconds)
    session = cluster.session()
    wait_deliveries(session, "the write-path deliveries", watch=[service])
    session.close()
    stop_relay(service, "run (write path)")
    return {"alone": without, "recvlogical": with_recvlogical, "planner": with_planner, "service": with_service}


def planning_line(label, rows, figures):
    """One line for a plan_echo or plan_conversations result, as both drivers print it."""
    return ("planning through %s: %d rows in %.2f s (%.0f rows/s); pg_recvlogical drains the same backlog in %.2f s "
            "(ratio %.2f)" % (label, rows, figures["planning"], rows / figures["planning"], figures["recv"],
                              figures["planning"] / figures["recv"]))


def echo_latency_line(figures):
    return ("latency, echo only, %.0f commits/s, commit to request arrival: p50 %.1f ms, p99 %.1f ms, max %.1f ms "
            "(%d requests)" % (figures["rate"], figures["p50"], figures["p99"], figures["max"], figures["requests"]))


def all_handlers_latency_line(figures):
    return ("latency, every seed handler on, %.0f changes/s (deliveries: %s; %d weeks applied), echo commit to request "
            "arrival: p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests of every handler); conversation checks' first "
            "try - row now(): p99 %.1f ms"
            % (figures["rate"], figures["handlers"], figures["applied"], figures["p50"], figures["p99"], figures["max"],
               figures["requests"], figures["checks_p99"]))


def main(rows, dispatched):
    cluster = Cluster()
    receiver, receiver_url = start_receiver()
    try:
        env = echo_environment(cluster, receiver_url, "public.bench,public.events")
        setup(cluster, env)
        print("PostgreSQL %s; backlog %d rows in %d transactions" % (cluster.version, rows, rows // TRANSACTION))

        # Planning: the backlog through the echo handler, deliveries committed but not sent.
        echo = plan_echo(cluster, env, rows)
        print(planning_line("echo", rows, echo))
        checks = plan_conversations(cluster, receiver_url, rows)
        print(planning_line("conversation checks", rows, checks))

        # Dispatch: DISPATCHED of those deliveries to the fast local receiver, concurrency 64.
        rate = dispatch(cluster, env, dispatched)
        print("dispatch   %d deliveries in %.2f s = %.0f deliveries/s (pg_net documents about 200/s)"
              % (dispatched, dispatched / rate, rate))

        tps = write_path(cluster, env, 15)

        def cost(value):
            return "%.0f TPS (cost %.1f %%)" % (value, 100 * (tps["alone"] - value) / tps["alone"])
        print("write path pgbench 4 clients, all on the same %d cores: %.0f TPS alone; pg_recvlogical draining %s; "
              "changerelay planner only %s; changerelay run (planning and sending) %s"
              % (os.cpu_count(), tps["alone"], cost(tps["recvlogical"]), cost(tps["planner"]), cost(tps["service"])))

        print(echo_latency_line(echo_latency(cluster, receiver_url, 20)))
        print(all_handlers_latency_line(all_handlers_latency(cluster, receiver_url, 20)))
    finally:
        if receiver.poll() is None:
            receiver.kill()
        cluster.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 100_000)
    print(rss_summary())
