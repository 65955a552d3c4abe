#!/usr/bin/env bash
# What metrics and the admin server cost: planning and dispatch rates with admin.listen = off
# against the admin server on and scraped every second, alternating runs (release build).
#   scripts/bench-admin.sh [BACKLOG_ROWS] [DISPATCHED] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_admin.py "${1:-300000}" "${2:-50000}" "${3:-2}"
