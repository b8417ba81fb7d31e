// Builds the CPU emulation of the CUDA backend with g++: the emulated driver (driver.cpp, a
// libcuda.so.1 for a runner to load in place of NVIDIA's) and, per kernels.cu, a kernels shared
// object that driver loads as a module. A module image for the emulated driver is the bytes
// "CONVC-EMULATED-MODULE\n" and the kernels object's absolute path, NUL-terminated.
//
// Both are cached under $CONVC_CACHE_DIR/cuda-emulated (else <package>/.cache/convc/cuda-emulated)
// in directories named by a hash of everything that goes into them: the C++ sources here, the
// kernels, the flags and g++'s version. Files are written beside their final name and renamed,
// so parallel test workers building the same thing never see half an object.
//
// For AddressSanitizer (`sanitize: 'address'`) build both the driver and the kernels so, and run
// the process with the ASan runtime preloaded (LD_PRELOAD=$(g++ -print-file-name=libasan.so)),
// since node itself is not instrumented.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../../util/package-root.js';
import { runnerCacheDirectory } from '../../runner-frame-cache.js';

export interface EmulationBuildOptions {
  /** Instrument with AddressSanitizer, so an out-of-bounds access in a kernel is reported. */
  readonly sanitize?: 'address';
}

/** What an emulated module image starts with; the kernels object's path follows. */
export const emulatedModuleMagic = 'CONVC-EMULATED-MODULE\n';

/** A C identifier: what a kernel name must be to appear in the generated registry (and a RegExp). */
const identifier = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Where the emulation's C++ sources are: under the package root, from src/ and from dist/ alike. */
export function emulationSourceDirectory(): string {
  return join(packageRoot(), 'src', 'backends', 'cuda', 'emulation');
}

/** The cache of built drivers and kernels objects. */
export function emulationCacheDirectory(): string {
  return join(runnerCacheDirectory(), 'cuda-emulated');
}

function compileFlags(options: EmulationBuildOptions): string[] {
  // -fvisibility=hidden: a kernels object exports only its table, so kernels of two modules
  // (or of a module and anything else loaded) never bind to each other's symbols.
  // -fno-gnu-unique: lets dlclose really unload a kernels object (cuModuleUnload).
  const common = ['-std=c++20', '-fPIC', '-shared', '-fno-strict-aliasing', '-Wno-unknown-pragmas', '-fvisibility=hidden', '-fno-gnu-unique', '-pthread'];
  // With AddressSanitizer also UBSan's alignment check, trapping (no runtime to load): a float4
  // access off a 16-byte boundary faults on a GPU, but g++ may split it into scalar loads that do not.
  return options.sanitize === 'address'
    ? [...common, '-fsanitize=address', '-fsanitize=alignment', '-fsanitize-undefined-trap-on-error', '-fno-omit-frame-pointer', '-O1', '-g']
    : [...common, '-O2'];
}

let compilerVersion: string | undefined;

/** g++'s version, which keys the cache; also where a missing g++ is reported. */
function gxxVersion(): string {
  if (compilerVersion !== undefined) return compilerVersion;
  const result = spawnSync('g++', ['-dumpfullversion', '-dumpversion'], { encoding: 'utf8' });
  if (result.error !== undefined && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('the cuda-emulated backend compiles kernels with g++; install g++ (apt-get install g++)');
  }
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`g++ -dumpfullversion failed: ${result.error?.message ?? result.stderr}`);
  }
  compilerVersion = result.stdout.trim();
  return compilerVersion;
}

/** The emulation's C++ sources (not this file), in a stable order, for cache keys. */
function emulationSources(): { readonly path: string; readonly text: string }[] {
  const root = emulationSourceDirectory();
  const found: { path: string; text: string }[] = [];
  const walk = (dir: string, prefix: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.isDirectory()) walk(join(dir, entry.name), `${prefix}${entry.name}/`);
      else if (/\.(h|cpp)$/.test(entry.name)) found.push({ path: `${prefix}${entry.name}`, text: readFileSync(join(dir, entry.name), 'utf8') });
    }
  };
  walk(root, '');
  return found;
}

function cacheKey(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${part.length}:`).update(part);
  return hash.digest('hex').slice(0, 32);
}

/** Writes `text` to `path` through a temporary file and a rename. */
function writeAtomically(path: string, text: string): void {
  const temporary = `${path}.${process.pid}-${Math.random().toString(36).slice(2, 8)}.partial`;
  writeFileSync(temporary, text);
  renameSync(temporary, path);
}

/** Compiles into `output` atomically; throws with g++'s own message if it fails. */
function compile(what: string, args: readonly string[], output: string): void {
  const temporary = `${output}.${process.pid}-${Math.random().toString(36).slice(2, 8)}.partial`;
  const result = spawnSync('g++', [...args, '-o', temporary], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.error !== undefined) {
    rmSync(temporary, { force: true });
    if ((result.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('the cuda-emulated backend compiles kernels with g++; install g++ (apt-get install g++)');
    }
    throw new Error(`g++ could not be run to build ${what}: ${result.error.message}`);
  }
  if (result.status !== 0) {
    rmSync(temporary, { force: true });
    throw new Error(`g++ could not build ${what}:\n${result.stderr.trim()}`);
  }
  renameSync(temporary, output);
}

/**
 * The emulated driver, libcuda.so.1, built once per version of its sources, flags and g++;
 * its absolute path.
 */
export function emulatedDriverPath(options: EmulationBuildOptions = {}): string {
  const flags = compileFlags(options);
  const version = gxxVersion();
  const sources = emulationSources();
  const key = cacheKey([version, ...flags, ...sources.flatMap((s) => [s.path, s.text])]);
  const dir = join(emulationCacheDirectory(), `driver-${options.sanitize === 'address' ? 'asan-' : ''}${key}`);
  const output = join(dir, 'libconvc-emulated-cuda.so.1');
  if (existsSync(output)) return output;
  mkdirSync(dir, { recursive: true });
  const source = emulationSourceDirectory();
  // Its own soname: glibc matches loaded libraries by soname, so one named libcuda.so.1 would
  // answer every later dlopen("libcuda.so.1") in the process, the real driver's included.
  compile('the emulated CUDA driver', [...flags, `-I${source}`, '-Wl,-soname,libconvc-emulated-cuda.so.1', join(source, 'driver.cpp'), '-ldl'], output);
  return output;
}

/**
 * Each kernel's __launch_bounds__ maximum, read from the source: the attribute leaves no trace
 * g++ can see, yet the driver must refuse launches above it as CUDA does.
 */
export function launchBounds(cudaSource: string, kernelName: string): number | undefined {
  if (!identifier.test(kernelName)) throw new Error(`internal: ${JSON.stringify(kernelName)} cannot be a CUDA kernel's name`);
  const declaration = new RegExp(`__launch_bounds__\\s*\\(\\s*(\\d+)u?\\s*(?:,[^)]*)?\\)\\s*(?:void\\s+)?${kernelName}\\s*\\(`);
  const found = declaration.exec(cudaSource);
  return found === null ? undefined : Number(found[1]);
}

/** The translation unit that turns kernels.cu into a kernels object: the emulation, the kernels, their table. */
export function registrySource(cudaSource: string, kernelNames: readonly string[]): string {
  const entries = kernelNames.map((name) => `  convc_emu::describe_kernel<&${name}>("${name}", ${launchBounds(cudaSource, name) ?? 0}u),`);
  return [
    '// Generated by convc (src/backends/cuda/emulation/build.ts): the kernels of kernels.cu, compiled by g++',
    '// with the host emulation of CUDA, and the table the emulated driver finds them by.',
    '#include "cuda-emulation.h"',
    '#include "kernels.cu"',
    '',
    'static const convc_emulated_kernel convc_emulated_kernel_list[] = {',
    ...entries,
    '};',
    '',
    'extern "C" __attribute__((visibility("default"))) const convc_emulated_kernel_table convc_emulated_kernels = {',
    `    CONVC_EMULATED_ABI_VERSION, ${kernelNames.length}u, convc_emulated_kernel_list};`,
    '',
  ].join('\n');
}

/** The module image the emulated driver's cuModuleLoadData takes for the kernels object at `path`. */
export function emulatedModuleImage(path: string): Uint8Array {
  return new TextEncoder().encode(`${emulatedModuleMagic}${path}\0`);
}

/**
 * Compiles kernels.cu (exactly as the CUDA renderer wrote it) for the CPU and returns the module
 * image to hand the emulated driver's cuModuleLoadData. `kernelNames` are the `extern "C"
 * __global__` functions a runner may ask for; a name kernels.cu lacks fails to compile.
 */
export function buildEmulatedKernels(cudaSource: string, kernelNames: readonly string[], options: EmulationBuildOptions = {}): Uint8Array {
  if (kernelNames.length === 0) throw new Error('internal: an emulated CUDA module needs at least one kernel');
  for (const name of kernelNames) {
    if (!identifier.test(name)) throw new Error(`internal: ${JSON.stringify(name)} cannot be a CUDA kernel's name`);
  }
  if (new Set(kernelNames).size !== kernelNames.length) throw new Error('internal: a kernel is named twice');
  const flags = compileFlags(options);
  const version = gxxVersion();
  const registry = registrySource(cudaSource, kernelNames);
  const sources = emulationSources().filter((s) => s.path.endsWith('.h'));
  const key = cacheKey([version, ...flags, registry, cudaSource, ...sources.flatMap((s) => [s.path, s.text])]);
  const dir = join(emulationCacheDirectory(), `kernels-${options.sanitize === 'address' ? 'asan-' : ''}${key}`);
  const output = join(dir, 'kernels.so');
  if (!existsSync(output)) {
    mkdirSync(dir, { recursive: true });
    // Kept beside the object: g++'s messages and __FILE__ in barrier reports point here.
    writeAtomically(join(dir, 'kernels.cu'), cudaSource);
    writeAtomically(join(dir, 'registry.cpp'), registry);
    const source = emulationSourceDirectory();
    compile('the emulated CUDA kernels', [...flags, `-I${source}`, `-I${join(source, 'include')}`, join(dir, 'registry.cpp')], output);
  }
  return emulatedModuleImage(output);
}
