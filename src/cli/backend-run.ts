// Running a loaded model on one of convc's backends, shared by `convc run` and `convc classify`:
// each backend fuses the model for its own target, and says where it ran.
import { chosenPasses, loadModel } from './model.js';
import { adapterOption, type Parsed } from './options.js';
import { progress, type CliIo } from './io.js';
import { scheduleForCommand } from '../tune/lookup.js';
import { targetOfDevice } from '../kernel/target.js';
import { executeGraph, type WeightMap } from '../backends/reference/executor.js';
import { acquireGpu } from '../backends/webgpu/device.js';
import { executeWebGpuModel } from '../backends/wgsl/execute.js';
import { executeCudaModel } from '../backends/cuda/execute.js';
import { cudaTarget } from '../backends/cuda/target.js';
import { executeGpuJsModel, type GpuJsMode } from '../backends/gpujs/execute.js';
import { gpujsTarget } from '../backends/gpujs/target.js';
import type { InputSize } from '../dsl/elaborate.js';
import type { StorageType } from '../kernel/ir.js';
import type { Graph, HostTensor, Node } from '../ir/types.js';
import { describeNode } from '../ir/print.js';
import { userError } from '../util/diagnostics.js';

export const backends = ['reference', 'webgpu', 'cuda', 'cuda-emulated', 'gpujs'] as const;
export type Backend = (typeof backends)[number];

export const gpujsModes: readonly GpuJsMode[] = ['gpu', 'cpu'];

/** `--backend NAME`, default reference. */
export function backendOption(values: Parsed['values']): Backend {
  const value = values.backend ?? 'reference';
  if (typeof value !== 'string' || !(backends as readonly string[]).includes(value)) throw userError(`unknown backend '${String(value)}'; backends: ${backends.join(', ')}`);
  return value as Backend;
}

/** `--gpujs-mode gpu|cpu`: only with the gpujs backend. */
export function gpujsModeOption(values: Parsed['values'], backend: Backend): GpuJsMode | undefined {
  const value = values['gpujs-mode'];
  if (value === undefined) return undefined;
  if (backend !== 'gpujs') throw userError(`--gpujs-mode is for the gpujs backend, not ${backend}`);
  if (typeof value !== 'string' || !(gpujsModes as readonly string[]).includes(value)) throw userError(`unknown --gpujs-mode '${String(value)}'; modes: ${gpujsModes.join(', ')}`);
  return value as GpuJsMode;
}

/** Refuses a --precision the backend cannot store. */
export function checkPrecision(precision: StorageType, backend: Backend): void {
  if (precision !== 'f32' && backend === 'reference') throw userError(`--precision ${precision} is for GPU backends; the reference backend computes in f64 and f32`);
  if (precision !== 'f32' && backend === 'gpujs') throw userError(`--precision ${precision}: gpu.js stores f32 only (its precision 'single')`);
}

export interface BackendRun {
  readonly backend: Backend;
  /** The .cnx file, its model and passes: each backend loads the model for its own target. */
  readonly file: string;
  readonly model: string | undefined;
  readonly passes: ReturnType<typeof chosenPasses>;
  readonly size: InputSize;
  readonly visiblePatches: number | undefined;
  /** The model as the reference backend runs it (loaded with `passes`, no target). */
  readonly graph: Graph;
  readonly weights: WeightMap;
  readonly inputs: Readonly<Record<string, HostTensor>>;
  readonly precision: StorageType;
  readonly gpujsMode: GpuJsMode | undefined;
  /** The command's options: --adapter, --verbose and --tuning / --no-tuning. */
  readonly values: Parsed['values'];
  readonly debugNonFinite: boolean;
  readonly io: CliIo;
}

export interface BackendResult {
  readonly outputs: Readonly<Record<string, HostTensor>>;
  /** The backend, and for webgpu its adapter, in words. */
  readonly where: string;
  /** With debugNonFinite: where the first non-finite value came from. */
  readonly origin: string | undefined;
}

export async function executeOnBackend(request: BackendRun): Promise<BackendResult> {
  const { backend, file, model, passes, visiblePatches, weights, inputs, precision, values, debugNonFinite, io } = request;
  const { batch, height, width } = request.size;
  if (backend === 'cuda' || backend === 'cuda-emulated') {
    if (debugNonFinite) throw userError(`--debug-nonfinite is for the reference and webgpu backends; rerun with one of them to find where a non-finite value arises`);
    if (values.tuning !== undefined) throw userError('--tuning files are for WebGPU adapters; the cuda backends use their default schedules');
    // The passes fuse for the CUDA target: its limits and cost model decide.
    const cudaGraph = loadModel(file, { model, size: { batch, height, width }, passes, target: cudaTarget(), visiblePatches }).graph;
    const where = backend === 'cuda' ? 'cuda' : 'cuda-emulated (the CPU, through the emulated driver)';
    return { outputs: await executeCudaModel(cudaGraph, weights, inputs, { driver: backend, precision }), where, origin: undefined };
  }
  if (backend === 'gpujs') {
    if (debugNonFinite) throw userError(`--debug-nonfinite is for the reference and webgpu backends; rerun with one of them to find where a non-finite value arises`);
    if (values.tuning !== undefined) throw userError('--tuning files are for WebGPU adapters; the gpujs backend uses its default schedules');
    const mode = request.gpujsMode ?? 'gpu';
    // The passes fuse for gpu.js: a thread writes its own element, so reductions stay apart.
    const gpujsGraph = loadModel(file, { model, size: { batch, height, width }, passes, target: gpujsTarget, visiblePatches }).graph;
    const where = mode === 'gpu' ? 'gpujs (WebGL, headless-gl)' : 'gpujs (the CPU, kernels as JavaScript)';
    const outputs = await executeGpuJsModel(gpujsGraph, weights, inputs, mode, { buildGl: (line) => io.stderr.write(`${line}\n`) });
    return { outputs, where, origin: undefined };
  }
  if (backend === 'webgpu') {
    const gpu = await acquireGpu({ adapter: adapterOption(values), verbose: values.verbose ? (line) => io.stderr.write(`${line}\n`) : undefined });
    try {
      const size = { height, width };
      // The passes fuse for this device: its limits and its cost model decide.
      const target = targetOfDevice(gpu.device, 'this device');
      const built = new Map<number, Graph>();
      const build = (n: number): Graph => {
        if (!built.has(n)) built.set(n, loadModel(file, { model, size: { batch: n, ...size }, passes, target, visiblePatches }).graph);
        return built.get(n)!;
      };
      const say = (line: string) => io.stderr.write(`${line}\n`);
      const schedule = scheduleForCommand(values, { adapter: gpu.adapterInfo, graphs: [build(batch)], target, precision, say });
      const result = await executeWebGpuModel(build, weights, inputs, gpu.device, { findNonFinite: debugNonFinite, precision, ...(schedule ? { schedule } : {}) });
      if (result.chunk < batch) io.stderr.write(`note: the batch of ${batch} was run in pieces of ${result.chunk} to fit the adapter's buffer limits\n`);
      const found = result.nonFinite;
      const origin = found ? `dispatch ${found.dispatch} (kernel ${found.kernel}, computing ${found.covers}) first wrote ${found.value} at element ${found.index}` : undefined;
      return { outputs: result.outputs, where: `webgpu (${gpu.adapterInfo})`, origin };
    } finally {
      gpu.destroy();
    }
  }
  const { graph } = request;
  const bar = progress(io, `running ${graph.name}`);
  let origin: string | undefined;
  const onValue = (node: Node, value: HostTensor) => {
    if (origin !== undefined) return;
    const at = value.data.findIndex((v) => !Number.isFinite(v));
    if (at >= 0) origin = `IR node ${describeNode(node)} first produced ${value.data[at]} at element ${at} (NCHW)`;
  };
  const outputs = executeGraph(graph, weights, inputs, { onNode: (done, total) => bar.update(done, total), ...(debugNonFinite ? { onValue } : {}) });
  bar.finish();
  return { outputs, where: backend, origin };
}
