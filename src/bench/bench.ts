// convc bench's measurement: fused and unfused convc and the peer runtimes, in one process on
// one adapter, with the same input and weights, timed in alternation so that drift (thermal,
// other load) falls on all of them alike.
import { performance } from 'node:perf_hooks';
import { peers as allPeers } from './peers.js';
import { summarize, type TimingSummary } from './stats.js';
import type { WeightMap } from '../backends/reference/executor.js';
import type { AcquiredGpu } from '../backends/webgpu/device.js';
import { bindingLimit } from '../backends/wgsl/execute.js';
import { importRunner } from '../backends/wgsl/load-runner.js';
import { lowerToWgsl, packWeights } from '../backends/wgsl/lower.js';
import { generateRunner } from '../backends/wgsl/runner.js';
import { exportOnnx } from '../export/onnx.js';
import { graphCost } from '../ir/cost.js';
import type { Graph, HostTensor } from '../ir/types.js';

export interface ConfigResult extends Partial<TimingSummary> {
  /** 2 x MACs / median time. */
  readonly gflops?: number;
  /** Kernel dispatches of one forward pass (convc only). */
  readonly dispatches?: number;
  /** Compiling kernels or building the session, and uploading weights: reported apart. */
  readonly setup_ms?: number;
  /** Largest |difference| to the fused output, relative to its largest |value|: a sanity check. */
  readonly max_rel_diff_vs_fused?: number;
  readonly error?: string;
}

export interface BenchResult {
  readonly adapter: string;
  readonly model: string;
  readonly batch: number;
  readonly size: readonly [number, number];
  readonly date: string;
  readonly macs: number;
  readonly runs: number;
  readonly fused: ConfigResult;
  readonly unfused: ConfigResult;
  readonly peers: Readonly<Record<string, ConfigResult>>;
  readonly ratios: { readonly fused_vs_unfused?: number; readonly fused_vs_ort_webgpu?: number };
}

export interface BenchInputs {
  readonly gpu: AcquiredGpu;
  readonly fused: Graph;
  readonly unfused: Graph;
  readonly weightsFor: (graph: Graph) => WeightMap;
  readonly input: HostTensor;
  readonly runs: number;
  readonly warmup: number;
  /** Names of the peers to run; [] for none. */
  readonly peers: readonly string[];
  readonly onProgress?: (done: number, total: number, label: string) => void;
}

interface Runnable {
  readonly name: string;
  readonly run: () => Promise<Float32Array>;
  readonly release: () => Promise<void> | void;
  readonly times: number[];
  output?: Float32Array;
}

async function convcRunnable(name: string, graph: Graph, inputs: BenchInputs): Promise<{ runnable: Runnable; setup_ms: number; dispatches: number }> {
  const program = lowerToWgsl(graph);
  const limit = bindingLimit(inputs.gpu.device);
  if (program.largestBufferBytes > limit) {
    throw new Error(`a ${program.largestBufferBytes}-byte buffer exceeds this adapter's binding limit (${limit} bytes); try a smaller --batch`);
  }
  const started = performance.now();
  const module = await importRunner(generateRunner(program));
  const model = await module.createModel(inputs.gpu.device, packWeights(graph, program, inputs.weightsFor(graph)));
  const setup_ms = performance.now() - started;
  return { runnable: { name, run: () => model.run(inputs.input.data), release: () => model.destroy(), times: [] }, setup_ms, dispatches: program.dispatches.length };
}

function relativeDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

export async function runBench(inputs: BenchInputs, adapter: string): Promise<BenchResult> {
  const batch = inputs.input.shape[0];
  const macs = graphCost(inputs.fused).macs;
  const results: Record<string, ConfigResult> = {};
  const runnables: Runnable[] = [];
  const extra = new Map<string, { setup_ms: number; dispatches?: number }>();

  for (const [name, graph] of [['fused', inputs.fused], ['unfused', inputs.unfused]] as const) {
    try {
      const { runnable, setup_ms, dispatches } = await convcRunnable(name, graph, inputs);
      runnables.push(runnable);
      extra.set(name, { setup_ms, dispatches });
    } catch (error) {
      results[name] = { error: (error as Error).message };
    }
  }
  let onnx: Uint8Array | undefined;
  for (const peer of allPeers.filter((p) => inputs.peers.includes(p.name))) {
    try {
      onnx ??= exportOnnx(inputs.unfused, inputs.weightsFor(inputs.unfused));
      const started = performance.now();
      const session = await peer.create(onnx, inputs.input);
      runnables.push({ name: peer.name, run: () => session.run(), release: () => session.release(), times: [] });
      extra.set(peer.name, { setup_ms: performance.now() - started });
    } catch (error) {
      results[peer.name] = { error: (error as Error).message };
    }
  }

  const total = runnables.length * (inputs.warmup + inputs.runs);
  let done = 0;
  const step = async (r: Runnable, timed: boolean) => {
    try {
      const started = performance.now();
      const output = await r.run();
      if (timed) r.times.push(performance.now() - started);
      r.output ??= output;
    } catch (error) {
      results[r.name] = { error: (error as Error).message };
    }
    inputs.onProgress?.(++done, total, r.name);
  };
  const alive = () => runnables.filter((r) => !results[r.name]?.error);
  for (let i = 0; i < inputs.warmup; i++) for (const r of alive()) await step(r, false);
  // Round robin: each round runs every configuration once, in the same order.
  for (let i = 0; i < inputs.runs; i++) for (const r of alive()) await step(r, true);

  const reference = runnables.find((r) => r.name === 'fused')?.output;
  for (const r of runnables) {
    if (!results[r.name]?.error && r.times.length > 0) {
      const summary = summarize(r.times, batch);
      const { setup_ms, dispatches } = extra.get(r.name)!;
      results[r.name] = {
        ...summary,
        gflops: (2 * macs) / (summary.median_ms / 1000) / 1e9,
        ...(dispatches !== undefined ? { dispatches } : {}),
        setup_ms,
        ...(reference && r.output ? { max_rel_diff_vs_fused: relativeDifference(r.output, reference) } : {}),
      };
    }
    await r.release();
  }
  const ratio = (a?: ConfigResult, b?: ConfigResult) => (a?.median_ms && b?.median_ms ? b.median_ms / a.median_ms : undefined);
  const peerResults = Object.fromEntries(inputs.peers.map((name) => [name, results[name] ?? { error: 'unknown peer' }]));
  return {
    adapter,
    model: inputs.fused.name,
    batch,
    size: [inputs.input.shape[2], inputs.input.shape[3]],
    date: new Date().toISOString(),
    macs,
    runs: inputs.runs,
    fused: results.fused,
    unfused: results.unfused,
    peers: peerResults,
    ratios: { fused_vs_unfused: ratio(results.fused, results.unfused), fused_vs_ort_webgpu: ratio(results.fused, results['ort-webgpu']) },
  };
}
