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
GL="$ROOT/node_modules/gl"

log() { echo "setup-gpujs: $*"; }
die() { echo "setup-gpujs: error: $*" >&2; exit 1; }

[ -f "$GL/package.json" ] || die "node_modules/gl is missing: run npm ci first (gpu.js brings gl as its optional dependency)"

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
# gl's own node-gyp (a dependency of gl) builds against the headers of the running Node.
(cd "$GL" && "$ROOT/node_modules/.bin/node-gyp" rebuild -j "$(nproc)" >"$ROOT/node_modules/.gl-build.log" 2>&1) || {
  tail -30 "$ROOT/node_modules/.gl-build.log" >&2
  die "building gl failed (full log: node_modules/.gl-build.log)"
}
loads || die "gl was built but does not load"
log "gl is built; GL mode runs under xvfb-run -a"
