#!/usr/bin/env bash
# The embedded default: installs what is missing, builds, and runs `changerelay dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --product changerelay
exec .build/debug/changerelay dev "$@"
