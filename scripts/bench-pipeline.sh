#!/usr/bin/env bash
# Pipeline benchmarks on a private cluster and a loopback receiver (release build):
# planning rate through echo and through conversation checks, each vs pg_recvlogical on the same
# backlog, dispatch rate at concurrency 64, write-path cost (pgbench with and without the service,
# everything sharing the cores: bench-write-path.sh pins them), commit-to-arrival latency at 500
# commits/s with the echo handler only and with every seed handler on.
#   scripts/bench-pipeline.sh [BACKLOG_ROWS] [DISPATCHED]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_pipeline.py "${1:-1000000}" "${2:-100000}"
