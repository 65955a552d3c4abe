"""Every figure of issue 17's table with its baseline measured in the same run (see
bench-all.sh). It calls the drivers' phases (bench_pipeline, bench_handlers, bench_dual_write,
bench_timers, bench_write_path) at SCALE times the issue's sizes and prints a markdown table."""
import os, sys, time
sys.path.insert(0, os.path.dirname(__file__))
import benchlib
import bench_dual_write, bench_handlers, bench_pipeline, bench_timers, bench_write_path
from benchlib import Cluster, echo_environment, start_receiver, stop_receiver

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
if not SCALE > 0:
    sys.exit("SCALE is a fraction of the issue's sizes (1.0: the issue's own), not %s" % SCALE)


def scaled(size, multiple, least):
    """SCALE × size, a multiple of `multiple`, at least `least`."""
    return max(least, int(round(size * SCALE / multiple)) * multiple)


BACKLOG = scaled(1_000_000, bench_pipeline.TRANSACTION, bench_pipeline.TRANSACTION)
HANDLER_TRANSACTIONS = scaled(100_000, bench_handlers.CLIENTS, 1000)
DUE = scaled(150_000, 1, 1000)
ECHO_DELIVERIES = 2 * HANDLER_TRANSACTIONS  # the handlers' change count
DUAL_WRITE_ROWS = scaled(100_000, bench_dual_write.PER_TRANSACTION, 1000)
RETRIES = scaled(5000, bench_timers.CHECKS_PER_TICK, 1000)
LATENCY_SECONDS = max(10, int(round(20 * SCALE)))
WRITE_PATH_SECONDS = max(5, int(round(30 * SCALE)))
if BACKLOG < DUE + ECHO_DELIVERIES:
    sys.exit("the backlog (%d) is smaller than the deliveries dispatched from it (%d)" % (BACKLOG, DUE + ECHO_DELIVERIES))

began = time.monotonic()


def section(title):
    print("\n## %s (%.0f s into the run)" % (title, time.monotonic() - began), flush=True)


def report(line):
    print("  " + line, flush=True)


print("bench-all at SCALE %g: backlog %d rows, %d handler transactions, %d deliveries due, %d echo deliveries "
      "(the handlers' change count), %d dual-write rows, %d failing-once retries, latency phases %d s, write-path "
      "phases %d s; %d cores" % (SCALE, BACKLOG, HANDLER_TRANSACTIONS, DUE, ECHO_DELIVERIES, DUAL_WRITE_ROWS, RETRIES,
                                 LATENCY_SECONDS, WRITE_PATH_SECONDS, os.cpu_count()), flush=True)

section("pipeline: planning, dispatch, latency (bench_pipeline)")
cluster = Cluster()
receiver, receiver_url = start_receiver()
try:
    env = echo_environment(cluster, receiver_url, "public.bench,public.events")
    bench_pipeline.setup(cluster, env)
    report("PostgreSQL %s" % cluster.version)
    echo = bench_pipeline.plan_echo(cluster, env, BACKLOG)
    report(bench_pipeline.planning_line("echo", BACKLOG, echo))
    checks = bench_pipeline.plan_conversations(cluster, receiver_url, BACKLOG)
    report(bench_pipeline.planning_line("conversation checks", BACKLOG, checks))
    due_rate = bench_pipeline.dispatch(cluster, env, DUE, keep=ECHO_DELIVERIES)
    report("dispatch with %d due: %.0f deliveries/s" % (DUE, due_rate))
    echo_rate = bench_pipeline.dispatch(cluster, env, ECHO_DELIVERIES)
    report("echo dispatch, %d deliveries: %.0f deliveries/s" % (ECHO_DELIVERIES, echo_rate))
    echo_latency = bench_pipeline.echo_latency(cluster, receiver_url, LATENCY_SECONDS)
    report(bench_pipeline.echo_latency_line(echo_latency))
    every = bench_pipeline.all_handlers_latency(cluster, receiver_url, LATENCY_SECONDS)
    report(bench_pipeline.all_handlers_latency_line(every))
finally:
    if receiver.poll() is None:
        stop_receiver(receiver)
    cluster.stop()

section("seed handlers end to end (bench_handlers)")
handlers = bench_handlers.measure(HANDLER_TRANSACTIONS, report)

section("dual-write apply (bench_dual_write)")
dual = bench_dual_write.measure(DUAL_WRITE_ROWS, report)

section("timer lateness (bench_timers)")
timers = bench_timers.measure(RETRIES, report)

section("write path, pinned, separate state database (bench_write_path)")
write = bench_write_path.measure(WRITE_PATH_SECONDS, 2, report)

rss_label, rss = max(benchlib.PEAK_RSS, key=lambda item: item[1])
recv_rss = max(echo["recv_rss"], checks["recv_rss"])

rows = [
    ("planning a %d-row backlog through conversation checks (planner only), time" % BACKLOG,
     "%.2f s (%.0f rows/s)" % (checks["planning"], BACKLOG / checks["planning"]),
     "pg_recvlogical drains the same backlog: %.2f s" % checks["recv"],
     "%.2f×" % (checks["planning"] / checks["recv"]), "≤ 1.3×"),
    ("seed handlers' calls/s (%d transactions: %d changes, %d calls, first write to last call)"
     % (HANDLER_TRANSACTIONS, 2 * HANDLER_TRANSACTIONS, handlers["calls"]),
     "%.0f calls/s" % handlers["calls_per_s"],
     "echo dispatch of %d deliveries: %.0f/s" % (ECHO_DELIVERIES, echo_rate),
     "%.2f×" % (handlers["calls_per_s"] / echo_rate), "≥ 0.8×"),
    ("the same calls drained from a slot the workload filled beforehand (the cores the service's own, as in the "
     "echo dispatch)", "%.0f calls/s" % handlers["backlog_calls_per_s"],
     "echo dispatch of %d deliveries: %.0f/s" % (ECHO_DELIVERIES, echo_rate),
     "%.2f×" % (handlers["backlog_calls_per_s"] / echo_rate), "≥ 0.8×"),
    ("like for like: the same calls drained ÷ the echo handler drained from a slot filled the same way (as many "
     "changes in as many transactions; planning and dispatch both)", "%.0f calls/s" % handlers["backlog_calls_per_s"],
     "echo drained from a slot: %.0f deliveries/s" % handlers["echo_backlog_per_s"],
     "%.2f×" % (handlers["backlog_calls_per_s"] / handlers["echo_backlog_per_s"]), ""),
    ("dispatch with %d deliveries due (echo, concurrency 64)" % DUE, "%.0f deliveries/s" % due_rate,
     "— (pg_net documents about 200/s)", "—", "≥ 10 000/s"),
    ("dual-write apply, %d habit_tracker rows" % DUAL_WRITE_ROWS, "%.0f rows/s" % dual["rows_per_s"],
     "one-shot SQL copy: %.0f rows/s" % dual["one_shot_rows_per_s"], "%.2f×" % dual["ratio"], "≥ 1.0×"),
    ("retry lateness p99 (%d failing-once checks, 300 ms delay)" % timers["retries"]["count"],
     "%.1f ms" % timers["retries"]["p99"], "—", "—", "p99 ≤ 20 ms"),
    ("timer (buffer flush) lateness p99 (%d windows); schedules max %.1f ms" % (timers["flushes"]["count"],
                                                                              timers["schedules"]["max"]),
     "%.1f ms" % timers["flushes"]["p99"], "—", "—", "p99 ≤ 20 ms"),
    ("peak RSS of `run` over %d runs (VmHWM; largest: %s)" % (len(benchlib.PEAK_RSS), rss_label),
     "%.1f MiB" % rss, "pg_recvlogical's peak in the planning drains: %.1f MiB" % recv_rss,
     "%.2f×" % (rss / recv_rss), "≤ 64 MB"),
    ("commit → request p99 at 500 changes/s, every seed handler on (measured on the echo sixth of the changes; "
     "%d requests of every handler in all)" % every["requests"],
     "%.1f ms (p50 %.1f)" % (every["p99"], every["p50"]),
     "echo only: %.1f ms (p50 %.1f)" % (echo_latency["p99"], echo_latency["p50"]),
     "%.2f×" % (every["p99"] / echo_latency["p99"]), "p99 ≤ 20 ms"),
    ("write path: pgbench TPS with pg_recvlogical ÷ with `changerelay run` (pinned, state on its own cluster, "
     "2 rounds of %d s)" % WRITE_PATH_SECONDS,
     "changerelay %.0f TPS" % write["changerelay"],
     "pg_recvlogical %.0f TPS (no reader %.0f)" % (write["recvlogical"], write["alone"]),
     "%.3f" % write["ratio"], "≤ 1.05"),
    ("the same phases: the source server's CPU a transaction, counted until its walsender had sent the phase's WAL "
     "(pg_recvlogical's decodes after pgbench stops what it had not sent)",
     "changerelay %.1f µs" % write["cost"]["changerelay"], "pg_recvlogical %.1f µs" % write["cost"]["recvlogical"],
     "%.3f" % write["cost_ratio"], ""),
]
section("issue 17, SCALE %g, PostgreSQL %s, %d cores" % (SCALE, cluster.version, os.cpu_count()))
print()
print("| figure | measured | baseline (same run) | ratio | target |")
print("| --- | --- | --- | --- | --- |")
for row in rows:
    print("| " + " | ".join(row) + " |")
print("\n%s" % write["exactness"])
print("bench-all took %.0f s" % (time.monotonic() - began))
