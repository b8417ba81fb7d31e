// convc bench's measurement: fused and unfused convc and the peer runtimes, in one process on
// one adapter, with the same input and weights. Every round runs each configuration once, in an
// order shuffled per round from a recorded seed, so that drift (thermal, other load, caches warm
// from the previous configuration) falls on all of them alike. Every output is checked against
// the reference executor: a fast configuration that computes the wrong thing is marked wrong and
// never reported as a speed-up. Where a CUDA driver answers, a cuda row runs the same model's
// CUDA kernels in the same rounds (cuda-config.ts), and where gpu.js's GL mode is available a
// gpujs row its gpu.js kernels (gpujs-config.ts). With `profile`, every dispatch of both convc
// programs is then timed on the GPU with timestamp queries (profile.ts), after and apart from the
// timed runs.
import { performance } from 'node:perf_hooks';
import { profileBench, profilePasses, type BenchProfile } from './profile.js';
import { peers as allPeers, type ConfigAdapter } from './peers.js';
import { cudaRow, type CudaRowRequest } from './cuda-config.js';
import { gpujsRow, type GpuJsRowRequest } from './gpujs-config.js';
import type { CudaDriverKind } from '../backends/cuda/execute.js';
import { shuffled, summarize, type TimingSummary } from './stats.js';
import { executeReference, type WeightMap } from '../backends/reference/executor.js';
import type { AcquiredGpu } from '../backends/webgpu/device.js';
import { importRunner } from '../backends/wgsl/load-runner.js';
import { lowerToWgsl, packWeights, type LowerOptions } from '../backends/wgsl/lower.js';
import type { StorageType } from '../kernel/ir.js';
import { targetOfDevice } from '../kernel/target.js';
import { generateRunner } from '../backends/wgsl/runner.js';
import { exportOnnx } from '../export/onnx.js';
import { graphCost } from '../ir/cost.js';
import type { Graph, HostTensor } from '../ir/types.js';
import { seededRandom } from '../weights/random.js';
import { scaledDifference } from '../util/scaled-difference.js';

/**
 * Largest |output - reference| / largest |reference| a configuration may show. convc's kernels
 * and ONNX Runtime's compute in f32 while the reference executor accumulates in f64: sums of up
 * to a few thousand f32 products round off like sqrt(terms) x 6e-8 of their magnitude and erf
 * approximations add ~1.5e-7, so correct kernels stay below ~1e-5 of the output's scale (the
 * WebGPU backend tests see the same). 2e-5 leaves a 2x margin and still catches a wrong epsilon,
 * a mis-ordered channel or a stale buffer. ONNX Runtime's providers are held to the same bound:
 * they are f32 too, and a peer that computes something else must not count as faster either.
 */
export const agreementTolerance = 2e-5;

/**
 * The same bound for f16 storage (--precision f16). Every stored activation and weight is
 * rounded to 11 significant bits (half an ulp: 2^-12 ~ 2.4e-4 of its value); those roundings
 * add up over the network's ~20 stored stages like a random walk, to about 1e-3 of the output's
 * scale (8e-4 measured on V2-atto). 1e-2, the bound the project sets for f16 against f32, keeps
 * a 10x margin and still catches a wrong layout or a misread buffer, which err by O(1).
 */
export const f16AgreementTolerance = 1e-2;

export interface ConfigResult extends Partial<TimingSummary> {
  /** 2 x MACs / median time. */
  readonly gflops?: number;
  /** Kernel dispatches of one forward pass (convc only). */
  readonly dispatches?: number;
  /** Compiling kernels or building the session, and uploading weights: reported apart. */
  readonly setup_ms?: number;
  /** The adapter it ran on, and whether the runtime was given or reported it (see ConfigAdapter). */
  readonly adapter?: string;
  readonly adapter_verified?: boolean;
  /** The input shape a peer's session declares (fixed: the benchmarked batch and size). */
  readonly input_shape?: readonly (number | string)[];
  /** Largest |output - reference| over the largest |reference|, worst over all runs. */
  readonly max_scaled_diff_vs_reference?: number;
  /** That difference is over agreementTolerance: the times are of a wrong computation. */
  readonly wrong?: boolean;
  readonly error?: string;
  /**
   * Why a configuration was not attempted (the cuda row under --cuda auto where no CUDA driver
   * answers, or --cuda off): no row is shown, and it is not a failure.
   */
  readonly not_run?: string;
}

/** A throughput ratio, or 'wrong' where either side's output disagrees with the reference. */
export type Ratio = number | 'wrong';

export interface BenchResult {
  readonly adapter: string;
  /** What --adapter asked for. */
  readonly adapter_choice: string;
  readonly model: string;
  readonly batch: number;
  readonly size: readonly [number, number];
  readonly date: string;
  readonly macs: number;
  readonly runs: number;
  readonly warmup: number;
  /** Seed of the per-round shuffle of the run order; --order-seed repeats it. */
  readonly order_seed: number;
  /** Bound on max_scaled_diff_vs_reference (agreementTolerance). */
  readonly tolerance: number;
  /** The reference executor's one CPU pass, before and apart from the timed runs. */
  readonly reference_ms: number;
  readonly fused: ConfigResult;
  readonly unfused: ConfigResult;
  /** With --precision f16: the fused pipeline storing activations and weights as f16. */
  readonly fused_f16?: ConfigResult;
  /** Bound on fused_f16's max_scaled_diff_vs_reference (f16AgreementTolerance). */
  readonly tolerance_f16?: number;
  readonly peers: Readonly<Record<string, ConfigResult>>;
  /**
   * convc's fused model as CUDA kernels through its generated runner, on the CUDA device its
   * `adapter` names (not the WebGPU adapter); `not_run` where it was not attempted.
   */
  readonly cuda?: ConfigResult;
  /**
   * convc's fused model as gpu.js kernels through its generated runner, in gpu.js's GL mode on
   * the GL device its `adapter` names (not the WebGPU adapter); `not_run` where it was not attempted.
   */
  readonly gpujs?: ConfigResult;
  readonly ratios: {
    readonly fused_vs_unfused?: Ratio;
    readonly fused_vs_ort_webgpu?: Ratio;
    readonly fused_f16_vs_fused?: Ratio;
    /** How many times faster the cuda row is than convc fused on WebGPU (fused median / cuda median). */
    readonly cuda_vs_fused?: Ratio;
    /** How many times faster the gpujs row is than convc fused on WebGPU (fused median / gpujs median). */
    readonly gpujs_vs_fused?: Ratio;
  };
  /** With --profile: GPU time per kernel from timestamp queries, or why there is none. */
  readonly profile?: BenchProfile | { readonly error: string };
}

export interface BenchInputs {
  readonly gpu: AcquiredGpu;
  /** What --adapter asked for (default 'auto'). */
  readonly adapterChoice?: string;
  readonly fused: Graph;
  readonly unfused: Graph;
  readonly weightsFor: (graph: Graph) => WeightMap;
  readonly input: HostTensor;
  readonly runs: number;
  readonly warmup: number;
  readonly orderSeed: number;
  /** Names of the peers to run; [] for none. */
  readonly peers: readonly string[];
  /** Also run the fused pipeline with f16 storage ('fused-f16'; the device needs shader-f16). */
  readonly f16?: boolean;
  /** Schedules for nodes, e.g. from a tuning file (undefined: the default heuristic's). */
  readonly schedule?: LowerOptions['schedule'];
  readonly onProgress?: (done: number, total: number, label: string) => void;
  /**
   * After the timed runs, time every dispatch of both convc pipelines with timestamp queries
   * (the device must have 'timestamp-query'). Without it no timestamp is ever written.
   */
  readonly profile?: boolean;
  /**
   * The cuda row: whether to attempt it and the fused graph built for the CUDA target (its
   * limits and cost model, as `convc run --backend cuda` fuses). Absent: no row, and no `cuda`
   * in the result.
   */
  readonly cuda?: CudaRowRequest;
  /**
   * Test-only: the cuda row's driver; 'cuda-emulated' runs it on convc's emulated driver on the
   * CPU, so the row is tested without a GPU. No CLI flag reaches it. Default 'cuda' (NVIDIA's).
   */
  readonly cudaDriver?: CudaDriverKind;
  /**
   * The gpujs row: whether to attempt it and the fused graph built for the gpu.js target.
   * Absent: no row, and no `gpujs` in the result.
   */
  readonly gpujs?: GpuJsRowRequest;
  /**
   * Test-only: rewrites a configuration's output ('fused', 'unfused', 'cuda', 'gpujs' or a peer's name)
   * before it is checked, to prove that a wrong configuration is caught. No CLI flag reaches it.
   */
  readonly tamperOutput?: (config: string, output: Float32Array) => Float32Array;
}

interface Runnable {
  readonly name: string;
  readonly run: () => Promise<Float32Array>;
  readonly release: () => Promise<void> | void;
  readonly times: number[];
  worstDiff: number;
}

async function convcRunnable(name: string, graph: Graph, inputs: BenchInputs, precision: StorageType): Promise<{ runnable: Runnable; setup_ms: number; dispatches: number }> {
  // Kernels fitted to the adapter being measured, as `convc run` fits them. Lowering refuses a
  // tensor larger than the adapter can bind, naming it.
  const schedule = inputs.schedule;
  const program = lowerToWgsl(graph, { target: targetOfDevice(inputs.gpu.device, 'this device'), precision, ...(schedule ? { schedule } : {}) });
  const started = performance.now();
  const module = await importRunner(generateRunner(program));
  const model = await module.createModel(inputs.gpu.device, packWeights(graph, program, inputs.weightsFor(graph)));
  const setup_ms = performance.now() - started;
  return { runnable: { name, run: () => model.run(inputs.input.data), release: () => model.destroy(), times: [], worstDiff: 0 }, setup_ms, dispatches: program.dispatches.length };
}

export async function runBench(inputs: BenchInputs, adapter: string): Promise<BenchResult> {
  const batch = inputs.input.shape[0];
  const macs = graphCost(inputs.fused).macs;
  const results: Record<string, ConfigResult> = {};
  const runnables: Runnable[] = [];
  const extra = new Map<string, { setup_ms: number; dispatches?: number; adapter: ConfigAdapter; input_shape?: readonly (number | string)[] }>();
  const convcAdapter: ConfigAdapter = { description: adapter, verified: true };

  // The ground truth, from the plain unfused graph: every configuration's output is held to it.
  const referenceStarted = performance.now();
  const reference = executeReference(inputs.unfused, inputs.weightsFor(inputs.unfused), inputs.input).data;
  const reference_ms = performance.now() - referenceStarted;

  const convcConfigs = [['fused', inputs.fused, 'f32'], ['unfused', inputs.unfused, 'f32'], ...(inputs.f16 ? [['fused-f16', inputs.fused, 'f16'] as const] : [])] as const;
  for (const [name, graph, precision] of convcConfigs) {
    try {
      const { runnable, setup_ms, dispatches } = await convcRunnable(name, graph, inputs, precision);
      runnables.push(runnable);
      extra.set(name, { setup_ms, dispatches, adapter: convcAdapter });
    } catch (error) {
      results[name] = { error: (error as Error).message };
    }
  }
  const cuda = inputs.cuda && (await cudaRow(inputs.cuda, inputs.weightsFor, inputs.input.data, inputs.cudaDriver ?? 'cuda'));
  if (cuda && 'outcome' in cuda) results.cuda = cuda.outcome;
  else if (cuda) {
    runnables.push({ name: 'cuda', run: cuda.run, release: cuda.release, times: [], worstDiff: 0 });
    extra.set('cuda', { setup_ms: cuda.setup_ms, dispatches: cuda.dispatches, adapter: { description: cuda.device, verified: true } });
  }
  const gpujs = inputs.gpujs && (await gpujsRow(inputs.gpujs, inputs.weightsFor, inputs.input.data));
  if (gpujs && 'outcome' in gpujs) results.gpujs = gpujs.outcome;
  else if (gpujs) {
    runnables.push({ name: 'gpujs', run: gpujs.run, release: gpujs.release, times: [], worstDiff: 0 });
    extra.set('gpujs', { setup_ms: gpujs.setup_ms, dispatches: gpujs.dispatches, adapter: { description: gpujs.device, verified: true } });
  }
  let onnx: Uint8Array | undefined;
  for (const peer of allPeers.filter((p) => inputs.peers.includes(p.name))) {
    try {
      // Fixed batch and size, as convc's kernels are: a dynamic batch axis would leave ORT
      // shape-generic kernels and shape inference at run time that convc does not pay.
      onnx ??= exportOnnx(inputs.unfused, inputs.weightsFor(inputs.unfused), { batch: 'fixed' });
      const started = performance.now();
      const session = await peer.create(onnx, inputs.input, { info: adapter });
      runnables.push({ name: peer.name, run: () => session.run(), release: () => session.release(), times: [], worstDiff: 0 });
      extra.set(peer.name, { setup_ms: performance.now() - started, adapter: session.adapter, input_shape: session.inputShape });
    } catch (error) {
      results[peer.name] = { error: (error as Error).message };
    }
  }

  const total = runnables.length * (inputs.warmup + inputs.runs) + (inputs.profile ? 2 * profilePasses(inputs.runs, inputs.warmup) : 0);
  let done = 0;
  const step = async (r: Runnable, timed: boolean) => {
    try {
      const started = performance.now();
      let output = await r.run();
      if (timed) r.times.push(performance.now() - started);
      if (inputs.tamperOutput) output = inputs.tamperOutput(r.name, output);
      // Every run is checked, warm-up included: a stale buffer can make only a later run wrong.
      r.worstDiff = Math.max(r.worstDiff, scaledDifference(output, reference));
    } catch (error) {
      results[r.name] = { error: (error as Error).message };
    }
    inputs.onProgress?.(++done, total, r.name);
  };
  const alive = () => runnables.filter((r) => !results[r.name]?.error);
  const random = seededRandom(inputs.orderSeed);
  for (let i = 0; i < inputs.warmup; i++) for (const r of shuffled(alive(), random)) await step(r, false);
  for (let i = 0; i < inputs.runs; i++) for (const r of shuffled(alive(), random)) await step(r, true);

  for (const r of runnables) {
    if (!results[r.name]?.error && r.times.length > 0) {
      const summary = summarize(r.times, batch);
      const { setup_ms, dispatches, adapter: where, input_shape } = extra.get(r.name)!;
      results[r.name] = {
        ...summary,
        gflops: (2 * macs) / (summary.median_ms / 1000) / 1e9,
        ...(dispatches !== undefined ? { dispatches } : {}),
        setup_ms,
        adapter: where.description,
        adapter_verified: where.verified,
        ...(input_shape ? { input_shape } : {}),
        max_scaled_diff_vs_reference: r.worstDiff,
        wrong: !(r.worstDiff <= (r.name === 'fused-f16' ? f16AgreementTolerance : agreementTolerance)),
      };
    }
    await r.release();
  }
  let profile: BenchResult['profile'];
  if (inputs.profile) {
    try {
      const onPass = () => inputs.onProgress?.(++done, total, 'profile');
      const { device } = inputs.gpu;
      profile = await profileBench({ device, fused: inputs.fused, unfused: inputs.unfused, weightsFor: inputs.weightsFor, input: inputs.input.data, runs: inputs.runs, warmup: inputs.warmup, onPass, ...(inputs.schedule ? { schedule: inputs.schedule } : {}) });
    } catch (error) {
      profile = { error: (error as Error).message };
    }
  }
  const ratio = (a?: ConfigResult, b?: ConfigResult): Ratio | undefined => {
    if (!a?.median_ms || !b?.median_ms) return undefined;
    return a.wrong || b.wrong ? 'wrong' : b.median_ms / a.median_ms;
  };
  const peerResults = Object.fromEntries(inputs.peers.map((name) => [name, results[name] ?? { error: 'unknown peer' }]));
  return {
    adapter,
    adapter_choice: inputs.adapterChoice ?? 'auto',
    model: inputs.fused.name,
    batch,
    size: [inputs.input.shape[2], inputs.input.shape[3]],
    date: new Date().toISOString(),
    macs,
    runs: inputs.runs,
    warmup: inputs.warmup,
    order_seed: inputs.orderSeed,
    tolerance: agreementTolerance,
    reference_ms,
    fused: results.fused,
    unfused: results.unfused,
    ...(inputs.f16 ? { fused_f16: results['fused-f16'], tolerance_f16: f16AgreementTolerance } : {}),
    peers: peerResults,
    ...(cuda ? { cuda: results.cuda } : {}),
    ...(gpujs ? { gpujs: results.gpujs } : {}),
    ratios: {
      fused_vs_unfused: ratio(results.fused, results.unfused),
      fused_vs_ort_webgpu: ratio(results.fused, results['ort-webgpu']),
      ...(inputs.f16 ? { fused_f16_vs_fused: ratio(results['fused-f16'], results.fused) } : {}),
      ...(results.cuda?.median_ms ? { cuda_vs_fused: ratio(results.cuda, results.fused) } : {}),
      ...(results.gpujs?.median_ms ? { gpujs_vs_fused: ratio(results.gpujs, results.fused) } : {}),
    },
    ...(profile ? { profile } : {}),
  };
}

/** The configurations whose output disagreed with the reference executor's. */
export function wrongConfigs(result: BenchResult): string[] {
  const all: [string, ConfigResult | undefined][] = [['convc fused', result.fused], ['convc unfused', result.unfused], ['convc fused f16', result.fused_f16], ['convc cuda', result.cuda], ['convc gpujs', result.gpujs], ...Object.entries(result.peers)];
  return all.filter(([, r]) => r?.wrong).map(([name]) => name);
}
