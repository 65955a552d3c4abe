#!/usr/bin/env bash
# Drain benchmark: a backlog of ROWS rows (10 000 per transaction) drained from a slot by
# `changerelay tail --format none` and by pg_recvlogical (same plugin, same options), alternating,
# ROUNDS times each, on a private cluster. Prints seconds, the ratio to pg_recvlogical, and peak RSS.
#   scripts/bench-drain.sh [ROWS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
exec python3 scripts/bench_drain.py "${1:-1000000}" "${2:-3}"
