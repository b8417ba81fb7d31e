// Runs a graph on WebGPU through its generated runner, exactly as a user's app would. A batch
// whose tensors exceed what the adapter can bind is split into smaller batches up front; if
// even one sample does not fit, the run is refused before anything is dispatched.
import { importRunnerJavaScript, type NonFiniteReport } from './load-runner.js';
import { bufferBytes, lowerToWgsl, packWeights, type LowerOptions } from './lower.js';
import type { StorageType } from '../../kernel/ir.js';
import type { WgslProgram } from './program.js';
import { BindingSizeError } from '../../kernel/lower/index.js';
import { targetOfDevice } from '../../kernel/target.js';
import { generateRunnerFiles } from './runner.js';
import type { WeightMap } from '../reference/executor.js';
import { formatShape, numel, type Graph, type HostTensor } from '../../ir/types.js';
import { userError } from '../../util/diagnostics.js';

export interface WebGpuRun {
  readonly output: HostTensor;
  /** Samples per dispatch of the runner (the whole batch unless it had to be split). */
  readonly chunk: number;
  readonly dispatches: number;
  /** With `findNonFinite`, where a non-finite output came from (null when it is all finite). */
  readonly nonFinite?: NonFiniteReport | null;
}

export interface ExecuteWebGpuOptions {
  /** When the output holds a NaN or an infinity, replay that piece dispatch by dispatch to find its origin. */
  readonly findNonFinite?: boolean;
  /** Schedules for nodes (undefined: the default heuristic's). */
  readonly schedule?: LowerOptions['schedule'];
  /** How activations and weights are stored (f16 needs the device's shader-f16). */
  readonly precision?: StorageType;
}

/** How many bytes one storage binding may hold on this device. */
export function bindingLimit(device: GPUDevice): number {
  return Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
}

/**
 * @param build the model's graph for a batch size (the input's height and width fixed), so
 *   that an oversized batch can be recompiled in smaller pieces.
 */
export async function executeWebGpu(
  build: (batch: number) => Graph,
  weights: WeightMap,
  input: HostTensor,
  device: GPUDevice,
  options: ExecuteWebGpuOptions = {},
): Promise<WebGpuRun> {
  const batch = input.shape[0];
  const limit = bindingLimit(device);
  // Kernels are fitted to this device's limits, not only WebGPU's defaults.
  const target = targetOfDevice(device, 'this device');
  const precision = options.precision ?? 'f32';
  if (precision === 'f16' && !target.f16) throw userError(`--precision f16 needs the shader-f16 feature, which this adapter does not have; use --precision f32`);
  const lower = (g: Graph, t = target) => lowerToWgsl(g, { target: t, precision, ...(options.schedule ? { schedule: options.schedule } : {}) });
  let graph = build(batch);
  let chunk = batch;
  let program: WgslProgram;
  try {
    program = lower(graph);
  } catch (error) {
    if (!(error instanceof BindingSizeError)) throw error;
    // Lowering refuses tensors the device cannot bind, so the split is sized on lowerings
    // without that limit; the runner's own lowering keeps it.
    const sizing = { ...target, maxStorageBufferBindingSize: Number.POSITIVE_INFINITY };
    const whole = lower(graph, sizing);
    const oversizedWeight = whole.buffers.find((b) => b.role === 'weight' && bufferBytes(b) > limit);
    if (oversizedWeight) {
      throw userError(`${graph.name}: weight '${oversizedWeight.weight}' needs ${bufferBytes(oversizedWeight)} bytes, more than this adapter can bind (${limit} bytes)`);
    }
    // Weights do not grow with the batch; activations do, so only they decide the split.
    const activationBytes = (p: WgslProgram) => Math.max(...p.buffers.filter((b) => b.role !== 'weight').map(bufferBytes));
    const single = batch === 1 ? whole : lower(build(1), sizing);
    if (activationBytes(single) > limit) {
      throw userError(
        `${graph.name} at input ${formatShape(input.shape.slice(1))} needs a ${activationBytes(single)}-byte buffer even for one sample, ` +
          `more than this adapter can bind (${limit} bytes); use a smaller input size`,
      );
    }
    chunk = Math.max(1, Math.floor(limit / activationBytes(single)));
    while (chunk > 1 && activationBytes(lower(build(chunk), sizing)) > limit) chunk--;
    graph = build(chunk);
    program = lower(graph);
  }
  const perSample = numel(input.shape.slice(1));
  const outputs: Float32Array[] = [];
  const outputPerSample = numel(program.outputShape.slice(1));
  let nonFinite: NonFiniteReport | null | undefined;
  const runners = new Map<number, Awaited<ReturnType<typeof loadModel>>>();
  const loadModel = async (size: number) => {
    const g = size === chunk ? graph : build(size);
    const p = size === chunk ? program : lower(g);
    const module = await importRunnerJavaScript(generateRunnerFiles(p).js);
    return module.createModel(device, packWeights(g, p, weights));
  };
  try {
    for (let start = 0; start < batch; start += chunk) {
      const size = Math.min(chunk, batch - start);
      let model = runners.get(size);
      if (!model) {
        model = await loadModel(size);
        runners.set(size, model);
      }
      const piece = input.data.subarray(start * perSample, (start + size) * perSample);
      const output = await model.run(piece);
      outputs.push(output);
      if (options.findNonFinite && nonFinite === undefined && !output.every(Number.isFinite)) nonFinite = await model.findNonFinite(piece);
    }
  } finally {
    for (const model of runners.values()) model.destroy();
  }
  const data = new Float32Array(batch * outputPerSample);
  let offset = 0;
  for (const part of outputs) {
    data.set(part, offset);
    offset += part.length;
  }
  return {
    output: { shape: [batch, ...program.outputShape.slice(1)], data },
    chunk,
    dispatches: program.dispatches.length,
    ...(options.findNonFinite ? { nonFinite: nonFinite ?? null } : {}),
  };
}
