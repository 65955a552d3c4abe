#!/usr/bin/env bash
# Installs the Debian packages ChangeRelay builds and tests against, only those missing.
set -euo pipefail
packages=(postgresql-15 postgresql-15-wal2json postgresql-client-15 libpq-dev libcurl4-openssl-dev pkg-config)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
command -v swift >/dev/null || { echo "swift is not on PATH (Swift 6.x toolchain needed)"; exit 1; }
