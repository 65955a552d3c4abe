#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds everything, runs every test
# (scripts/test.sh --fast: all but the long soaks; other arguments go to swift test).
# Integration tests start their own private Postgres clusters and HTTP receivers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
python3 scripts/check-module-deps.py
scripts/check-deploy.sh
# --fast leaves out the long soaks (tagged `soak`: millions of rows, many kills).
if [ "${1:-}" = "--fast" ]; then
  shift
  export CHANGERELAY_SKIP_SOAKS=1
fi
swift test --skip-build "$@"
