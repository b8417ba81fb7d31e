// Acquires a WebGPU device from Dawn (the `webgpu` npm package). A machine with a GPU driver gets
// its default adapter; one without gets the software driver that scripts/setup-webgpu.sh put in
// .cache/webgpu/ (Mesa's lavapipe, or OpenGL ES on llvmpipe), found here without any environment
// variable exported by hand: the driver's env vars only have to be set before Dawn creates its
// instance, and that happens in this process.
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type * as Dawn from 'webgpu';
import { captureNativeStderr } from './quiet-stderr.js';
import { ensureRuntimeDir } from './runtime-dir.js';
import { userError } from '../../util/diagnostics.js';
import { packageRoot } from '../../util/package-root.js';
import { claimProcessGl } from '../gl-process.js';

export { packageRoot };

export interface AcquiredGpu {
  readonly device: GPUDevice;
  /** Vendor, architecture, device, description and backend, for logs and reports. */
  readonly adapterInfo: string;
  readonly limits: GPUSupportedLimits;
  readonly features: GPUSupportedFeatures;
  /** Destroys the device, which lets the process exit once nothing else is pending. */
  destroy(): void;
}

/** Which of Dawn's paths to take: `auto` tries Vulkan (a GPU's, then lavapipe) and then OpenGL ES. */
export const adapterChoices = ['auto', 'vulkan', 'gl'] as const;
export type AdapterChoice = (typeof adapterChoices)[number];

export interface AcquireGpuOptions {
  /** Receives one line per step: which drivers were tried and why they were passed over. */
  readonly verbose?: (line: string) => void;
  /** Default `auto`. */
  readonly adapter?: AdapterChoice;
}

/** What scripts/setup-webgpu.sh writes to .cache/webgpu/driver.json. */
interface DriverDescription {
  readonly kind: 'lavapipe' | 'gl-fallback';
  readonly icd: string | null;
  readonly backend?: string;
  readonly featureLevel?: 'core' | 'compatibility';
  readonly env?: Readonly<Record<string, string>>;
  /** Libraries Dawn dlopens by bare soname that the system lacks (the Vulkan loader). */
  readonly preload?: readonly string[];
}

/** One way of creating Dawn's instance and asking it for an adapter. */
interface Attempt {
  readonly label: string;
  readonly api: 'vulkan' | 'gl';
  readonly backend?: string;
  readonly featureLevel: 'core' | 'compatibility';
  readonly env?: Readonly<Record<string, string>>;
  readonly preload?: readonly string[];
}

// Limits raised to what the adapter allows: big activations and weights live in storage
// buffers, and the fused kernels want large workgroups with plenty of workgroup memory.
const MAX_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBuffersPerShaderStage',
] as const;

// timestamp-query for `convc bench --profile`; nothing writes timestamps unless it asks.
const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

const SETUP_HINT =
  'run `bash scripts/setup-webgpu.sh` to set up a software driver (Mesa lavapipe) in .cache/webgpu/, ' +
  'or install a GPU driver with Vulkan support';

// glibc's RTLD_NODELETE, which os.constants.dlopen leaves out: process.dlopen unloads a library
// that is no Node addon right away unless it is told not to.
const RTLD_NODELETE = 0x1000;

let dawnModule: typeof Dawn | undefined;

// Dawn's instances, one per backend option, kept for the life of the process. dawn.node frees an
// instance when its JS object is collected even while a ProcessEvents callback it scheduled is
// still pending, and that callback then locks a freed mutex: with the last reference dropped
// after device.destroy(), a GC at the wrong moment crashed the process at exit (SIGSEGV/SIGABRT)
// in most runs (the crash of dawn-gpu/node-webgpu#18; the webgpu README's advice to drop the
// reference runs straight into it). Holding them costs nothing and does not keep Node from exiting.
const instances = new Map<string, GPU>();

function instanceFor(dawn: typeof Dawn, backend: string | undefined): GPU {
  const key = backend ?? '';
  let gpu = instances.get(key);
  if (!gpu) {
    // Dawn rounds timestamp queries down to tens of microseconds by default, against timing
    // attacks in browsers; `convc bench --profile` times kernels shorter than that.
    gpu = dawn.create([...(backend ? [`backend=${backend}`] : []), 'disable-dawn-features=timestamp_quantization']);
    instances.set(key, gpu);
  }
  return gpu;
}

/** Loads dawn.node on first use, so importing this file costs nothing and cannot fail. */
async function loadDawn(): Promise<typeof Dawn> {
  if (!dawnModule) {
    try {
      dawnModule = await import('webgpu');
    } catch (e) {
      throw userError(`cannot load Dawn (the 'webgpu' package) on ${process.platform}-${process.arch}: ${(e as Error).message}`);
    }
    // GPUBufferUsage, GPUMapMode, GPUShaderStage and friends, for code written against the browser.
    Object.assign(globalThis, dawnModule.globals);
  }
  return dawnModule;
}

export function driverDescriptionPath(): string {
  return join(packageRoot(), '.cache', 'webgpu', 'driver.json');
}

function readDriverDescription(log: (line: string) => void): DriverDescription | undefined {
  const path = driverDescriptionPath();
  if (!existsSync(path)) {
    log(`no ${path}; scripts/setup-webgpu.sh has not set up a driver`);
    return undefined;
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as DriverDescription;
  } catch (e) {
    log(`cannot read ${path}: ${(e as Error).message}`);
    return undefined;
  }
}

/**
 * Whether a system Vulkan loader may be there for Dawn to dlopen. Without one Dawn's default
 * adapter cannot exist on Linux, and asking for it only prints "Couldn't load Vulkan".
 */
function systemMayHaveVulkanLoader(): boolean {
  if (process.platform !== 'linux') return true;
  const triplet = process.arch === 'x64' ? 'x86_64-linux-gnu' : process.arch === 'arm64' ? 'aarch64-linux-gnu' : undefined;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter((dir) => dir),
    ...(triplet ? [`/usr/lib/${triplet}`, `/lib/${triplet}`] : []),
    ...['/usr/local/lib', '/usr/lib64', '/lib64', '/usr/lib', '/lib'],
  ];
  return triplet === undefined || dirs.some((dir) => existsSync(join(dir, 'libvulkan.so.1')));
}

function* attempts(log: (line: string) => void): Generator<Attempt> {
  const driver = readDriverDescription(log);
  // Where the setup has provided a driver, skip the default adapter if it cannot exist.
  if (driver && !systemMayHaveVulkanLoader()) {
    log("skipping Dawn's default adapter: this machine has no Vulkan loader of its own");
  } else {
    yield { label: "Dawn's default adapter", api: 'vulkan', featureLevel: 'core' };
  }
  if (driver) {
    const where = relative(packageRoot(), dirname(driverDescriptionPath()));
    yield {
      label: driver.kind === 'lavapipe' ? `lavapipe from ${where}` : `OpenGL ES fallback set up in ${where}`,
      api: driver.kind === 'lavapipe' ? 'vulkan' : 'gl',
      backend: driver.backend,
      featureLevel: driver.featureLevel ?? 'core',
      env: driver.env,
      preload: driver.preload,
    };
  }
  // Stock Mesa's EGL needs no setup at all, so it is worth a try when nothing else worked.
  if (driver?.kind !== 'gl-fallback') {
    yield {
      label: 'OpenGL ES on surfaceless EGL',
      api: 'gl',
      backend: 'opengles',
      featureLevel: 'compatibility',
      env: { EGL_PLATFORM: 'surfaceless' },
    };
  }
}

/** Sets an attempt's env vars and returns a function that puts the old values back. */
function applyEnv(env: Readonly<Record<string, string>>): () => void {
  const saved = Object.keys(env).map((key) => [key, process.env[key]] as const);
  Object.assign(process.env, env);
  return () => {
    for (const [key, value] of saved) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}

function preload(libraries: readonly string[], log: (line: string) => void): void {
  const { RTLD_NOW, RTLD_GLOBAL } = constants.dlopen;
  for (const library of libraries) {
    try {
      process.dlopen({ exports: {} }, library, RTLD_NOW | RTLD_GLOBAL | RTLD_NODELETE);
    } catch (e) {
      // A plain shared library is loaded before Node finds it is no addon and throws; only a
      // failure to load it at all matters.
      const message = (e as Error).message;
      if (!message.includes('did not self-register')) log(`cannot preload ${library}: ${message}`);
    }
  }
}

function describeAdapter(adapter: GPUAdapter, attempt: Attempt): string {
  const info = adapter.info as GPUAdapterInfo & { readonly backendType?: string };
  const parts = [
    ['vendor', info.vendor],
    ['architecture', info.architecture],
    ['device', info.device],
    ['description', info.description],
    ['backend', info.backendType ?? attempt.backend ?? "Dawn's default"],
  ].filter(([, value]) => value);
  const fields = parts.map(([key, value]) => `${key}: ${value}`).join(', ');
  return `${fields}; ${attempt.featureLevel} feature level, via ${attempt.label}`;
}

/**
 * Creates a WebGPU device with the adapter's largest buffer and workgroup limits and with
 * shader-f16, subgroups and timestamp-query where the adapter has them. Throws a UserError
 * saying how to get a driver when no adapter can be found.
 */
export async function acquireGpu(options: AcquireGpuOptions = {}): Promise<AcquiredGpu> {
  const log = options.verbose ?? (() => {});
  // Mesa reads it when Dawn's instance loads the driver, so it has to be right before that.
  ensureRuntimeDir(log);
  // What Dawn and the driver print natively while they start goes to the verbose log, not stderr.
  return captureNativeStderr((inner) => findDevice(inner, options.adapter ?? 'auto'), log);
}

async function findDevice(log: (line: string) => void, choice: AdapterChoice): Promise<AcquiredGpu> {
  const dawn = await loadDawn();
  const tried: string[] = [];
  for (const attempt of attempts(log)) {
    if (choice !== 'auto' && attempt.api !== choice) continue;
    // headless-gl (gpu.js) and Dawn's OpenGL backend cannot share a process (gl-process.ts).
    if (attempt.api === 'gl') claimProcessGl("Dawn's OpenGL ES backend (the WebGPU gl adapter)");
    if (attempt.preload?.length) preload(attempt.preload, log);
    const restoreEnv = applyEnv(attempt.env ?? {});
    const gpu = instanceFor(dawn, attempt.backend);
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await gpu.requestAdapter({ featureLevel: attempt.featureLevel, powerPreference: 'high-performance' });
    } catch (e) {
      log(`${attempt.label}: ${(e as Error).message}`);
    }
    if (!adapter) {
      log(`${attempt.label}: no adapter`);
      tried.push(attempt.label);
      restoreEnv();
      continue;
    }
    const adapterInfo = describeAdapter(adapter, attempt);
    log(`adapter: ${adapterInfo}`);

    const requiredLimits: Record<string, number> = {};
    for (const name of MAX_LIMITS) {
      const value = adapter.limits[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
    const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'convc' });
    void device.lost.then((info) => {
      if (info.reason !== 'destroyed') log(`device lost: ${info.message}`);
    });
    let destroyed = false;
    return {
      device,
      adapterInfo,
      limits: device.limits,
      features: device.features,
      destroy() {
        if (destroyed) return;
        destroyed = true;
        device.destroy();
      },
    };
  }
  const which = choice === 'auto' ? 'WebGPU adapter' : choice === 'vulkan' ? 'Vulkan WebGPU adapter' : 'OpenGL ES WebGPU adapter';
  throw userError(`no ${which} found (tried ${tried.length > 0 ? tried.join(', ') : 'nothing'})`, undefined, [SETUP_HINT]);
}
