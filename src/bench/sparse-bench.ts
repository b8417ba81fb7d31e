// convc bench for a model with a sparse region (FCMAE): the forward pass computed on the
// visible patches only (sparse) against the same model computed everywhere and masked (dense),
// and apart, their encoders (the sparse region alone, cut out with subgraph()). Interleaved
// rounds in a shuffled order from a recorded seed, as the classifier bench runs them, and every
// output checked against the reference executor's dense-masked pass: a wrong sparse pass is
// never reported as a speed-up.
import { performance } from 'node:perf_hooks';
import { agreementTolerance, type ConfigResult, type Ratio } from './bench.js';
import { median, shuffled, summarize } from './stats.js';
import { timeDispatches } from './timestamps.js';
import type { WgslProgram } from '../backends/wgsl/program.js';
import { executeGraph, type WeightMap } from '../backends/reference/executor.js';
import type { AcquiredGpu } from '../backends/webgpu/device.js';
import { importRunner } from '../backends/wgsl/load-runner.js';
import { lowerToWgsl, packWeights, type LowerOptions, type PackedWeights } from '../backends/wgsl/lower.js';
import { generateRunner } from '../backends/wgsl/runner.js';
import { targetOfDevice } from '../kernel/target.js';
import { graphCost } from '../ir/cost.js';
import type { Graph, HostTensor } from '../ir/types.js';
import { seededRandom } from '../weights/random.js';
import { scaledDifference } from '../util/scaled-difference.js';

/** The four configurations, by the names the JSON uses. */
export const sparseConfigs = ['sparse', 'dense', 'encoder_sparse', 'encoder_dense'] as const;
export type SparseConfig = (typeof sparseConfigs)[number];

export interface SparseBenchInputs {
  readonly gpu: AcquiredGpu;
  /** Each configuration's graph (fused; encoders cut out of the whole model). */
  readonly graphs: Readonly<Record<SparseConfig, Graph>>;
  /** The ground truth: the whole model and its encoder, unfused and dense-masked. */
  readonly reference: { readonly model: Graph; readonly encoder: Graph };
  readonly weightsFor: (graph: Graph) => WeightMap;
  readonly input: HostTensor;
  /** The mask as the graphs take it ([N, rows, cols]). */
  readonly mask: HostTensor;
  readonly runs: number;
  readonly warmup: number;
  readonly orderSeed: number;
  readonly schedule?: LowerOptions['schedule'];
  readonly onProgress?: (done: number, total: number, label: string) => void;
  /**
   * After the timed runs, time every dispatch of each configuration with timestamp queries
   * (the device must have 'timestamp-query'): GPU time, free of the host's share and its noise.
   */
  readonly profile?: boolean;
}

/** With `profile`: the median over passes of the summed GPU time of a configuration's dispatches. */
export interface GpuTime {
  readonly gpu_median_ms: number;
}

export interface SparseBenchResult {
  readonly adapter: string;
  readonly model: string;
  readonly batch: number;
  readonly size: readonly [number, number];
  readonly date: string;
  readonly runs: number;
  readonly warmup: number;
  readonly order_seed: number;
  readonly tolerance: number;
  /** Patches the mask masks, of all the batch's patches. */
  readonly masked_patches: number;
  readonly patches: number;
  readonly sparse: ConfigResult;
  readonly dense: ConfigResult;
  readonly encoder_sparse: ConfigResult;
  readonly encoder_dense: ConfigResult;
  /** Time of the sparse configuration over the dense one's (below 1: sparse is faster). */
  readonly ratios: { readonly sparse_over_dense?: Ratio; readonly encoder_sparse_over_dense?: Ratio; readonly gpu_sparse_over_dense?: Ratio; readonly gpu_encoder_sparse_over_dense?: Ratio };
  /** With --profile: each configuration's GPU time per pass, or why there is none. */
  readonly gpu?: Readonly<Record<SparseConfig, GpuTime>> | { readonly error: string };
}

interface Runnable {
  readonly name: SparseConfig;
  readonly run: () => Promise<readonly Float32Array[]>;
  readonly release: () => void;
  readonly times: number[];
  worstDiff: number;
}

/** How far `outputs` are from `expected`, output by output (each relative to its own scale). */
function difference(outputs: readonly Float32Array[], expected: readonly Float32Array[]): number {
  return Math.max(...outputs.map((o, i) => scaledDifference(o, expected[i])));
}

export async function runSparseBench(inputs: SparseBenchInputs, adapter: string): Promise<SparseBenchResult> {
  const target = targetOfDevice(inputs.gpu.device, 'this device');
  const feeds = { input: inputs.input, mask: inputs.mask };
  const truth = (graph: Graph) => Object.values(executeGraph(graph, inputs.weightsFor(graph), feeds)).map((t) => t.data);
  const expected = { model: truth(inputs.reference.model), encoder: truth(inputs.reference.encoder) };
  const results: Partial<Record<SparseConfig, ConfigResult>> = {};
  const extra = new Map<SparseConfig, { setup_ms: number; dispatches: number; macs: number }>();
  const programs = new Map<SparseConfig, { readonly program: WgslProgram; readonly weights: PackedWeights }>();
  const runnables: Runnable[] = [];
  for (const name of sparseConfigs) {
    const graph = inputs.graphs[name];
    try {
      const program = lowerToWgsl(graph, { target, ...(inputs.schedule ? { schedule: inputs.schedule } : {}) });
      const started = performance.now();
      const module = await importRunner(generateRunner(program));
      const packed = packWeights(graph, program, inputs.weightsFor(graph));
      programs.set(name, { program, weights: packed });
      const model = await module.createModel(inputs.gpu.device, packed);
      extra.set(name, { setup_ms: performance.now() - started, dispatches: program.dispatches.length, macs: graphCost(graph).macs });
      const run = async () => {
        const out = (await model.run(inputs.input.data, inputs.mask.data)) as Float32Array | Readonly<Record<string, Float32Array>>;
        return out instanceof Float32Array ? [out] : graph.outputs.map((o) => out[o.name]);
      };
      runnables.push({ name, run, release: () => model.destroy(), times: [], worstDiff: 0 });
    } catch (error) {
      results[name] = { error: (error as Error).message };
    }
  }
  const profilePasses = inputs.runs + Math.max(1, inputs.warmup);
  const total = runnables.length * (inputs.warmup + inputs.runs) + (inputs.profile ? programs.size * profilePasses : 0);
  let done = 0;
  const step = async (r: Runnable, timed: boolean) => {
    try {
      const started = performance.now();
      const outputs = await r.run();
      if (timed) r.times.push(performance.now() - started);
      r.worstDiff = Math.max(r.worstDiff, difference(outputs, r.name.startsWith('encoder') ? expected.encoder : expected.model));
    } catch (error) {
      results[r.name] = { error: (error as Error).message };
    }
    inputs.onProgress?.(++done, total, r.name);
  };
  const alive = () => runnables.filter((r) => !results[r.name]?.error);
  const random = seededRandom(inputs.orderSeed);
  for (let i = 0; i < inputs.warmup; i++) for (const r of shuffled(alive(), random)) await step(r, false);
  for (let i = 0; i < inputs.runs; i++) for (const r of shuffled(alive(), random)) await step(r, true);
  const batch = inputs.input.shape[0];
  for (const r of runnables) {
    if (!results[r.name]?.error && r.times.length > 0) {
      const summary = summarize(r.times, batch);
      const { setup_ms, dispatches, macs } = extra.get(r.name)!;
      results[r.name] = {
        ...summary,
        gflops: (2 * macs) / (summary.median_ms / 1000) / 1e9,
        dispatches,
        setup_ms,
        adapter,
        adapter_verified: true,
        max_scaled_diff_vs_reference: r.worstDiff,
        wrong: !(r.worstDiff <= agreementTolerance),
      };
    }
    r.release();
  }
  let gpu: SparseBenchResult['gpu'];
  if (inputs.profile) {
    try {
      const times: Partial<Record<SparseConfig, GpuTime>> = {};
      for (const [name, { program, weights }] of programs) {
        const passes = await timeDispatches(inputs.gpu.device, program, weights, [inputs.input.data, inputs.mask.data], {
          runs: inputs.runs,
          warmup: Math.max(1, inputs.warmup),
          onPass: () => inputs.onProgress?.(++done, total, `profile ${name}`),
        });
        times[name] = { gpu_median_ms: median(passes.map((pass) => pass.reduce((a, b) => a + b, 0))) };
      }
      gpu = times as Record<SparseConfig, GpuTime>;
    } catch (error) {
      gpu = { error: (error as Error).message };
    }
  }
  const gpuOver = (a: SparseConfig, b: SparseConfig): Ratio | undefined => {
    if (!gpu || 'error' in gpu || !gpu[a] || !gpu[b]) return undefined;
    return results[a]?.wrong || results[b]?.wrong ? 'wrong' : gpu[a].gpu_median_ms / gpu[b].gpu_median_ms;
  };
  const over = (a?: ConfigResult, b?: ConfigResult): Ratio | undefined => {
    if (!a?.median_ms || !b?.median_ms) return undefined;
    return a.wrong || b.wrong ? 'wrong' : a.median_ms / b.median_ms;
  };
  const masked = inputs.mask.data.reduce((sum, m) => sum + m, 0);
  return {
    adapter,
    model: inputs.graphs.sparse.name,
    batch,
    size: [inputs.input.shape[2], inputs.input.shape[3]],
    date: new Date().toISOString(),
    runs: inputs.runs,
    warmup: inputs.warmup,
    order_seed: inputs.orderSeed,
    tolerance: agreementTolerance,
    masked_patches: masked,
    patches: inputs.mask.data.length,
    sparse: results.sparse!,
    dense: results.dense!,
    encoder_sparse: results.encoder_sparse!,
    encoder_dense: results.encoder_dense!,
    ratios: {
      sparse_over_dense: over(results.sparse, results.dense),
      encoder_sparse_over_dense: over(results.encoder_sparse, results.encoder_dense),
      ...(gpu ? { gpu_sparse_over_dense: gpuOver('sparse', 'dense'), gpu_encoder_sparse_over_dense: gpuOver('encoder_sparse', 'encoder_dense') } : {}),
    },
    ...(gpu ? { gpu } : {}),
  };
}

const fixed = (v: number | undefined, digits: number) => (v === undefined ? '-' : v.toFixed(digits));

export function formatSparseTable(result: SparseBenchResult): string {
  const gpu = result.gpu && !('error' in result.gpu) ? result.gpu : undefined;
  const header = ['config', 'median ms', 'IQR ms', 'min ms', 'max ms', ...(gpu ? ['GPU ms'] : []), 'dispatches', 'setup ms', 'vs reference'];
  const rows = sparseConfigs.map((name) => {
    const r = result[name];
    if (r.error) return [name, `error: ${r.error}`];
    const agreement = `${(r.max_scaled_diff_vs_reference ?? NaN).toExponential(1)}${r.wrong ? ' WRONG' : ''}`;
    const gpuCell = gpu ? [fixed(gpu[name]?.gpu_median_ms, 2)] : [];
    return [name, fixed(r.median_ms, 2), fixed(r.iqr_ms, 2), fixed(r.min_ms, 2), fixed(r.max_ms, 2), ...gpuCell, String(r.dispatches ?? '-'), fixed(r.setup_ms, 0), agreement];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((r) => r.length > 2).map((r) => r[i].length)));
  const line = (cells: string[]) => (cells.length === 2 ? `${cells[0].padEnd(widths[0])}  ${cells[1]}` : cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  const ratio = (r: Ratio | undefined) => (r === undefined ? '-' : r === 'wrong' ? 'wrong' : r.toFixed(3));
  return [
    `${result.model}, batch ${result.batch}, ${result.size[0]}x${result.size[1]}, ${result.masked_patches} of ${result.patches} patches masked; ${result.runs} timed runs each after ${result.warmup} warm-up; run order shuffled every round (order seed ${result.order_seed}); setup reported apart`,
    `adapter: ${result.adapter}`,
    '',
    line(header),
    ...rows.map(line),
    '',
    `sparse / dense (time):                 ${ratio(result.ratios.sparse_over_dense)}`,
    `encoder_sparse / encoder_dense (time): ${ratio(result.ratios.encoder_sparse_over_dense)}`,
    ...(gpu
      ? [
          `sparse / dense (GPU time):                 ${ratio(result.ratios.gpu_sparse_over_dense)}`,
          `encoder_sparse / encoder_dense (GPU time): ${ratio(result.ratios.gpu_encoder_sparse_over_dense)}`,
        ]
      : result.gpu && 'error' in result.gpu
        ? [`GPU times: ${result.gpu.error}`]
        : []),
  ].join('\n');
}
