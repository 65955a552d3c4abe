"""Drain benchmark driver (see bench-drain.sh). Standard library only."""
import os, re, shutil, socket, subprocess, sys, tempfile, time

ROWS, ROUNDS = int(sys.argv[1]), int(sys.argv[2])
BIN = max((p for p in ["/usr/lib/postgresql/%s/bin" % v for v in os.listdir("/usr/lib/postgresql")]
           if os.path.exists(p + "/initdb")), key=lambda p: int(p.split("/")[-2]))
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
RELAY = os.path.abspath(".build/release/changerelay")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_measured(argv, env=None):
    """Wall seconds and peak RSS (MiB) of one child process."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(argv), out, err))
    return elapsed, usage.ru_maxrss / 1024, out


def main():
    root = tempfile.mkdtemp(prefix="changerelay-bench-")
    os.chmod(root, 0o777)
    data, port = root + "/data", free_port()
    subprocess.run(AS_PG + [BIN + "/initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL)
    version = re.search(r"(\d+)\.(\d+)", subprocess.run([BIN + "/postgres", "--version"],
                                                       capture_output=True, text=True).stdout)
    major, minor = int(version.group(1)), int(version.group(2))
    version = version.group(0)
    opts = "-c wal_level=logical -c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s " \
           "-c fsync=off -c synchronous_commit=off -c max_replication_slots=40 -c max_wal_senders=10 " \
           "-c shared_buffers=256MB -c max_wal_size=4GB" % (port, root)
    if major > 15 or (major == 15 and minor >= 19):
        opts += " -c output_plugin_libraries='pgoutput, test_decoding, wal2json'"
    subprocess.run(AS_PG + [BIN + "/pg_ctl", "-D", data, "-o", opts, "-l", root + "/log", "-w", "start"],
                   check=True, stdout=subprocess.DEVNULL)
    url = "postgresql://postgres@127.0.0.1:%d/postgres" % port
    psql = lambda sql: subprocess.run(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                      check=True, capture_output=True, text=True).stdout.strip()
    try:
        psql("CREATE TABLE bench (id bigint PRIMARY KEY, a text, b text, c text, d text, ts timestamptz);"
             "CREATE PUBLICATION bench_pub FOR TABLE bench")
        plugins = ["pgoutput", "wal2json"]
        for plugin in plugins:
            for r in range(ROUNDS):
                for tool in ("relay", "recv"):
                    psql("SELECT pg_create_logical_replication_slot('%s_%s_%d', '%s')" % (tool, plugin, r, plugin))
        psql("""DO $$ BEGIN FOR t IN 0..%d LOOP
                  INSERT INTO bench SELECT g, md5(g::text), 'customer ' || g, 'status-' || (g %% 7), repeat('x', 20), now()
                  FROM generate_series(t * 10000 + 1, t * 10000 + 10000) g;
                  COMMIT; END LOOP; END $$""" % (ROWS // 10000 - 1))
        endpos = psql("SELECT pg_current_wal_lsn()")
        env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=url, CHANGERELAY_SOURCE_PUBLICATION="bench_pub",
                   CHANGERELAY_LOG_LEVEL="warning")
        print("backlog: %d rows in %d transactions, end %s; PostgreSQL %s" % (ROWS, ROWS // 10000, endpos, version))
        for plugin in plugins:
            relay_times, recv_times, rss = [], [], []
            for r in range(ROUNDS):
                t, m, out = run_measured([RELAY, "tail", "--plugin", plugin, "--slot", "relay_%s_%d" % (plugin, r),
                                          "--format", "none", "--limit", str(ROWS)], env)
                assert out.strip() == "%d changes" % ROWS, out
                relay_times.append(t), rss.append(m)
                options = ["-o", "proto_version=2", "-o", "streaming=on", "-o", "publication_names=bench_pub"] \
                    if plugin == "pgoutput" else \
                    ["-o", "format-version=2", "-o", "include-xids=1", "-o", "include-timestamp=1",
                     "-o", "include-lsn=1", "-o", "include-type-oids=1", "-o", "include-pk=1",
                     "-o", "add-tables=public.bench"]
                t, _, _ = run_measured(["pg_recvlogical", "-d", url, "--slot", "recv_%s_%d" % (plugin, r), "--start",
                                        "--endpos", endpos, "-f", "/dev/null", "--no-loop"] + options)
                recv_times.append(t)
            best_relay, best_recv = min(relay_times), min(recv_times)
            print("%-9s changerelay %.2f s (%.0f rows/s)  pg_recvlogical %.2f s  ratio %.2f  peak RSS %.1f MiB  "
                  "[all: relay %s, recv %s]" % (plugin, best_relay, ROWS / best_relay, best_recv,
                                                best_relay / best_recv, max(rss),
                                                ", ".join("%.2f" % x for x in relay_times),
                                                ", ".join("%.2f" % x for x in recv_times)))
    finally:
        subprocess.run(AS_PG + [BIN + "/pg_ctl", "-D", data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(root, ignore_errors=True)


main()
