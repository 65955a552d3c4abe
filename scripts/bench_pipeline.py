"""Pipeline benchmarks (see bench-pipeline.sh): planning, dispatch, latency, write-path cost."""
import os, signal, subprocess, sys, time
sys.path.insert(0, os.path.dirname(__file__))
from benchlib import Cluster, RELAY, echo_environment, start_receiver, timed_drain, recvlogical_options, wait_until

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
DISPATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000


def start(argv, env):
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def pgbench_tps(cluster, seconds, rate=None):
    script = os.path.join(cluster.root, "insert.sql")
    with open(script, "w") as f:
        f.write("INSERT INTO events (payload) VALUES ('x');\n")
    argv = ["pgbench", "-n", "-f", script, "-c", "4", "-j", "2", "-T", str(seconds), cluster.url]
    if rate:
        argv[2:2] = ["-R", str(rate)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return float([line for line in out.splitlines() if line.startswith("tps")][0].split()[2])


def main():
    cluster = Cluster()
    receiver, receiver_url = start_receiver()
    try:
        env = echo_environment(cluster, receiver_url, "public.bench,public.events")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        cluster.psql("CREATE TABLE bench (id bigint PRIMARY KEY, a text, b text, c text, d text, ts timestamptz);"
                     "CREATE TABLE events (id bigserial PRIMARY KEY, payload text, at timestamptz DEFAULT now());"
                     "ALTER PUBLICATION changerelay_pub ADD TABLE bench, events")
        cluster.psql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')")
        cluster.psql("""DO $$ BEGIN FOR t IN 0..%d LOOP
                  INSERT INTO bench SELECT g, md5(g::text), 'customer ' || g, 'status-' || (g %% 7), repeat('x', 20), now()
                  FROM generate_series(t * 10000 + 1, t * 10000 + 10000) g;
                  COMMIT; END LOOP; END $$""" % (ROWS // 10000 - 1))
        endpos = cluster.psql("SELECT pg_current_wal_insert_lsn()")
        print("PostgreSQL %s; backlog %d rows in %d transactions" % (cluster.version, ROWS, ROWS // 10000))

        # Planning: the backlog through the echo handler, deliveries committed but not sent.
        began = time.monotonic()
        planner = start([RELAY, "run", "--only", "planner"], env)
        wait_until("the checkpoint", lambda: cluster.psql(
            "SELECT coalesce((SELECT lsn >= '%s' FROM changerelay.checkpoints), false)" % endpos) == "t")
        planning = time.monotonic() - began
        stop(planner)
        recv, _, _ = timed_drain(["pg_recvlogical", "-d", cluster.url, "--slot", "recv", "--start", "--endpos", endpos,
                                  "-f", "/dev/null", "--no-loop"] + recvlogical_options("pgoutput", "changerelay_pub"))
        planned = int(cluster.psql("SELECT count(*) FROM changerelay.deliveries"))
        print("planning   %d deliveries in %.2f s = %.0f rows/s; pg_recvlogical drains the same backlog in %.2f s "
              "(ratio %.2f)" % (planned, planning, ROWS / planning, recv, planning / recv))

        # Dispatch: DISPATCH of those deliveries to the fast local receiver, concurrency 64.
        cluster.psql("DELETE FROM changerelay.deliveries WHERE id > %d" % DISPATCH)
        cluster.psql("VACUUM ANALYZE changerelay.deliveries")
        began = time.monotonic()
        dispatcher = start([RELAY, "run", "--only", "dispatcher"], env)
        wait_until("dispatch", lambda: cluster.psql(
            "SELECT count(*) FROM changerelay.deliveries WHERE status = 'succeeded'") == str(DISPATCH))
        dispatching = time.monotonic() - began
        stop(dispatcher)
        print("dispatch   %d deliveries in %.2f s = %.0f deliveries/s (pg_net documents about 200/s)"
              % (DISPATCH, dispatching, DISPATCH / dispatching))

        # Write-path cost: pgbench single-row inserts with nothing reading the WAL, with pg_recvlogical
        # draining a slot (the cost of logical decoding itself on this host), and with the service.
        # Each reader gets a new slot, so none of them starts with the earlier phases' WAL as a backlog.
        cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
        cluster.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots")
        without = pgbench_tps(cluster, 15)
        cluster.psql("SELECT pg_create_logical_replication_slot('recv', 'pgoutput')")
        drain = subprocess.Popen(["pg_recvlogical", "-d", cluster.url, "--slot", "recv", "--start", "-f", "/dev/null"]
                                 + recvlogical_options("pgoutput", "changerelay_pub"), stderr=subprocess.DEVNULL)
        time.sleep(2)
        with_recvlogical = pgbench_tps(cluster, 15)
        stop(drain)
        cluster.psql("SELECT pg_drop_replication_slot('recv')")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        planner = start([RELAY, "run", "--only", "planner"], env)
        time.sleep(2)
        with_planner = pgbench_tps(cluster, 15)
        stop(planner)
        cluster.psql("SELECT pg_drop_replication_slot('changerelay')")
        cluster.psql("TRUNCATE changerelay.deliveries CASCADE")
        subprocess.run([RELAY, "setup"], env=env, check=True, capture_output=True)
        service = start([RELAY, "run"], env)
        time.sleep(2)
        with_service = pgbench_tps(cluster, 15)

        def cost(tps):
            return "%.0f TPS (cost %.1f %%)" % (tps, 100 * (without - tps) / without)
        print("write path pgbench 4 clients, all on the same %d cores: %.0f TPS alone; pg_recvlogical draining %s; "
              "changerelay planner only %s; changerelay run (planning and sending) %s"
              % (os.cpu_count(), without, cost(with_recvlogical), cost(with_planner), cost(with_service)))
        wait_until("the write-path deliveries", lambda: cluster.psql(
            "SELECT count(*) FROM changerelay.deliveries WHERE status <> 'succeeded'") == "0")
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(timeout=120)
        receiver, receiver_url = start_receiver()
        stop(service)
        env["CHANGERELAY_HANDLERS_ECHO_URL"] = receiver_url + "/echo"
        service = start([RELAY, "run"], env)
        time.sleep(2)
        steady = pgbench_tps(cluster, 20, rate=500)
        wait_until("the latency deliveries", lambda: cluster.psql(
            "SELECT count(*) FROM changerelay.deliveries WHERE status <> 'succeeded'") == "0")
        stop(service)
        receiver.send_signal(signal.SIGTERM)
        summary = receiver.stdout.read().strip()
        receiver.wait(timeout=120)
        print("latency    steady %.0f commits/s, commit to request arrival: %s" % (steady, summary))
    finally:
        if receiver.poll() is None:
            receiver.kill()
        cluster.stop()


main()
