"""Shared pieces of the benchmark drivers: a private Postgres cluster and timed children.
Standard library only; the cluster runs as the postgres user when started as root."""
import atexit, os, re, shutil, signal, socket, subprocess, sys, tempfile, time

BIN = max((p for p in ["/usr/lib/postgresql/%s/bin" % v for v in os.listdir("/usr/lib/postgresql")]
           if os.path.exists(p + "/initdb")), key=lambda p: int(p.split("/")[-2]))
AS_PG = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
RELAY = os.path.abspath(".build/release/changerelay")


RECEIVER = os.path.abspath(".build/release/BenchReceiver")


def start_receiver(cpu=None, env=None):
    """The fast loopback receiver (release BenchReceiver) and the URL it printed."""
    receiver = subprocess.Popen(pinned([RECEIVER], cpu), stdout=subprocess.PIPE, text=True, env=env)
    LIVE_CHILDREN.append(receiver)
    url = receiver.stdout.readline().strip()
    if not url.startswith("http"):
        sys.exit("BenchReceiver did not print its URL (exit %s); build it: swift build -c release --product BenchReceiver"
                 % receiver.poll())
    return receiver, url


def stop_receiver(receiver):
    """Stops the receiver; returns its summary line (requests, keys, latency percentiles)."""
    receiver.send_signal(signal.SIGTERM)
    summary = receiver.stdout.read().strip()
    receiver.wait(timeout=120)
    return summary


def receiver_latency(summary):
    """{"requests", "keys", "p50", "p99", "max"} from the receiver's summary line."""
    words = summary.split()
    return {"requests": int(words[1]), "keys": int(words[3]), "p50": float(words[6]), "p99": float(words[8]),
            "max": float(words[10])}


def relay_environment(cluster, **settings):
    """`changerelay` on `cluster` (source and state) with the benchmarks' common settings and
    `settings` (CHANGERELAY_* names) on top. The admin server binds a free port: a second run
    on the machine (another engineer's benchmark) holding 9187 would stop `run` at start."""
    env = dict(os.environ, CHANGERELAY_SOURCE_DATABASE_URL=cluster.url, CHANGERELAY_LOG_LEVEL="warning",
               CHANGERELAY_SOURCE_STATUS_INTERVAL_MS="200", CHANGERELAY_DELIVERY_CONCURRENCY="64",
               CHANGERELAY_ADMIN_LISTEN="127.0.0.1:0")
    env.update(settings)
    return env


def echo_environment(cluster, receiver_url, tables):
    """`changerelay` on `cluster` with only the echo handler, sending `tables` to the receiver."""
    return relay_environment(cluster, CHANGERELAY_HANDLERS_ECHO_URL=receiver_url + "/echo",
                             CHANGERELAY_HANDLERS_ECHO_TABLES=tables)


def pinned(argv, cpu):
    """`argv` run on CPU `cpu` only (taskset), or as it is when `cpu` is None."""
    if cpu is None:
        return argv
    if shutil.which("taskset") is None:
        sys.exit("taskset is missing: scripts/install-deps.sh installs util-linux, which provides it")
    if cpu not in os.sched_getaffinity(0):
        sys.exit("CPU %d is not available to this process (allowed: %s); pinning needs 2 CPUs"
                 % (cpu, sorted(os.sched_getaffinity(0))))
    return ["taskset", "-c", str(cpu)] + argv


def check_pinned(pid, cpu, what):
    """Exits unless process `pid` (and so what it starts) may run on CPU `cpu` only."""
    allowed = os.sched_getaffinity(pid)
    if allowed != {cpu}:
        sys.exit("%s (pid %d) runs on CPUs %s, not on CPU %d only" % (what, pid, sorted(allowed), cpu))


# What a driver started and has not stopped yet: a driver that exits early (sys.exit on a failed
# check, an exception) leaves no server, service or receiver running behind it.
LIVE_CHILDREN, LIVE_CLUSTERS = [], []


@atexit.register
def _clean_up():
    for child in LIVE_CHILDREN:
        if child.poll() is None:
            child.kill()
            child.wait()
    for cluster in list(LIVE_CLUSTERS):
        cluster.stop()


# Peak RSS (MiB, VmHWM) of every `changerelay run` stopped through stop_relay, with its label,
# in the order they stopped: bench-all reports the largest over all its drivers.
PEAK_RSS = []


def peak_rss(pid):
    """VmHWM of a running process in MiB: the most resident memory it has had."""
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    sys.exit("no VmHWM in /proc/%d/status" % pid)


def rss_summary():
    """One line on the largest VmHWM in PEAK_RSS, for a driver's last line."""
    if not PEAK_RSS:
        return "peak RSS of changerelay: no run was stopped"
    label, rss = max(PEAK_RSS, key=lambda item: item[1])
    return "peak RSS of changerelay: %.1f MiB (VmHWM of %s; %d processes)" % (rss, label, len(PEAK_RSS))


def start_relay(args, env, cpu=None):
    """`changerelay ARGS` in the background, stdout discarded, stderr in a temporary file (a
    pipe nobody reads would stop the service once full) that a failure prints."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(pinned([RELAY] + args, cpu), env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.log = log
    LIVE_CHILDREN.append(proc)
    return proc


def child_log(proc):
    """The last 3 000 characters of what a start_relay child wrote to stderr."""
    if not hasattr(proc, "log"):
        return ""
    proc.log.seek(0)
    return proc.log.read().decode(errors="replace")[-3000:]


def stop_relay(proc, label="run"):
    """Reads the child's peak RSS, then stops it with SIGTERM; exits loudly unless it stopped
    cleanly. Records (label, MiB) in PEAK_RSS and returns the MiB."""
    if proc.poll() is not None:
        sys.exit("changerelay %s had already exited (%s): %s" % (label, proc.returncode, child_log(proc)))
    rss = peak_rss(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    if proc.returncode != 0:
        sys.exit("changerelay %s exited %d after SIGTERM: %s" % (label, proc.returncode, child_log(proc)))
    PEAK_RSS.append((label, rss))
    return rss


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what, condition, timeout=1800, every=0.05, watch=()):
    """Polls `condition` every `every` seconds until it holds; exits naming `what` after
    `timeout` seconds, or as soon as one of the children in `watch` has exited."""
    deadline = time.monotonic() + timeout
    while not condition():
        for child in watch:
            if child.poll() is not None:
                sys.exit("%s exited (%s) while waiting for %s: %s" % (" ".join(map(str, child.args)), child.returncode,
                                                                   what, child_log(child)))
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)
        time.sleep(every)


# What an unfinished delivery is, in the terms of the state schema's open-row indexes (sql/017).
OPEN = "completed_at IS NULL"


def wait_deliveries(session, what, succeeded=None, watch=(), timeout=1800):
    """Waits until no delivery is open and, when `succeeded` is given, that many have
    succeeded; exits when one finished without succeeding.
    The frequent poll reads the open rows through the claim's own index; the finished rows are
    counted, a scan of the table, only when none is open and at most twice a second: counting
    succeeded rows twenty times a second took a third of a core from the service measured."""
    counted = [0.0]

    def finished():
        if session.value("SELECT EXISTS (SELECT FROM changerelay.deliveries WHERE %s)" % OPEN) == "t":
            return False
        if time.monotonic() - counted[0] < 0.5:
            return False
        counted[0] = time.monotonic()
        done, failed = map(int, session.value(
            "SELECT count(*) FILTER (WHERE status = 'succeeded') || ' ' || count(*) FILTER (WHERE status <> 'succeeded') "
            "FROM changerelay.deliveries WHERE NOT (%s)" % OPEN).split())
        if failed:
            sys.exit("%d deliveries finished without succeeding while waiting for %s" % (failed, what))
        return succeeded is None or done >= succeeded

    wait_until(what, finished, timeout=timeout, watch=watch)


def wait_streaming(cluster, slot, watch=(), timeout=120):
    """Waits until a reader holds `slot` (its walsender is up), so a measured phase starts with
    the reader streaming rather than connecting."""
    wait_until("a reader on slot " + slot, lambda: cluster.psql(
        "SELECT coalesce((SELECT active FROM pg_replication_slots WHERE slot_name = '%s'), false)" % slot) == "t",
        timeout=timeout, watch=watch)


def wait_child(proc):
    """Waits for a Popen child and returns its peak RSS in MiB."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_maxrss / 1024


class Cluster:
    """A private cluster; with `cpu`, its postmaster (and so every backend, walsender and
    background process it starts) runs on that CPU only."""
    def __init__(self, settings="", cpu=None):
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
        subprocess.run(pinned(AS_PG + [BIN + "/pg_ctl", "-D", self.data, "-o", opts, "-l", self.root + "/log", "-w",
                                       "start"], cpu), check=True, stdout=subprocess.DEVNULL)
        self.url = "postgresql://postgres@127.0.0.1:%d/postgres" % self.port
        LIVE_CLUSTERS.append(self)
        if cpu is not None:
            with open(self.data + "/postmaster.pid") as f:
                check_pinned(int(f.readline()), cpu, "the postmaster of " + self.data)

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
        if self in LIVE_CLUSTERS:
            LIVE_CLUSTERS.remove(self)
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
            "-o", "include-types=0", "-o", "include-type-oids=1", "-o", "include-pk=1"]
