#!/usr/bin/env bash
# Timer lateness (fired - due) under load, release build, private cluster, loopback receiver:
#   retries   - RETRIES conversation checks, 10 every 50 ms, whose first try fails
#               (retry_delay_ms 300): second try's start - (first try's record + 300 ms);
#   flushes   - one-message windows of 1 s, 2 every 50 ms, closed by the first commit after
#               their deadline (a tick when the stream is quiet): the flush's start - flush_due_at;
#   schedules - a job on every minute while the rest runs: started_at - due_at.
# Prints p50, p99 and max of each (goal: p99 <= 20 ms).
#   scripts/bench-timers.sh [RETRIES]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_timers.py "${1:-5000}"
