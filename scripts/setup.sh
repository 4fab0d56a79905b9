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

# System packages (Debian).
# - python3, make, g++: node-gyp builds better-sqlite3 (the live host's state
#   database) from source when its prebuilt binary cannot be downloaded.
# - util-linux (mount, umount, setpriv): the live host mounts its FUSE file system
#   with mount(8) (it speaks the FUSE protocol itself: no libfuse, no fuse3
#   package needed) and the live tests run commands as another user with setpriv.
# - mdevctl (Debian 12: 1.2.0, depends on udev): test/live/mdevctl.test.ts runs the
#   unchanged binary against the live host's sysfs in a private mount namespace.
APT_PACKAGES=(python3 make g++ util-linux mdevctl)
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
fi

# node-gyp needs the Node.js headers; use the installed ones instead of downloading.
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then export npm_config_nodedir=/usr; fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
node -e "require('better-sqlite3')(':memory:').close()" 2>/dev/null || {
  echo "apsim: better-sqlite3 did not build (the live host's persistence needs it); see the npm output above" >&2
  exit 1
}
npm run build --silent
echo "apsim: set-up complete"
