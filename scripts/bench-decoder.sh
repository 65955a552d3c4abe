#!/usr/bin/env bash
# Decoder benchmark: pgoutput Insert messages of a 6-column row (bigint, 4×text, timestamptz),
# decoded on one core in a release build.   scripts/bench-decoder.sh [MESSAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product DecoderBench >&2
exec taskset -c 0 .build/release/DecoderBench "$@"
