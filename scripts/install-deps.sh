#!/usr/bin/env bash
# Installs the Debian packages ChangeRelay builds and tests against, and the one Python package
# its tests use, only those missing.
set -euo pipefail
# scripts/check-deploy.sh needs the last three: PyYAML for the Kubernetes manifests, systemd for
# `systemd-analyze verify`, prometheus for promtool (about 22 MB to download, 320 MB installed,
# most of it a time-zone JavaScript library the package depends on). DashboardTests drive the
# dashboard in headless chromium (over --remote-debugging-pipe, so no Python package is needed);
# fonts-dejavu-core gives its screenshots a font to render text with. util-linux has taskset, with
# which the benchmarks pin processes to CPUs. git is how SwiftPM fetches the dependencies; AdminServerTests
# call the curl command line as an independent HTTP client (libcurl4-openssl-dev does not bring it).
packages=(postgresql-15 postgresql-15-wal2json postgresql-client-15 libpq-dev libcurl4-openssl-dev pkg-config util-linux
          git curl ca-certificates python3-yaml systemd prometheus chromium fonts-dejavu-core)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  # Debian's packages start their services on install (prometheus would listen on :9090) unless
  # policy-rc.d forbids it; the tests start their own servers, so forbid it for this install.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.x toolchain needed)"; exit 1; }
# The Standard Webhooks reference verifier (Python), with which DeliveryTests check our
# signatures independently. pip refuses to touch Debian's managed Python unless told to.
if ! python3 -c 'import standardwebhooks' 2>/dev/null; then
  echo "installing: standardwebhooks==1.1.0 (pip)"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip
  fi
  export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
  python3 -m pip install --quiet standardwebhooks==1.1.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages standardwebhooks==1.1.0
fi
