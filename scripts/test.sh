#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds everything, runs every test.
# Integration tests start their own private Postgres clusters and HTTP receivers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build "$@"
