#!/usr/bin/env bash
# Runs on a machine with a real (NVIDIA) GPU, from a bare start, in a few minutes: the PyTorch
# golden cases through `convc run` on CUDA and on WebGPU (Dawn's Vulkan on the same GPU), each
# checked against the goldens (bench/results/device-goldens.json), then the standard benchmark
# set (`npm run bench`, with its cuda row), leaving bench/results/<adapter>.json.
#
# On this project's lent GPU machines (see the device tool's README) nothing can be fetched, so
# bring Node and the installed packages along: on the machine that prepares the run,
#   mkdir -p .device && cp -r "$(dirname "$(dirname "$(command -v node)")")" .device/node
#   npm ci && npm run build
# and carry .device, node_modules and dist. `convc run --backend cuda` and the bench's cuda row
# compile their kernels with nvcc; where the GPU machine has none, compile them on the preparing
# machine with `node bench/prepare-cuda.mjs` and carry .cache/convc/cuda as well. Vulkan's
# loader and the NVIDIA ICD are looked for in the usual places; if Dawn finds no adapter,
# VK_DRIVER_FILES is pointed at NVIDIA's ICD.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

if [ -x .device/node/bin/node ]; then export PATH="$PWD/.device/node/bin:$PATH"; fi
command -v node >/dev/null || { echo "device-check: no node on PATH and none in .device/node" >&2; exit 1; }
node --version

if [ ! -d node_modules/webgpu ]; then npm ci --no-audit --no-fund; fi
[ -f dist/convc.mjs ] || npm run build

# An NVIDIA machine: Dawn needs the Vulkan loader and NVIDIA's ICD.
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
  if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
done
ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 || echo "device-check: warning: no system Vulkan loader (libvulkan.so.1); carry and unpack Debian's libvulkan1" >&2
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null || true

node bin/convc.js run models/convnextv2-atto.cnx --random-weights --backend webgpu --verbose --size 64
node bin/convc.js run models/convnextv2-atto.cnx --random-weights --backend cuda --size 64
# Both GPU backends on every golden case; a case off by more than 1e-4 fails the check.
node bench/check-goldens.mjs --backend cuda --backend webgpu --json bench/results/device-goldens.json
BENCH_RUNS="${BENCH_RUNS:-10}" node bench/standard.mjs
echo "device-check: done in $(( $(date +%s) - start )) s"
