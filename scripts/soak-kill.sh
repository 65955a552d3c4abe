#!/usr/bin/env bash
# Soak: the kill -9 test with 100 kills of `changerelay run` during a 20 000-change burst.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
CHANGERELAY_SOAK_KILLS="${1:-100}" swift test --skip-build --filter killNineAtRandomInstantsLosesAndDoublesNothing
