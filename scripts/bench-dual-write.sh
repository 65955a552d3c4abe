#!/usr/bin/env bash
# Dual-write sync (release build, private cluster): ROWS habit_tracker rows of 5 habits
# written in transactions of 1 000 while `changerelay run` applies them (dual_write.mode
# = apply); rows/s through the service against a one-shot set-based SQL copy of the same
# rows (the baseline), then `changerelay drift-check` on the resulting tables.
#   scripts/bench-dual-write.sh [ROWS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
exec python3 scripts/bench_dual_write.py "${1:-100000}"
