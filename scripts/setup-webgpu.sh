#!/usr/bin/env bash
# Sets up a software WebGPU driver for Dawn (the `webgpu` npm package) on a Debian machine
# without a GPU, inside the project's .cache/webgpu/ and without touching the system.
#
# Debian 12's own lavapipe (Mesa 22) is too old for Dawn, so this takes Mesa's lavapipe Vulkan
# driver from <codename>-backports: it verifies the suite's InRelease with gpgv, the Packages
# index against InRelease and each .deb against the index, unpacks with `dpkg-deb -x`, and writes
# an ICD json naming the unpacked libvulkan_lvp.so. Libraries the machine lacks are unpacked next
# to it from the base suite and found through a RUNPATH of $ORIGIN (LD_LIBRARY_PATH cannot be set
# from inside a running process). Dawn dlopens the Vulkan loader by its bare soname, so when the
# system has no libvulkan.so.1 one is unpacked too and src/backends/webgpu/device.ts preloads it.
#
# If that fails (no network, not Debian, ...), it falls back to Dawn's OpenGL ES backend on
# Mesa's llvmpipe through surfaceless EGL, installing the stock packages for it with apt-get when
# running as root, and exits 0 with a warning.
#
# Result: .cache/webgpu/driver.json, read by acquireGpu() in src/backends/webgpu/device.ts:
#   { "kind": "lavapipe" | "gl-fallback", "icd": "<abs path>" | null, "backend": ..., ... }
#
# Usage: bash scripts/setup-webgpu.sh [--force] [--fallback]
#   --force      rebuild the driver folder even if it is up to date (downloads stay cached)
#   --fallback   skip lavapipe and set up the OpenGL ES fallback (to test that path)
# Environment: SETUP_WEBGPU_MIRROR overrides the Debian mirror derived from the apt sources.
set -euo pipefail
# Functions here report through $(...) too, and a failure in one must end the attempt.
shopt -s inherit_errexit
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C

# Bump when the layout of the cache or of driver.json changes, so old caches get rebuilt.
readonly STAMP=1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache/webgpu"
DRIVER_JSON="$CACHE/driver.json"

log() { echo "setup-webgpu: $*"; }
warn() { echo "setup-webgpu: warning: $*" >&2; }
die() { echo "setup-webgpu: error: $*" >&2; exit 1; }

force=0
fallback_only=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --fallback) fallback_only=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done

mkdir -p "$CACHE"
# Two setups at once (parallel CI steps, two shells) would trample each other's temp folders.
if command -v flock >/dev/null; then
  exec 9>"$CACHE/.lock"
  flock 9
fi

json_str() { # a JSON string literal
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

# Everything driver.json names must still exist for the cached setup to count as done.
driver_is_current() {
  [[ -f $DRIVER_JSON ]] || return 1
  node -e '
    const fs = require("node:fs");
    const d = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const files = [d.icd, d.library, ...(d.preload ?? [])].filter((f) => f);
    const ok = d.stamp === Number(process.argv[2]) && d.kind === "lavapipe" && files.every((f) => fs.existsSync(f));
    process.exit(ok ? 0 : 1);
  ' "$DRIVER_JSON" "$STAMP" 2>/dev/null
}

lavapipe_current=0
if [[ $force == 0 && $fallback_only == 0 ]] && driver_is_current; then
  log "lavapipe is already set up in ${CACHE#"$ROOT/"} (--force rebuilds it)"
  lavapipe_current=1
fi

# --- downloads ------------------------------------------------------------------------------

fetch() { # url dest
  log "downloading $1"
  local part="$2.part"
  if command -v curl >/dev/null; then
    curl -fsSL --retry 1 --connect-timeout 15 --max-time 600 -o "$part" "$1" || { rm -f "$part"; die "could not download $1"; }
  elif command -v wget >/dev/null; then
    wget -q --tries=2 --timeout=15 -O "$part" "$1" || { rm -f "$part"; die "could not download $1"; }
  else # Node is always here: it runs the tests.
    node --input-type=module -e '
      import fs from "node:fs";
      const [url, dest] = process.argv.slice(1);
      const res = await fetch(url, { signal: AbortSignal.timeout(600_000) });
      if (!res.ok) { console.error(`${url}: HTTP ${res.status}`); process.exit(1); }
      fs.writeFileSync(dest, Buffer.from(await res.arrayBuffer()));
    ' "$1" "$part" || { rm -f "$part"; die "could not download $1"; }
  fi
  mv "$part" "$2"
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Prints "<mirror> <keyring>" for the first http(s) source serving the base suite, from deb822
# *.sources files and one-line *.list files alike.
find_mirror() {
  local codename=$1
  local files=()
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  local f
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] && files+=("$f")
  done
  ((${#files[@]})) || return 1
  for f in "${files[@]}"; do
    if [[ $f == *.sources ]]; then
      awk -v suite="$codename" '
        function flush() {
          if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && enabled != "no")
            for (i = 1; i <= split(uris, u, " "); i++) if (u[i] ~ /^https?:\/\//) { print u[i], (signed ~ /^\// ? signed : "-"); exit }
          types = uris = suites = signed = enabled = ""
        }
        /^[ \t]*#/ { next }
        /^[ \t]*$/ { flush(); next }
        /^[ \t]/ { next }   # continuation lines (an inline Signed-By key)
        {
          key = tolower($1); sub(/:$/, "", key); val = $0; sub(/^[^:]*:[ \t]*/, "", val)
          if (key == "types") types = val; else if (key == "uris") uris = val
          else if (key == "suites") suites = val; else if (key == "signed-by") signed = val
          else if (key == "enabled") enabled = tolower(val)
        }
        END { flush() }
      ' "$f"
    else
      awk -v suite="$codename" '
        $1 != "deb" { next }
        {
          signed = "-"; n = 2
          if ($2 ~ /^\[/) {
            for (; n <= NF; n++) { if ($n ~ /^signed-by=/) { signed = $n; sub(/^signed-by=/, "", signed); sub(/\]$/, "", signed) } if ($n ~ /\]$/) { n++; break } }
          }
          if ($n ~ /^https?:\/\// && $(n + 1) == suite) { print $n, signed; exit }
        }
      ' "$f"
    fi
  done | head -n 1 | grep .
}

# Downloads (or reuses) a suite's index, verified, and prints the path of a TSV made from it:
# package, version, filename, size, sha256, depends (Pre-Depends included).
suite_index() { # suite
  local suite=$1 dir="$CACHE/index/$1"
  local tsv="$dir/packages.tsv"
  if [[ -f $tsv && $refresh_indexes == 0 ]]; then
    echo "$tsv"
    return 0
  fi
  mkdir -p "$dir"
  rm -f "$tsv"
  fetch "$MIRROR/dists/$suite/InRelease" "$dir/InRelease" >&2
  gpgv --keyring "$KEYRING" --output "$dir/Release" "$dir/InRelease" 2>"$dir/gpgv.log" ||
    die "InRelease of $suite does not verify against $KEYRING: $(tail -n 2 "$dir/gpgv.log")"
  local path="main/binary-$ARCH/Packages.xz" want
  want=$(awk -v p="$path" '/^SHA256:/ { s = 1; next } /^[^ ]/ { s = 0 } s && $3 == p { print $1 }' "$dir/Release")
  [[ -n $want ]] || die "the Release file of $suite lists no $path"
  fetch "$MIRROR/dists/$suite/$path" "$dir/Packages.xz" >&2
  [[ $(sha256_of "$dir/Packages.xz") == "$want" ]] || die "$suite's Packages.xz does not match its SHA256 in InRelease"
  log "verified $suite: InRelease signed by the Debian archive key, Packages.xz matches it" >&2
  command -v xz >/dev/null || apt_install xz-utils || die "xz is missing (apt-get install xz-utils)"
  xz -dc "$dir/Packages.xz" | awk -v OFS='\t' '
    function emit() { if (p != "") print p, v, f, s, h, (pd != "" && d != "" ? pd ", " d : pd d); p = v = f = s = h = d = pd = "" }
    /^Package: / { p = $2 } /^Version: / { v = $2 } /^Filename: / { f = $2 } /^Size: / { s = $2 } /^SHA256: / { h = $2 }
    /^Depends: / { d = substr($0, 10) } /^Pre-Depends: / { pd = substr($0, 14) }
    /^$/ { emit() } END { emit() }
  ' >"$tsv.tmp"
  mv "$tsv.tmp" "$tsv"
  rm -f "$dir/Packages.xz"
  echo "$tsv"
}

# Prints the TSV row of the newest version of a package in a suite's index, or nothing.
find_package() { # tsv package
  local best="" row version best_version=""
  while IFS= read -r row; do
    version=$(cut -f2 <<<"$row")
    if [[ -z $best ]] || dpkg --compare-versions "$version" gt "$best_version"; then
      best=$row
      best_version=$version
    fi
  done < <(awk -F'\t' -v p="$2" '$1 == p' "$1")
  [[ -n $best ]] && echo "$best"
  return 0
}

# "package version size" of each .deb used, for driver.json (fetch_deb runs in subshells).
USED_DEBS="$CACHE/used-debs.txt"

# Downloads (or reuses) a package's .deb, checked against the index, and prints its path.
fetch_deb() { # tsv-row
  local name version filename size sha deps
  IFS=$'\t' read -r name version filename size sha deps <<<"$1"
  local deb="$CACHE/debs/${filename##*/}"
  mkdir -p "$CACHE/debs"
  if [[ -f $deb && $(sha256_of "$deb") == "$sha" ]]; then
    log "using cached ${deb##*/}" >&2
  else
    fetch "$MIRROR/$filename" "$deb" >&2
    [[ $(sha256_of "$deb") == "$sha" ]] || { rm -f "$deb"; die "${deb##*/} does not match its SHA256 in the Packages index"; }
    log "verified ${deb##*/} ($size bytes) against the index's SHA256" >&2
  fi
  echo "$name $version $size ${deb##*/}" >>"$USED_DEBS"
  echo "$deb"
}

# Installs stock packages, only as root (CI) and only when they are missing.
apt_install() { # package...
  [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null || return 1
  log "installing $* with apt-get" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    { apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "$@" >&2; }
}

installed_packages() { dpkg-query -W -f='${Package} ${db:Status-Status}\n' 2>/dev/null | awk '$2 == "installed" { print $1 }'; }

has_system_lib() { # soname
  ldconfig -p 2>/dev/null | awk -v n="$1" '$1 == n { found = 1 } END { exit !found }' && return 0
  local dir
  for dir in /lib/"$TRIPLET" /usr/lib/"$TRIPLET" /lib64 /usr/lib64 /lib /usr/lib; do
    [[ -e $dir/$1 ]] && return 0
  done
  return 1
}

missing_libs() { # elf file: sonames the dynamic linker cannot find
  { ldd "$1" 2>/dev/null || true; } | awk '/=> not found/ { print $1 }'
}

# Unpacks the shared libraries of a .deb (usr/lib/<triplet> and lib/<triplet>) into a folder.
unpack_libs() { # deb dest
  local tmp
  tmp=$(mktemp -d "$CACHE/unpack.XXXXXX")
  dpkg-deb -x "$1" "$tmp"
  local dir
  for dir in "$tmp/usr/lib/$TRIPLET" "$tmp/lib/$TRIPLET"; do
    [[ -d $dir ]] && find "$dir" -maxdepth 1 -name '*.so*' \( -type f -o -type l \) -exec cp -a {} "$2/" \;
  done
  rm -rf "$tmp"
}

# patchelf from the system, else from bookworm's .deb (it needs only libc and libstdc++).
find_patchelf() {
  if command -v patchelf >/dev/null; then
    command -v patchelf
    return 0
  fi
  local row deb tmp="$CACHE/tools"
  row=$(find_package "$BASE_TSV" patchelf)
  [[ -n $row ]] || die "patchelf is not in $CODENAME's index"
  deb=$(fetch_deb "$row")
  rm -rf "$tmp"
  mkdir -p "$tmp"
  dpkg-deb -x "$deb" "$tmp"
  echo "$tmp/usr/bin/patchelf"
}

# --- the lavapipe driver ----------------------------------------------------------------------

setup_lavapipe() {
  [[ -r /etc/os-release ]] || die "no /etc/os-release: not a Debian machine"
  # shellcheck disable=SC1091
  . /etc/os-release
  [[ ${ID:-} == debian && -n ${VERSION_CODENAME:-} ]] || die "this is ${PRETTY_NAME:-an unknown system}, not Debian; backports are Debian's"
  CODENAME=$VERSION_CODENAME
  ARCH=$(dpkg --print-architecture)
  local source
  if [[ -n ${SETUP_WEBGPU_MIRROR:-} ]]; then
    source="${SETUP_WEBGPU_MIRROR%/} -"
  else
    source=$(find_mirror "$CODENAME") || die "no http(s) apt source for suite $CODENAME in /etc/apt (set SETUP_WEBGPU_MIRROR)"
  fi
  MIRROR=${source% *}
  MIRROR=${MIRROR%/}
  KEYRING=${source##* }
  [[ $KEYRING != - && -f $KEYRING ]] || KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -f $KEYRING ]] || die "no Debian archive keyring to verify the index with ($KEYRING)"
  command -v gpgv >/dev/null || die "gpgv is missing, so the index cannot be verified"
  log "mirror $MIRROR, suites $CODENAME-backports and $CODENAME, architecture $ARCH"

  local bpo_tsv row deb
  : >"$USED_DEBS"
  bpo_tsv=$(suite_index "$CODENAME-backports")
  row=$(find_package "$bpo_tsv" mesa-vulkan-drivers)
  [[ -n $row ]] || die "mesa-vulkan-drivers is not in $CODENAME-backports"
  deb=$(fetch_deb "$row")

  local out="$CACHE/lavapipe" tmp="$CACHE/lavapipe.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/lib"
  local unpacked="$tmp/mesa"
  log "unpacking ${deb##*/}"
  dpkg-deb -x "$deb" "$unpacked"
  local lvp
  lvp=$(find "$unpacked/usr/lib" -name libvulkan_lvp.so -type f | head -n 1)
  [[ -n $lvp ]] || die "${deb##*/} has no libvulkan_lvp.so"
  TRIPLET=$(basename "$(dirname "$lvp")")
  cp "$lvp" "$tmp/lib/"
  local api_version
  api_version=$(sed -n 's/.*"api_version": *"\([^"]*\)".*/\1/p' "$unpacked"/usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1 || true)
  rm -rf "$unpacked"

  # Libraries lavapipe needs that this machine lacks come from the base suite: follow the
  # Depends of mesa-vulkan-drivers through every package that is not installed.
  local missing
  missing=$(missing_libs "$tmp/lib/libvulkan_lvp.so")
  if [[ -n $missing ]]; then
    log "this machine lacks $(echo "$missing" | tr '\n' ' ')- fetching them from $CODENAME"
    BASE_TSV=$(suite_index "$CODENAME")
    local -A have=() queued=()
    local p
    while read -r p; do have[$p]=1; done < <(installed_packages)
    local queue=("$(cut -f6 <<<"$row")") deps clause alt name chosen dep_row
    while ((${#queue[@]})); do
      deps=${queue[0]}
      queue=("${queue[@]:1}")
      IFS=',' read -ra clauses <<<"$deps"
      for clause in "${clauses[@]}"; do
        chosen=""
        IFS='|' read -ra alts <<<"$clause"
        for alt in "${alts[@]}"; do
          name=$(sed 's/([^)]*)//; s/:any//; s/ //g' <<<"$alt")
          [[ -n $name ]] || continue
          if [[ -n ${have[$name]:-} || -n ${queued[$name]:-} ]]; then chosen=done; break; fi
          [[ -z $chosen ]] && chosen=$name
        done
        [[ -z $chosen || $chosen == done || $chosen == libvulkan1 ]] && continue
        queued[$chosen]=1
        dep_row=$(find_package "$BASE_TSV" "$chosen")
        [[ -n $dep_row ]] || dep_row=$(find_package "$bpo_tsv" "$chosen")
        if [[ -z $dep_row ]]; then
          warn "dependency $chosen is in neither index; skipping it"
          continue
        fi
        deb=$(fetch_deb "$dep_row")
        unpack_libs "$deb" "$tmp/lib"
        queue+=("$(cut -f6 <<<"$dep_row")")
      done
    done
    local patchelf f
    patchelf=$(find_patchelf)
    log "setting RUNPATH=\$ORIGIN on the libraries in ${out#"$ROOT/"}/lib"
    for f in "$tmp"/lib/*.so*; do
      [[ -f $f && ! -L $f ]] && "$patchelf" --set-rpath '$ORIGIN' "$f"
    done
    missing=$(missing_libs "$tmp/lib/libvulkan_lvp.so")
    [[ -z $missing ]] || die "libvulkan_lvp.so still cannot find: $(echo "$missing" | tr '\n' ' ')"
  fi
  if ldd -r "$tmp/lib/libvulkan_lvp.so" 2>&1 | grep -q 'undefined symbol'; then
    warn "libvulkan_lvp.so has undefined symbols against this machine's libraries:"
    ldd -r "$tmp/lib/libvulkan_lvp.so" 2>&1 | grep 'undefined symbol' | head -n 5 >&2
  fi

  # Dawn dlopens "libvulkan.so.1" by name, so a loader unpacked here must be preloaded.
  local preload=()
  if has_system_lib libvulkan.so.1; then
    log "using the system's Vulkan loader (libvulkan.so.1)"
  else
    log "the system has no Vulkan loader (libvulkan.so.1); unpacking libvulkan1 from $CODENAME"
    [[ -n ${BASE_TSV:-} ]] || BASE_TSV=$(suite_index "$CODENAME")
    local loader_row
    loader_row=$(find_package "$BASE_TSV" libvulkan1)
    [[ -n $loader_row ]] || die "libvulkan1 is not in $CODENAME's index"
    mkdir -p "$tmp/loader"
    deb=$(fetch_deb "$loader_row")
    unpack_libs "$deb" "$tmp/loader"
    [[ -e $tmp/loader/libvulkan.so.1 ]] || die "libvulkan1 has no libvulkan.so.1"
    preload+=("$out/loader/libvulkan.so.1")
  fi

  local icd="$out/lvp_icd.json"
  printf '{\n  "file_format_version": "1.0.0",\n  "ICD": {\n    "library_path": %s,\n    "api_version": %s\n  }\n}\n' \
    "$(json_str "$out/lib/libvulkan_lvp.so")" "$(json_str "${api_version:-1.3.0}")" >"$tmp/lvp_icd.json"

  rm -rf "$out"
  mv "$tmp" "$out"

  local preload_json="" pkgs_json="" item
  for item in "${preload[@]}"; do preload_json+="${preload_json:+, }$(json_str "$item")"; done
  local -A used=()
  while read -r name version size file; do
    used[$file]=1
    pkgs_json+="${pkgs_json:+,
    }{ \"name\": $(json_str "$name"), \"version\": $(json_str "$version"), \"size\": $size }"
  done <"$USED_DEBS"
  rm -f "$USED_DEBS"
  # Versions the mirror has moved past are dead weight.
  for item in "$CACHE"/debs/*.deb; do
    [[ -n ${used[${item##*/}]:-} ]] || { log "removing the outdated ${item##*/}"; rm -f "$item"; }
  done
  local candidate="$CACHE/driver.json.new"
  cat >"$candidate" <<EOF
{
  "stamp": $STAMP,
  "kind": "lavapipe",
  "icd": $(json_str "$icd"),
  "library": $(json_str "$out/lib/libvulkan_lvp.so"),
  "backend": "vulkan",
  "featureLevel": "core",
  "env": { "VK_DRIVER_FILES": $(json_str "$icd"), "VK_ICD_FILENAMES": $(json_str "$icd") },
  "preload": [${preload_json}],
  "packages": [
    ${pkgs_json}
  ]
}
EOF
  probe "$candidate"
  mv "$candidate" "$DRIVER_JSON"
  log "lavapipe ready: $icd"
}

# --- the OpenGL ES fallback -------------------------------------------------------------------

# The stock packages Dawn's OpenGL ES path needs (EGL, GLES and Mesa's llvmpipe). Installed
# beside lavapipe too, as root: `convc --adapter gl` and the test suite use that path on purpose.
install_gl_packages() {
  local triplet=${TRIPLET:-}
  [[ -n $triplet ]] || triplet=$(gcc -dumpmachine 2>/dev/null || echo "$(uname -m)-linux-gnu")
  TRIPLET=$triplet
  local need=()
  has_system_lib libEGL.so.1 || need+=(libegl1)
  # Dawn dlopens the unversioned libEGL.so, which only the -dev package provides.
  has_system_lib libEGL.so || need+=(libegl-dev)
  has_system_lib libGLESv2.so.2 || need+=(libgles2)
  compgen -G '/usr/share/glvnd/egl_vendor.d/*mesa*.json' >/dev/null || need+=(libegl-mesa0)
  compgen -G "/usr/lib/$TRIPLET/dri/swrast_dri.so" >/dev/null || need+=(libgl1-mesa-dri)
  if ((${#need[@]})); then
    log "the OpenGL ES path needs ${need[*]}"
    apt_install "${need[@]}" || die "could not install ${need[*]} (as root: apt-get install ${need[*]})"
  fi
}

setup_gl_fallback() {
  install_gl_packages
  local candidate="$CACHE/driver.json.new"
  cat >"$candidate" <<EOF
{
  "stamp": $STAMP,
  "kind": "gl-fallback",
  "icd": null,
  "backend": "opengles",
  "featureLevel": "compatibility",
  "env": { "EGL_PLATFORM": "surfaceless" },
  "preload": []
}
EOF
  probe "$candidate"
  mv "$candidate" "$DRIVER_JSON"
}

# Creates a device through a driver description the way acquireGpu() does, in a fresh process.
probe() { # driver.json candidate
  if [[ ! -f $ROOT/node_modules/webgpu/index.js ]]; then
    log "node_modules/webgpu is not installed yet (npm ci); skipping the adapter check"
    return 0
  fi
  log "checking that Dawn finds an adapter through it"
  local out
  out=$(timeout 120 node --input-type=module -e '
    import fs from "node:fs";
    import { pathToFileURL } from "node:url";
    const [webgpuPath, driverPath] = process.argv.slice(1);
    const driver = JSON.parse(fs.readFileSync(driverPath, "utf8"));
    for (const lib of driver.preload ?? []) {
      // RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE: it is no Node addon, so Node unloads it otherwise.
      try { process.dlopen({ exports: {} }, lib, 0x2 | 0x100 | 0x1000); } catch {}
    }
    Object.assign(process.env, driver.env ?? {});
    const { create } = await import(pathToFileURL(webgpuPath).href);
    // Kept referenced to the end: dawn.node crashes at exit if the instance is collected early.
    const gpu = create([`backend=${driver.backend}`]);
    const adapter = await gpu.requestAdapter({ featureLevel: driver.featureLevel });
    if (!adapter) { console.error("no adapter"); process.exit(1); }
    const device = await adapter.requestDevice();
    const { vendor, architecture, description } = adapter.info;
    console.log([vendor, architecture, description].filter((s) => s).join(" / "));
    device.destroy();
  ' "$ROOT/node_modules/webgpu/index.js" "$1" 2>&1) || die "Dawn found no adapter through it: $out"
  log "adapter: $(grep -v '^Warning' <<<"$out" | tail -n 1)"
}

# --- main -------------------------------------------------------------------------------------

if [[ $lavapipe_current == 1 ]]; then
  (set -e; install_gl_packages) || warn "the OpenGL ES path (convc --adapter gl) is not available: see above"
  exit 0
fi

# Each attempt runs in a subshell with errexit on, so any failing step ends just that attempt.
if [[ $fallback_only == 0 ]]; then
  had_indexes=0
  [[ -d $CACHE/index ]] && had_indexes=1
  set +e
  (set -e; refresh_indexes=0; setup_lavapipe)
  rc=$?
  # A cached index goes stale when the mirror moves on to newer versions.
  if [[ $rc != 0 && $had_indexes == 1 ]]; then
    log "retrying with fresh package indexes"
    (set -e; refresh_indexes=1; setup_lavapipe)
    rc=$?
  fi
  set -e
  if [[ $rc == 0 ]]; then
    (set -e; install_gl_packages) || warn "the OpenGL ES path (convc --adapter gl) is not available: see above"
    exit 0
  fi
  warn "could not set up lavapipe (see above); falling back to OpenGL ES on llvmpipe"
fi

set +e
(set -e; setup_gl_fallback)
rc=$?
set -e
if [[ $rc == 0 ]]; then
  warn "using the OpenGL ES fallback (compatibility mode); WebGPU tests will run on it"
else
  rm -f "$DRIVER_JSON"
  warn "no software WebGPU driver could be set up; WebGPU needs a GPU driver on this machine"
fi
exit 0
