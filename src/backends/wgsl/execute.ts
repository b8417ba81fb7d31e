// Runs a graph on WebGPU through its generated runner, exactly as a user's app would. A batch
// whose tensors exceed what the adapter can bind is split into smaller batches up front; if
// even one sample does not fit, or an output spans the whole batch (FCMAE's loss), the run is
// refused before anything is dispatched.
import { importRunnerJavaScript, type NamedOutputs, type NonFiniteReport, type RunnerModel } from './load-runner.js';
import { bufferBytes, lowerToWgsl, packWeights, type LowerOptions } from './lower.js';
import type { StorageType } from '../../kernel/ir.js';
import type { WgslProgram } from './program.js';
import { BindingSizeError } from '../../kernel/lower/index.js';
import { targetOfDevice } from '../../kernel/target.js';
import { generateRunnerFiles } from './runner.js';
import type { WeightMap } from '../reference/executor.js';
import { formatShape, numel, type Graph, type HostTensor } from '../../ir/types.js';
import { userError } from '../../util/diagnostics.js';
import { singleInputOutput } from '../../ir/graph-io.js';

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

/** A run of a model of named inputs and outputs (executeWebGpuModel). */
export interface WebGpuModelRun {
  readonly outputs: Readonly<Record<string, HostTensor>>;
  readonly chunk: number;
  readonly dispatches: number;
  readonly nonFinite?: NonFiniteReport | null;
}

/**
 * Runs a model on named inputs (every input of the graph: `input`, and `mask` for FCMAE, each
 * with the batch first) to its named outputs.
 * @param build the model's graph for a batch size (the input's height and width fixed), so
 *   that an oversized batch can be recompiled in smaller pieces. A model with an output over
 *   the whole batch (FCMAE's loss) cannot be split so, and is refused when it does not fit.
 */
export async function executeWebGpuModel(
  build: (batch: number) => Graph,
  weights: WeightMap,
  inputs: Readonly<Record<string, HostTensor>>,
  device: GPUDevice,
  options: ExecuteWebGpuOptions = {},
): Promise<WebGpuModelRun> {
  const image = inputs.input as HostTensor | undefined;
  if (!image) throw new Error('internal: executeWebGpuModel needs the image input');
  const batch = image.shape[0];
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
    const overBatch = whole.outputs.find((o) => o.shape[0] !== batch);
    if (overBatch) {
      throw userError(`${graph.name} at batch ${batch} needs more memory than this adapter can bind in one buffer (${limit} bytes), and its output '${overBatch.name}' spans the whole batch, so it cannot run in pieces; use a smaller batch`);
    }
    // Weights do not grow with the batch; activations do, so only they decide the split.
    const activationBytes = (p: WgslProgram) => Math.max(...p.buffers.filter((b) => b.role !== 'weight').map(bufferBytes));
    const single = batch === 1 ? whole : lower(build(1), sizing);
    if (activationBytes(single) > limit) {
      throw userError(
        `${graph.name} at input ${formatShape(image.shape.slice(1))} needs a ${activationBytes(single)}-byte buffer even for one sample, ` +
          `more than this adapter can bind (${limit} bytes); use a smaller input size`,
      );
    }
    chunk = Math.max(1, Math.floor(limit / activationBytes(single)));
    while (chunk > 1 && activationBytes(lower(build(chunk), sizing)) > limit) chunk--;
    graph = build(chunk);
    program = lower(graph);
  }
  for (const input of program.inputs) {
    const given = inputs[input.name] as HostTensor | undefined;
    if (!given || given.data.length !== (numel(input.shape) / input.shape[0]) * batch) {
      throw new Error(`internal: '${graph.name}' takes ${input.name} ${formatShape([batch, ...input.shape.slice(1)])}, given ${given ? formatShape(given.shape) : 'none'}`);
    }
  }
  const pieces = new Map(program.outputs.map((o) => [o.name, [] as Float32Array[]]));
  let nonFinite: NonFiniteReport | null | undefined;
  const runners = new Map<number, RunnerModel<NamedOutputs>>();
  const loadModel = async (size: number) => {
    const g = size === chunk ? graph : build(size);
    const p = size === chunk ? program : lower(g);
    const module = await importRunnerJavaScript<Float32Array | NamedOutputs>(generateRunnerFiles(p).js);
    const model = await module.createModel(device, packWeights(g, p, weights));
    // One output comes back as it is, several by name: here always by name.
    const name = p.outputs[0].name;
    const named: RunnerModel<NamedOutputs> = {
      run: async (...data) => {
        const result = await model.run(...data);
        return result instanceof Float32Array ? { [name]: result } : result;
      },
      findNonFinite: (...data) => model.findNonFinite(...data),
      destroy: () => model.destroy(),
    };
    return named;
  };
  try {
    for (let start = 0; start < batch; start += chunk) {
      const size = Math.min(chunk, batch - start);
      let model = runners.get(size);
      if (!model) {
        model = await loadModel(size);
        runners.set(size, model);
      }
      const piece = program.inputs.map((input) => {
        const perSample = numel(input.shape.slice(1));
        return inputs[input.name].data.subarray(start * perSample, (start + size) * perSample);
      });
      const outputs = await model.run(...piece);
      for (const [name, list] of pieces) list.push(outputs[name]);
      if (options.findNonFinite && nonFinite === undefined && !Object.values(outputs).every((o) => o.every(Number.isFinite))) nonFinite = await model.findNonFinite(...piece);
    }
  } finally {
    for (const model of runners.values()) model.destroy();
  }
  const outputs = Object.fromEntries(
    program.outputs.map((o) => {
      const parts = pieces.get(o.name)!;
      const data = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
      parts.reduce((at, p) => (data.set(p, at), at + p.length), 0);
      // Per-sample outputs were computed in pieces of `chunk` samples; whole-batch ones never are.
      return [o.name, { shape: o.shape[0] === chunk ? [batch, ...o.shape.slice(1)] : o.shape, data }];
    }),
  );
  return {
    outputs,
    chunk,
    dispatches: program.dispatches.length,
    ...(options.findNonFinite ? { nonFinite: nonFinite ?? null } : {}),
  };
}

/**
 * A model of one image input and one output on WebGPU: its output for `input`, the batch split
 * where it does not fit the adapter (see executeWebGpuModel).
 */
export async function executeWebGpu(
  build: (batch: number) => Graph,
  weights: WeightMap,
  input: HostTensor,
  device: GPUDevice,
  options: ExecuteWebGpuOptions = {},
): Promise<WebGpuRun> {
  const graph = build(input.shape[0]);
  const { output } = singleInputOutput(graph, 'the WebGPU backend');
  const name = graph.outputs.find((o) => o.id === output)!.name;
  const run = await executeWebGpuModel((batch) => (batch === input.shape[0] ? graph : build(batch)), weights, { input }, device, options);
  return {
    output: run.outputs[name],
    chunk: run.chunk,
    dispatches: run.dispatches,
    ...(run.nonFinite !== undefined ? { nonFinite: run.nonFinite } : {}),
  };
}
