#!/usr/bin/env bash
# Installs what flagos needs on Debian 12 (as root), or prints the apt-get line otherwise.
set -euo pipefail
PKGS=(cmake ninja-build g++ pkg-config libgtest-dev libopenblas-dev nlohmann-json3-dev ccache python3 python3-pip libopenmpi-dev openmpi-bin clang libclang-rt-14-dev)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "[setup] missing packages; run as root:"
    echo "  apt-get install -y ${missing[*]}"
    exit 1
  fi
fi
