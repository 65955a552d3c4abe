"""Shared pieces of the benchmark drivers: a private Postgres cluster and timed children.
Standard library only; the cluster runs as the postgres user when started as root."""
import os, re, shutil, socket, subprocess, sys, tempfile, time

BIN = max((p for p in ["/usr/lib/postgresql/%s/bin" % v for v in os.listdir("/usr/lib/postgresql")]
           if os.path.exists(p + "/initdb")), key=lambda p: int(p.split("/")[-2]))
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
RELAY = os.path.abspath(".build/release/changerelay")


RECEIVER = os.path.abspath(".build/release/BenchReceiver")


def start_receiver():
    """The fast loopback receiver (release BenchReceiver) and the URL it printed."""
    receiver = subprocess.Popen([RECEIVER], stdout=subprocess.PIPE, text=True)
    return receiver, receiver.stdout.readline().strip()


def echo_environment(cluster, receiver_url, tables):
    """`changerelay` on `cluster` with only the echo handler, sending `tables` to the receiver."""
    return dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
                CHANGERELAY_SOURCE_STATUS_INTERVAL_MS="200", CHANGERELAY_HANDLERS_ECHO_URL=receiver_url + "/echo",
                CHANGERELAY_HANDLERS_ECHO_TABLES=tables, CHANGERELAY_DELIVERY_CONCURRENCY="64")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, condition, timeout=1800, every=0.05):
    """Polls `condition` every `every` seconds until it holds; exits naming `what` after
    `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(every)


def wait_child(proc):
    """Waits for a Popen child and returns its peak RSS in MiB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024


class Cluster:
    def __init__(self, settings=""):
        self.root = tempfile.mkdtemp(prefix="changerelay-bench-")
        os.chmod(self.root, 0o777)
        self.data, self.port = self.root + "/data", free_port()
        subprocess.run(AS_PG + [BIN + "/initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL)
        found = re.search(r"(\d+)\.(\d+)", subprocess.run([BIN + "/postgres", "--version"],
                                                          capture_output=True, text=True).stdout)
        major, minor = int(found.group(1)), int(found.group(2))
        self.version = found.group(0)
        opts = "-c wal_level=logical -c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s " \
               "-c fsync=off -c synchronous_commit=on -c max_replication_slots=40 -c max_wal_senders=10 " \
               "-c shared_buffers=256MB -c max_wal_size=4GB %s" % (self.port, self.root, settings)
        if major > 15 or (major == 15 and minor >= 19):
            opts += " -c output_plugin_libraries='pgoutput, test_decoding, wal2json'"
        subprocess.run(AS_PG + [BIN + "/pg_ctl", "-D", self.data, "-o", opts, "-l", self.root + "/log", "-w", "start"],
                       check=True, stdout=subprocess.DEVNULL)
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port

    def psql(self, sql):
        done = subprocess.run(["psql", self.url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
                              capture_output=True, text=True)
        if done.returncode != 0:
            sys.exit("psql failed: %s\n%s" % (sql[:300], done.stderr))
        return done.stdout.strip()

    def session(self):
        """One psql kept open for polling: starting a psql and a backend for every poll took
        a seventh of this machine's CPU from the service being measured."""
        return Session(self.url)

    def stop(self):
        subprocess.run(AS_PG + [BIN + "/pg_ctl", "-D", self.data, "-m", "immediate", "stop"], stdout=subprocess.DEVNULL)
        shutil.rmtree(self.root, ignore_errors=True)


class Session:
    """A psql child reading queries from a pipe; `value` runs one and returns its output."""
    MARK = "-- end of answer --"

    def __init__(self, url):
        self.proc = subprocess.Popen(["psql", url, "-qAtX", "-v", "ON_ERROR_STOP=1"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def value(self, sql):
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo '%s'\n" % self.MARK)
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                sys.exit("psql session ended: %s" % sql[:300])
            if line.rstrip("\n") == self.MARK:
                return "\n".join(lines)
            lines.append(line.rstrip("\n"))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def timed_drain(argv, env=None):
    """Runs a draining child; returns (seconds, peak RSS MiB, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    rss = wait_child(proc)
    elapsed = time.monotonic() - start
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    if proc.returncode != 0:
        sys.exit("failed: %s\n%s%s" % (" ".join(argv), out, err))
    return elapsed, rss, out


def recvlogical_options(plugin, publication):
    if plugin == "pgoutput":
        return ["-o", "proto_version=2", "-o", "streaming=on", "-o", "publication_names=" + publication]
    return ["-o", "format-version=2", "-o", "include-xids=1", "-o", "include-timestamp=1", "-o", "include-lsn=1",
            "-o", "include-type-oids=1", "-o", "include-pk=1"]
