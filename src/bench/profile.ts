// convc bench --profile: GPU time per kernel, from timestamp queries around every dispatch of the
// fused and the unfused program, summed per kernel kind with achieved GFLOP/s and GB/s; and
// each fused kernel kind beside the unfused dispatches that compute the same IR nodes, so what
// a fusion gains or loses is read off per kernel, not guessed from the totals.
import { median } from './stats.js';
import { bytesConvention, dispatchWork, flopsConvention, replacedBy, type DispatchWork } from './dispatch-work.js';
import { timeDispatches } from './timestamps.js';
import type { WeightMap } from '../backends/reference/executor.js';
import { lowerToWgsl, packWeights, type LowerOptions } from '../backends/wgsl/lower.js';
import { targetOfDevice } from '../kernel/target.js';
import type { Graph } from '../ir/types.js';

/** One dispatch of a forward pass, with its median GPU time. */
export interface ProfiledDispatch {
  readonly kernel: string;
  readonly covers: string;
  readonly ms: number;
  readonly flops: number;
  /** Bytes bound (see bytesConvention). */
  readonly bytes: number;
  /** Unfused dispatches only: the index of the fused dispatch computing the same IR node, or null. */
  readonly replaced_by?: number | null;
}

/** One kernel kind of one pipeline: its dispatches summed. */
export interface KernelRow {
  readonly kernel: string;
  readonly calls: number;
  readonly total_ms: number;
  /** Fraction (0 to 1) of the pipeline's summed GPU time. */
  readonly share: number;
  readonly gflops: number;
  readonly gbps: number;
}

export interface PipelineProfile {
  /** Sum of the dispatches' median times: GPU time only, no submission or readback. */
  readonly total_ms: number;
  /** Kernel kinds, most time first. */
  readonly kernels: readonly KernelRow[];
  readonly dispatches: readonly ProfiledDispatch[];
}

/** A fused kernel kind beside the unfused dispatches that compute the same IR nodes. */
export interface FusedVsUnfusedRow {
  /** A fused kernel kind; null for unfused dispatches that no fused dispatch computes. */
  readonly kernel: string | null;
  readonly calls: number;
  readonly fused_ms: number;
  readonly unfused_calls: number;
  readonly unfused_ms: number;
  /** Unfused kernel kind -> how many of its dispatches this row's fused kernels replace. */
  readonly unfused_kernels: Readonly<Record<string, number>>;
  /** unfused_ms / fused_ms: above 1 where the fused kernel is faster than what it replaces. */
  readonly speedup?: number;
}

export interface BenchProfile {
  readonly method: string;
  /** Passes timed (the bench's --runs) after `warmup` untimed ones; the median per dispatch is kept. */
  readonly runs: number;
  readonly warmup: number;
  readonly flops: string;
  readonly bytes: string;
  readonly fused: PipelineProfile;
  readonly unfused: PipelineProfile;
  /** Most fused time first; a row with kernel null last, if any. */
  readonly fused_vs_unfused: readonly FusedVsUnfusedRow[];
}

export interface ProfileInputs {
  readonly device: GPUDevice;
  readonly fused: Graph;
  readonly unfused: Graph;
  readonly weightsFor: (graph: Graph) => WeightMap;
  readonly input: Float32Array;
  readonly runs: number;
  /** At least one warm-up pass is made whatever is asked: shaders compile on first use. */
  readonly warmup: number;
  readonly onPass?: () => void;
  /** Schedules for nodes, as the timed runs use them (undefined: the default heuristic's). */
  readonly schedule?: LowerOptions['schedule'];
}

/** Timed passes per pipeline that profileBench makes, warm-up included (for progress totals). */
export function profilePasses(runs: number, warmup: number): number {
  return runs + Math.max(1, warmup);
}

/** Per millisecond, in units of 1e9 per second (GFLOP/s, GB/s); 0 for no time. */
const perMs = (amount: number, ms: number) => (ms > 0 ? amount / ms / 1e6 : 0);

function kernelRows(dispatches: readonly ProfiledDispatch[], total: number): KernelRow[] {
  const byKernel = new Map<string, { calls: number; ms: number; flops: number; bytes: number }>();
  for (const d of dispatches) {
    const entry = byKernel.get(d.kernel) ?? { calls: 0, ms: 0, flops: 0, bytes: 0 };
    byKernel.set(d.kernel, { calls: entry.calls + 1, ms: entry.ms + d.ms, flops: entry.flops + d.flops, bytes: entry.bytes + d.bytes });
  }
  return [...byKernel]
    .map(([kernel, e]) => ({ kernel, calls: e.calls, total_ms: e.ms, share: total > 0 ? e.ms / total : 0, gflops: perMs(e.flops, e.ms), gbps: perMs(e.bytes, e.ms) }))
    .sort((a, b) => b.total_ms - a.total_ms);
}

/** Median per dispatch over the runs, with each dispatch's work; the pipeline summed per kernel. */
export function summarizePipeline(work: readonly DispatchWork[], times: readonly (readonly number[])[], owners?: readonly (number | null)[]): PipelineProfile {
  const dispatches: ProfiledDispatch[] = work.map((w, i) => ({
    kernel: w.kernel,
    covers: w.covers,
    ms: median(times.map((run) => run[i])),
    flops: w.flops,
    bytes: w.bytes,
    ...(owners ? { replaced_by: owners[i] } : {}),
  }));
  const total_ms = dispatches.reduce((sum, d) => sum + d.ms, 0);
  return { total_ms, kernels: kernelRows(dispatches, total_ms), dispatches };
}

/** Each fused kernel kind beside the unfused dispatches its dispatches replace. */
export function fusedVsUnfused(fused: PipelineProfile, unfused: PipelineProfile): FusedVsUnfusedRow[] {
  const rows = new Map<string | null, { calls: number; fused_ms: number; unfused_calls: number; unfused_ms: number; unfused_kernels: Record<string, number> }>();
  const row = (kernel: string | null) => {
    let entry = rows.get(kernel);
    if (!entry) rows.set(kernel, (entry = { calls: 0, fused_ms: 0, unfused_calls: 0, unfused_ms: 0, unfused_kernels: {} }));
    return entry;
  };
  for (const d of fused.dispatches) {
    const entry = row(d.kernel);
    entry.calls++;
    entry.fused_ms += d.ms;
  }
  for (const d of unfused.dispatches) {
    const owner = d.replaced_by ?? null;
    const entry = row(owner === null ? null : fused.dispatches[owner].kernel);
    entry.unfused_calls++;
    entry.unfused_ms += d.ms;
    entry.unfused_kernels[d.kernel] = (entry.unfused_kernels[d.kernel] ?? 0) + 1;
  }
  return [...rows]
    .map(([kernel, e]) => ({ kernel, ...e, ...(e.fused_ms > 0 ? { speedup: e.unfused_ms / e.fused_ms } : {}) }))
    .sort((a, b) => (a.kernel === null ? 1 : b.kernel === null ? -1 : b.fused_ms - a.fused_ms));
}

/**
 * Profiles both pipelines on `device`, which must have 'timestamp-query'. Kernels are fitted to
 * the device as the bench's own runs are.
 */
export async function profileBench(inputs: ProfileInputs): Promise<BenchProfile> {
  const target = targetOfDevice(inputs.device, 'this device');
  const warmup = Math.max(1, inputs.warmup);
  const measure = async (graph: Graph) => {
    const program = lowerToWgsl(graph, { target, ...(inputs.schedule ? { schedule: inputs.schedule } : {}) });
    const work = dispatchWork(graph, program);
    const weights = packWeights(graph, program, inputs.weightsFor(graph));
    const times = await timeDispatches(inputs.device, program, weights, inputs.input, { runs: inputs.runs, warmup, onPass: inputs.onPass });
    return { work, times };
  };
  const fused = await measure(inputs.fused);
  const unfused = await measure(inputs.unfused);
  const fusedProfile = summarizePipeline(fused.work, fused.times);
  const unfusedProfile = summarizePipeline(unfused.work, unfused.times, replacedBy(fused.work, unfused.work));
  return {
    method: 'GPU time between timestamps written at the beginning and end of a compute pass holding one dispatch; all dispatches of a forward pass in one submit',
    runs: inputs.runs,
    warmup,
    flops: flopsConvention,
    bytes: bytesConvention,
    fused: fusedProfile,
    unfused: unfusedProfile,
    fused_vs_unfused: fusedVsUnfused(fusedProfile, unfusedProfile),
  };
}
