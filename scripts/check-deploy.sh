#!/usr/bin/env bash
# Checks every file in deploy/ with what can run on this machine, one line per check
# ("ok", "FAIL" naming the file and what is wrong, or "note"); exits 1 if any check failed.
#
# - deploy/systemd/changerelay.service: `systemd-analyze verify`, on a copy whose ExecStart points
#   at a stand-in executable. verify insists that the binary exists on this machine, and the real
#   one is only installed on the target host; every other line of the unit is verified as written.
#   Any output from verify (an unknown directive is only a warning with exit 0) counts as a
#   failure. Then `systemd-analyze security --offline=yes`: the exposure must stay at 2.0 or below.
#   Without systemd-analyze, only the directive checks of scripts/check_deploy.py run, and the
#   output says so.
# - deploy/prometheus/: `promtool check rules` on the rules, `promtool test rules` on their tests.
# - everything else (Kubernetes manifests, TOML configurations against the configuration schema,
#   the Containerfile, the guides' links and table names): scripts/check_deploy.py.
#
# Not provable here: no container engine runs here, so the image is never built (the Containerfile
# is checked statically and its health check command is run against a stand-in server); no
# Kubernetes API server, so the manifests are checked as objects, not applied; no systemd as PID 1,
# so the unit is verified, not started.
set -euo pipefail
cd "$(dirname "$0")/.."

failures=0
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
note() { printf 'note  %s\n' "$*"; }
indent() { sed 's/^/        /'; }

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# systemd ---------------------------------------------------------------------------------------
unit=deploy/systemd/changerelay.service
if command -v systemd-analyze >/dev/null 2>&1; then
  printf '#!/bin/sh\nexit 0\n' >"$scratch/changerelay"
  chmod +x "$scratch/changerelay"
  grep -q '^ExecStart=/usr/local/bin/changerelay ' "$unit" \
    || fail "$unit: ExecStart does not start /usr/local/bin/changerelay (the path this check stands in for)"
  sed "s#^ExecStart=/usr/local/bin/changerelay #ExecStart=$scratch/changerelay #" "$unit" >"$scratch/changerelay.service"
  if output=$(systemd-analyze verify "$scratch/changerelay.service" 2>&1) && [ -z "$output" ]; then
    ok "$unit: systemd-analyze verify (ExecStart binary stood in for)"
  else
    fail "$unit: systemd-analyze verify reported:"
    printf '%s\n' "${output//$scratch\//}" | indent
  fi
  if output=$(systemd-analyze security --offline=yes --threshold=20 "$scratch/changerelay.service" 2>&1); then
    ok "$unit: systemd-analyze security: $(printf '%s\n' "$output" | grep -o 'exposure level for [^:]*: .*' | sed 's/^exposure level for [^:]*: //')"
  else
    fail "$unit: systemd-analyze security: exposure above 2.0, or the analysis failed (run it for the list):"
    printf '%s\n' "$output" | grep -E '^→|rror' | indent
  fi
else
  note "$unit: systemd-analyze is not installed (scripts/install-deps.sh installs systemd); only the directive checks below run"
fi

# Prometheus --------------------------------------------------------------------------------------
rules=deploy/prometheus/changerelay-alerts.yml
tests=deploy/prometheus/changerelay-alerts.test.yml
if command -v promtool >/dev/null 2>&1; then
  if output=$(promtool check rules "$rules" 2>&1); then
    ok "$rules: promtool check rules ($(printf '%s\n' "$output" | grep -o '[0-9]* rules found'))"
  else
    fail "$rules: promtool check rules:"
    printf '%s\n' "$output" | indent
  fi
  if output=$(cd "$(dirname "$tests")" && promtool test rules "$(basename "$tests")" 2>&1); then
    ok "$tests: promtool test rules ($(grep -c 'alertname:' "$tests") alert expectations)"
  else
    fail "$tests: promtool test rules:"
    printf '%s\n' "$output" | indent
  fi
else
  fail "$rules: promtool is not installed (Debian's prometheus package; scripts/install-deps.sh installs it)"
fi

# The rest, in Python (tomllib needs 3.11+, yaml comes from python3-yaml) -------------------------
python=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import tomllib, yaml' 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  fail "scripts/check_deploy.py: no python3 with tomllib (3.11+) and yaml (python3-yaml); scripts/install-deps.sh installs it"
elif ! "$python" scripts/check_deploy.py; then
  failures=$((failures + 1))
fi

if [ "$failures" -gt 0 ]; then
  echo "check-deploy: FAILED ($failures failing check group(s) above)"
  exit 1
fi
echo "check-deploy: every file in deploy/ passed"
