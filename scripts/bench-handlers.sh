#!/usr/bin/env bash
# Seed handlers end to end (release build, private cluster, loopback receiver):
# TRANSACTIONS transactions of one conversation insert and one job status change
# (1 000 users x 10 workflows), changes/s and calls/s through `changerelay run`,
# and the workload's insert TPS with and without the service.
#   scripts/bench-handlers.sh [TRANSACTIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_handlers.py "${1:-100000}"
