// nvcc, where it is installed: the fat binary a compiled model ships (SASS for each architecture
// and PTX of the newest, for the driver to JIT on later GPUs), and ptxas's resource report per
// kernel, checked against the target. `-ptx` alone would stop before ptxas and miss exactly
// what can go wrong there: shared memory over the limit, registers spilled to local memory.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { runFailure, userError } from '../../util/diagnostics.js';
import { runnerCacheDirectory } from '../runner-frame-cache.js';
import { cudaArchs, type CudaArch, type CudaTarget } from './target.js';

/** nvcc's path: $NVCC, else the first on PATH, else CUDA's usual install places; undefined if none. */
export function findNvcc(): string | undefined {
  const given = process.env.NVCC;
  // A given path that does not exist means none, as a missing nvcc does.
  if (given) return existsSync(given) ? given : undefined;
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'nvcc')), '/usr/local/cuda/bin/nvcc', '/usr/local/bin/nvcc'];
  return candidates.find((c) => existsSync(c));
}

/** What ptxas reports of one kernel. */
export interface KernelResources {
  readonly kernel: string;
  readonly arch: string;
  readonly registers: number;
  readonly sharedBytes: number;
  readonly stackBytes: number;
  readonly spillStoreBytes: number;
  readonly spillLoadBytes: number;
}

/** Reads `nvcc -Xptxas -v` output into one report per kernel and architecture. */
export function parsePtxasReport(text: string): KernelResources[] {
  const found: KernelResources[] = [];
  let current: { kernel: string; arch: string; stack?: number; spillStores?: number; spillLoads?: number } | undefined;
  for (const line of text.split('\n')) {
    const entry = /Compiling entry function '([^']+)' for '([^']+)'/.exec(line);
    if (entry) {
      current = { kernel: entry[1], arch: entry[2] };
      continue;
    }
    if (!current) continue;
    const frame = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (frame) {
      [current.stack, current.spillStores, current.spillLoads] = [Number(frame[1]), Number(frame[2]), Number(frame[3])];
      continue;
    }
    const used = /Used (\d+) registers(?:.*?, (\d+) bytes smem)?/.exec(line);
    if (used) {
      found.push({
        kernel: current.kernel,
        arch: current.arch,
        registers: Number(used[1]),
        sharedBytes: used[2] === undefined ? 0 : Number(used[2]),
        stackBytes: current.stack ?? 0,
        spillStoreBytes: current.spillStores ?? 0,
        spillLoadBytes: current.spillLoads ?? 0,
      });
      current = undefined;
    }
  }
  return found;
}

/**
 * Each way a kernel exceeds what the target allows, as readable text; empty when all fit.
 * @param blockSizes each kernel's threads a block, for the registers a block needs.
 */
export function resourceViolations(report: readonly KernelResources[], target: CudaTarget, blockSizes: ReadonlyMap<string, number>): string[] {
  const found: string[] = [];
  for (const k of report) {
    const where = `${k.kernel} (${k.arch})`;
    const threads = blockSizes.get(k.kernel);
    if (threads === undefined) found.push(`${where} is not a kernel of the program`);
    else {
      // Registers are allocated to whole warps, a thread's rounded up to a multiple of 8.
      const perBlock = Math.ceil(k.registers / 8) * 8 * Math.ceil(threads / 32) * 32;
      if (perBlock > target.maxRegistersPerBlock) found.push(`${where} needs ${perBlock} registers a block (${k.registers} a thread, ${threads} threads; the target has ${target.maxRegistersPerBlock})`);
    }
    if (k.spillStoreBytes > 0 || k.spillLoadBytes > 0) found.push(`${where} spills registers: ${k.spillStoreBytes} bytes stored, ${k.spillLoadBytes} loaded`);
    if (k.sharedBytes > target.maxComputeWorkgroupStorageSize) found.push(`${where} uses ${k.sharedBytes} bytes of shared memory (the target allows ${target.maxComputeWorkgroupStorageSize})`);
    if (k.registers > target.maxRegistersPerThread) found.push(`${where} uses ${k.registers} registers (the target allows ${target.maxRegistersPerThread})`);
  }
  return found;
}

/** nvcc's flags for `archs`: a cubin for one, else a fatbin with SASS for each and PTX of the last. */
function nvccTargets(archs: readonly CudaArch[]): string[] {
  const virtual = (arch: CudaArch): string => arch.replace('sm_', 'compute_');
  const newest = archs[archs.length - 1];
  if (archs.length === 1) return ['-cubin', `-arch=${newest}`];
  return ['-fatbin', ...archs.flatMap((a) => ['-gencode', `arch=${virtual(a)},code=${a}`]), '-gencode', `arch=${virtual(newest)},code=${virtual(newest)}`];
}

/** The command that builds a runner's kernels.fatbin, for a user without nvcc here. */
export function nvccCommand(source: string, out: string): string {
  return ['nvcc', ...nvccTargets(cudaArchs), '-o', out, source].join(' ');
}

export interface NvccResult {
  /** The compiled image (a cubin for one architecture, or a fatbin for several). */
  readonly image: Uint8Array;
  readonly resources: readonly KernelResources[];
}

/**
 * Compiles kernels.cu with nvcc and ptxas's report: `-cubin` for one architecture, a fatbin
 * (SASS for each of `archs`, PTX of the last) for several. A compile error is a user-facing
 * error quoting nvcc.
 */
export function compileCuda(source: string, archs: readonly CudaArch[] = cudaArchs, nvcc: string | undefined = findNvcc()): NvccResult {
  if (nvcc === undefined) throw userError('compiling CUDA kernels needs nvcc (the CUDA toolkit); put it on PATH or set NVCC');
  const dir = mkdtempSync(join(tmpdir(), 'convc-nvcc-'));
  try {
    writeFileSync(join(dir, 'kernels.cu'), source);
    const out = join(dir, archs.length === 1 ? 'kernels.cubin' : 'kernels.fatbin');
    const run = spawnSync(nvcc, [...nvccTargets(archs), '-Xptxas', '-v', '-o', out, join(dir, 'kernels.cu')], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (run.error) throw userError(`could not run nvcc (${nvcc}): ${run.error.message}`);
    const text = `${run.stdout}${run.stderr}`;
    if (run.status !== 0) throw userError(`nvcc failed on the generated kernels:\n${text.trim()}`);
    return { image: new Uint8Array(readFileSync(out)), resources: parsePtxasReport(text) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Where compiled kernels are kept, by a hash of their source: $CONVC_CACHE_DIR/cuda or <package>/.cache/convc/cuda. */
export function cudaCacheDirectory(): string {
  return join(runnerCacheDirectory(), 'cuda');
}

/** What compiling a program's module needs of it (CudaProgram has it). */
export interface CompiledKernels {
  readonly module: string;
  readonly target: CudaTarget;
  readonly shaders: readonly { readonly name: string; readonly needs: { readonly workgroupSize: number } }[];
}

/**
 * The fat binary of kernels.cu for the runner: from the cache when these exact kernels were
 * compiled before (on this machine, or on one that prepared the cache for a machine without
 * nvcc), else compiled now, checked against the target and cached.
 */
export function cachedCudaImage(program: CompiledKernels): Uint8Array {
  const { module: source, target } = program;
  const key = createHash('sha256').update(JSON.stringify(cudaArchs)).update(source).digest('hex').slice(0, 32);
  const dir = cudaCacheDirectory();
  const path = join(dir, `${key}.fatbin`);
  if (existsSync(path)) return new Uint8Array(readFileSync(path));
  const nvcc = findNvcc();
  if (nvcc === undefined) throw userError(`the cuda backend compiles its kernels with nvcc, which is not installed here (PATH, $NVCC, /usr/local/cuda/bin), and ${path} does not hold them compiled; install the CUDA toolkit, or compile on a machine that has it and carry ${dir}`);
  const compiled = compileCuda(source, cudaArchs, nvcc);
  const over = resourceViolations(compiled.resources, target, new Map(program.shaders.map((s) => [s.name, s.needs.workgroupSize])));
  if (over.length > 0) throw runFailure(`the CUDA kernels exceed ${target.name}'s limits (a convc bug; please report it)`, over);
  mkdirSync(dir, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  writeFileSync(partial, compiled.image);
  renameSync(partial, path);
  return compiled.image;
}
