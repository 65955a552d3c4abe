#!/usr/bin/env bash
# Issue 17's table in one command (release build): every figure with its baseline measured in the
# same run, at SCALE times the issue's sizes (1.0: a 1 M-row backlog, 100 000 handler transactions,
# 150 000 deliveries due, 100 000 dual-write rows). It runs, one after the other, the phases of
# bench-pipeline (planning through conversation checks vs pg_recvlogical, dispatch, commit-to-request
# latency with echo only and with every seed handler on), bench-handlers, bench-dual-write,
# bench-timers and bench-write-path (pinned to CPUs 0 and 1), records the peak RSS of every
# `changerelay run`, and ends with a markdown table: figure | measured | baseline | ratio | target.
# SCALE 0.05 takes a few minutes.
#   scripts/bench-all.sh [SCALE]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v taskset >/dev/null || { echo "taskset is missing (util-linux): run scripts/install-deps.sh" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "bench-all's write-path phase pins to CPUs 0 and 1: it needs 2 CPUs, nproc says $(nproc)" >&2; exit 1; }
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_all.py "${1:-1.0}"
