#!/usr/bin/env bash
# Builds the `gl` package (headless-gl), which gpu.js's GL mode needs in Node, from source.
#
# npm installs gl's sources with gpu.js (an optional dependency) but does not run its install
# script (package.json's allowScripts): that script first tries to download a prebuilt binary
# from GitHub, which CI cannot reach, and would build ANGLE on every user's `npm ci` even where
# the gpujs backend is never used. This script builds it where it is wanted: the apt build
# dependencies (when running as root), then node-gyp against Node's own headers (a few minutes
# on two cores). GL mode also needs an X display: run it under `xvfb-run -a` (package xvfb,
# installed here too).
#
# Usage: bash scripts/setup-gpujs.sh [--force]   (--force rebuilds even if gl already loads)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

log() { echo "setup-gpujs: $*"; }
die() { echo "setup-gpujs: error: $*" >&2; exit 1; }

# gl as Node finds it from here: this clone's node_modules, or an app's where convc is installed.
GL="$(cd "$ROOT" && node -p "require('node:path').dirname(require.resolve('gl/package.json'))" 2>/dev/null)" ||
  die "the gl package is missing: run npm ci (or npm install gpu.js) first; gpu.js brings gl as its optional dependency"
LOG="$GL/build.log"

# Build dependencies of headless-gl's ANGLE and X11 glue, and Xvfb for the display.
packages=(python3 make g++ pkg-config libxi-dev libx11-dev libxext-dev libglu1-mesa-dev libglew-dev xvfb xauth)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing Debian packages: ${missing[*]} (install them with apt-get as root)"
  fi
fi

loads() { (cd "$ROOT" && node -e "require('gl')" 2>/dev/null); }
if [ "${1:-}" != "--force" ] && [ -f "$GL/build/Release/webgl.node" ] && loads; then
  log "gl is built: $GL/build/Release/webgl.node"
  exit 0
fi

log "building gl $(node -p "require('$GL/package.json').version") from source (ANGLE; minutes)"
# gl's own node-gyp (a dependency of gl) builds against the headers of the running Node, which
# Node's builds and Debian's nodejs install under <prefix>/include/node; node-gyp would otherwise
# download them from nodejs.org (unreachable in CI).
NODE_GYP="$(cd "$GL" && node -p "require.resolve('node-gyp/bin/node-gyp.js')")"
NODEDIR="$(node -p "require('node:path').resolve(process.execPath, '../..')")"
nodedir=()
if [ -f "$NODEDIR/include/node/node.h" ]; then nodedir=(--nodedir="$NODEDIR"); fi
(cd "$GL" && node "$NODE_GYP" rebuild "${nodedir[@]}" -j "$(nproc)" >"$LOG" 2>&1) || {
  tail -30 "$LOG" >&2
  die "building gl failed (full log: $LOG)"
}
loads || die "gl was built but does not load"
log "gl is built (GL contexts need an X display: convc starts a private Xvfb where there is none)"
