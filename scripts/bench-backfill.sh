#!/usr/bin/env bash
# Backfill (release build, private cluster): ROWS existing habit_tracker rows of 5 habits, put
# behind the slot, backfilled into the new schema in apply mode by `changerelay backfill` in
# chunks of CHUNK while a live insert every 10 ms flows through the echo handler; rows/s
# against a one-shot set-based SQL copy of the same projection (the baseline), drift-check,
# and the live stream's commit-to-request latency during the backfill.
#   scripts/bench-backfill.sh [ROWS] [CHUNK]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_backfill.py "${1:-1000000}" "${2:-1000}"
