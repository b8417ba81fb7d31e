// Runs a graph's gpu.js kernels in this process: each dispatch a gpu.js kernel of its own,
// pipelined (its output stays a texture on the GPU for the next), the weights and inputs passed
// as arrays. gpu.js is an optional dependency, and its GL mode in Node needs the `gl` package
// built from source (scripts/setup-gpujs.sh) and an X display: each missing piece is a user
// error saying what to do, and the mode that actually runs is checked, never assumed, because
// gpu.js falls back to another mode without a word.
import { createRequire } from 'node:module';
import { packWeightValues } from '../../kernel/model-program.js';
import { modelInputs } from '../../kernel/model-io.js';
import type { WeightMap } from '../reference/executor.js';
import type { Graph, HostTensor } from '../../ir/types.js';
import { userError } from '../../util/diagnostics.js';
import { claimProcessGl } from '../gl-process.js';
import { ensureDisplay } from './display.js';
import { buildGlIfMissing, glLoads } from './gl-build.js';
import { lowerToGpuJs, type GpuJsProgram } from './lower.js';
import { generateGpuJsRunnerFiles } from './runner.js';
import { importRunnerJavaScript } from '../wgsl/load-runner.js';

/** 'gpu': WebGL (headless-gl in Node); 'cpu': gpu.js running the kernel functions as JavaScript. */
export type GpuJsMode = 'gpu' | 'cpu';

/** The part of a gpu.js kernel convc uses: called with its arguments, it returns its output. */
type GpuJsKernelRun = (...args: unknown[]) => unknown;

/** The part of gpu.js's GPU convc uses. */
export interface GpuJsGpu {
  /** The kernel class gpu.js chose: its `mode` is 'gpu' for every WebGL kind, else 'cpu', 'webasm', 'webgpu'. */
  readonly Kernel: { readonly mode: string; readonly name: string; readonly features?: { readonly maxTextureSize?: number } } | null;
  addFunction(source: string, settings?: Readonly<Record<string, unknown>>): unknown;
  createKernel(source: string, settings: Readonly<Record<string, unknown>>): GpuJsKernelRun;
  destroy(): unknown;
}

interface GpuJsModule {
  readonly GPU: new (settings: Readonly<Record<string, unknown>>) => GpuJsGpu;
}

const require = createRequire(import.meta.url);

/** gpu.js, or a user error saying how to install it. */
export function loadGpuJs(): GpuJsModule {
  try {
    return require('gpu.js') as GpuJsModule;
  } catch {
    throw userError('the gpujs backend needs the gpu.js package, which is not installed', undefined, ['install it with `npm install gpu.js` (an optional dependency of convc)']);
  }
}

/** Why gpu.js's GL mode is unavailable in this Node process, in words a user can act on. */
function glUnavailable(): string {
  if (!glLoads()) return "the 'gl' package (headless-gl) is not built; build it with `bash scripts/setup-gpujs.sh`";
  return process.env.DISPLAY ? `headless-gl could not open a GL context on display ${process.env.DISPLAY}` : 'there is no X display and no Xvfb to start one; install the Debian package xvfb';
}

/**
 * A GPU in `mode`, refusing to run in any other: in Node the GL mode is headless-gl's, and
 * gpu.js given 'gpu' would otherwise settle for WebAssembly or the CPU.
 */
export async function createGpuJs(mode: GpuJsMode, options: GpuJsRunOptions = {}): Promise<GpuJsGpu> {
  // Before gpu.js loads: it looks for gl once, when it is first imported.
  if (mode === 'gpu' && options.buildGl) buildGlIfMissing(options.buildGl);
  // Dawn's OpenGL backend and headless-gl cannot share a process (gl-process.ts).
  if (mode === 'gpu') claimProcessGl("gpu.js's GL mode (headless-gl)");
  const { GPU } = loadGpuJs();
  if (mode === 'gpu') await ensureDisplay();
  let gpu: GpuJsGpu;
  try {
    gpu = new GPU({ mode: mode === 'gpu' ? 'headlessgl' : 'cpu' });
  } catch (error) {
    if (mode === 'gpu' && error instanceof Error && /not supported/.test(error.message)) throw userError(`gpu.js cannot run in GL mode here: ${glUnavailable()}`, undefined, ['--gpujs-mode cpu runs the same kernels as JavaScript']);
    throw error;
  }
  checkGpuJsMode(gpu, mode);
  return gpu;
}

export interface GpuJsRunOptions {
  /** Builds gl (scripts/setup-gpujs.sh) where it is installed but not built, reporting here. */
  readonly buildGl?: (line: string) => void;
}

/** Throws unless gpu.js's chosen kernel kind is `mode`'s: gpu.js changes mode silently. */
export function checkGpuJsMode(gpu: GpuJsGpu, mode: GpuJsMode): void {
  const actual = gpu.Kernel?.mode;
  if (actual !== mode) {
    throw userError(`gpu.js was asked for its ${mode} mode but chose ${actual === undefined ? 'none' : `'${actual}' (${gpu.Kernel?.name ?? 'unknown kernel'})`}`, undefined, [mode === 'gpu' ? glUnavailable() : 'pass a GPU created with mode: "cpu"']);
  }
}

/** A model on gpu.js, as the generated runner makes it: run() takes the inputs in program order. */
export interface GpuJsModel {
  readonly mode: GpuJsMode;
  run(...inputs: Float32Array[]): Promise<Float32Array | Readonly<Record<string, Float32Array>>>;
  destroy(): void;
}

/** What convc uses of a loaded gpu.js runner (model.js). */
export interface GpuJsRunnerModule {
  readonly modelInfo: { readonly name: string; readonly steps: number; readonly kernels: readonly string[] };
  createModel(gpu: GpuJsGpu, weights: ArrayBuffer | ArrayBufferView, options?: { readonly mode?: GpuJsMode }): Promise<GpuJsModel>;
}

/** Imports a generated gpu.js runner's JavaScript (model.js). */
export async function importGpuJsRunner(javascript: string): Promise<GpuJsRunnerModule> {
  return (await importRunnerJavaScript(javascript)) as unknown as GpuJsRunnerModule;
}

/**
 * Runs a step of the generated runner, whose errors are prefixed with the model's name: a GPU in
 * another mode than asked for, or tensors larger than the device's textures, are the user's to
 * fix (exit 2); nothing else is expected of it.
 */
async function fromRunner<T>(program: GpuJsProgram, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith(`${program.model}: `)) throw error;
    if (/gpu.js was asked for its gpu mode/.test(error.message)) throw userError(`${error.message}: ${glUnavailable()}`, undefined, ['--gpujs-mode cpu runs the same kernels as JavaScript']);
    if (/MAX_TEXTURE_SIZE/.test(error.message)) throw userError(error.message);
    throw error;
  }
}

/**
 * Lowers `graph` for gpu.js and builds it on a new GPU in `mode` through the generated runner,
 * exactly the model.js `convc compile --target gpujs` writes.
 */
export async function createGpuJsModel(graph: Graph, weights: WeightMap, mode: GpuJsMode, options: GpuJsRunOptions = {}): Promise<{ readonly program: GpuJsProgram; readonly model: GpuJsModel; readonly gpu: GpuJsGpu }> {
  const program = lowerToGpuJs(graph);
  const runner = await importGpuJsRunner(generateGpuJsRunnerFiles(program).js);
  const gpu = await createGpuJs(mode, options);
  try {
    const model = await fromRunner(program, () => runner.createModel(gpu, packWeightValues(graph, program, weights), { mode }));
    return { program, model, gpu };
  } catch (error) {
    void gpu.destroy();
    throw error;
  }
}

/** Runs a model once on named inputs (the image `input`, and `mask` for FCMAE) to its named outputs. */
export async function executeGpuJsModel(graph: Graph, weights: WeightMap, inputs: Readonly<Record<string, HostTensor>>, mode: GpuJsMode, options: GpuJsRunOptions = {}): Promise<Readonly<Record<string, HostTensor>>> {
  const { program, model, gpu } = await createGpuJsModel(graph, weights, mode, options);
  try {
    const ordered = modelInputs(graph).map(({ name }) => {
      const tensor = inputs[name] as HostTensor | undefined;
      if (!tensor) throw new Error(`internal: no value for model input '${name}'`);
      return tensor.data;
    });
    const result = await fromRunner(program, () => model.run(...ordered));
    const byName: Readonly<Record<string, Float32Array>> = result instanceof Float32Array ? { [program.outputs[0].name]: result } : result;
    return Object.fromEntries(program.outputs.map((o) => [o.name, { shape: o.shape, data: byName[o.name] }]));
  } finally {
    model.destroy();
    void gpu.destroy();
  }
}
