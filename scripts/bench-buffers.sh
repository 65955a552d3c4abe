#!/usr/bin/env bash
# Message buffering at scale (release build, private cluster, loopback receiver): CONVERSATIONS
# (10 000) conversations x 10 messages written while the service runs (caught up), in ten rounds
# of one message per conversation, each round in transactions of 100 over about 4 s, with
# 30 s windows: every buffer holds its conversation's 10 messages and the deadlines spread
# over the last round. Prints buffers flushed per second (first flush to last) and the flush
# lateness (the flush's first try - flush_due_at) p50/p99 (goal p99 <= 100 ms; seed 002's poll
# ran every 10 s).
#   scripts/bench-buffers.sh [CONVERSATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_buffers.py "${1:-10000}"
