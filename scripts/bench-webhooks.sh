#!/usr/bin/env bash
# Webhook fan-out end to end (release build, private cluster, loopback receivers):
# MESSAGES chat messages already in the slot, drained through `changerelay run`
#   1. by the echo handler (one delivery per message): the baseline rate;
#   2. by webhooks to 4 matching configs on a fast receiver (4 deliveries per message);
#   ROUNDS times (default 3), then
#   3. the same with one of the 4 endpoints never answering: the other three's rate.
# Prints each round and the median round: deliveries/s for each, the ratio 2/1; and the other
# three's rate in 3 against the same three endpoints' share of 2 in the last round.
#   scripts/bench-webhooks.sh [MESSAGES [ROUNDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product changerelay --static-swift-stdlib >&2
swift build -c release --product BenchReceiver >&2
exec python3 scripts/bench_webhooks.py "${1:-100000}" "${2:-3}"
