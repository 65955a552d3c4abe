#!/usr/bin/env bash
# Write-path cost, pinned (release build, two private clusters, loopback receiver): pgbench
# single-row inserts (4 clients) on the SOURCE cluster, which with pgbench runs on CPU 0, for
# SECONDS a phase: with nothing reading the WAL, with pg_recvlogical draining a new slot, and with
# `changerelay run` (echo handler) reading a new slot; the reader, the STATE cluster (ChangeRelay's
# state.database_url) and the receiver run on CPU 1. The two readers alternate over ROUNDS (≥ 2)
# rounds. Prints each phase's TPS, the means and pg_recvlogical's TPS ÷ ChangeRelay's (goal ≤ 1.05),
# and the source server's CPU a transaction with each reader, counted until its walsender has sent
# the phase's WAL; then checks that every row written while ChangeRelay read got exactly one
# succeeded delivery. With RATE, pgbench runs at RATE TPS (on this machine both readers kept up at
# 6 000, and pg_recvlogical's walsender did not at 11 000) and the CPU a transaction is the
# comparison.
#   scripts/bench-write-path.sh [SECONDS] [ROUNDS] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v taskset >/dev/null || { echo "taskset is missing (util-linux): run scripts/install-deps.sh" >&2; exit 1; }
[ "$(nproc)" -ge 2 ] || { echo "the write-path benchmark pins to CPUs 0 and 1: it needs 2 CPUs, nproc says $(nproc)" >&2; exit 1; }
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_write_path.py "${1:-30}" "${2:-2}" ${3:+"$3"}
