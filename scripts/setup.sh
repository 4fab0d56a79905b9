#!/usr/bin/env bash
# apsim set-up: installs the system packages apsim needs and the npm dependencies,
# then builds. Safe to run repeatedly. Needs root (or sudo) for the system packages.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
have=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$have" -lt "$need_node_major" ]; then
  echo "apsim needs Node.js >= $need_node_major (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

# System packages (Debian). Nothing beyond Node.js is needed yet; the live host's
# FUSE mount and the mdevctl tests will add their packages here.
APT_PACKAGES=()
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build --silent
echo "apsim: set-up complete"
