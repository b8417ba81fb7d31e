// The search: for each distinct kernel of a model (nodes with the same key share one), the
// default heuristic's schedule and then pruned candidates (space.ts) are compiled, checked
// against the reference executor and timed alone on the device (kernel-bench.ts), within a
// wall-clock budget shared by the kernels in proportion to their share of the model's time.
// Successive halving: every candidate is timed twice; the best three that look faster than the
// default are re-timed with the default, interleaved, and checked again; one wins only if it
// beats the default by the margin (minimumGain, below), round by round. A candidate that disagrees with the
// reference, or that lowering or the device refuses, is discarded and never cached.
import { executeReference, type WeightMap } from '../backends/reference/executor.js';
import { agreementTolerance } from '../bench/bench.js';
import { median } from '../bench/stats.js';
import { splitForKernels } from '../kernel/split.js';
import { defaultSchedule, type Schedule } from '../kernel/schedule.js';
import type { TargetDescription } from '../kernel/target.js';
import type { Graph, HostTensor, Node } from '../ir/types.js';
import { candidateOrder, maxCandidates } from './space.js';
import { kernelKey } from './key.js';
import { CandidateError, prepareKernel, UnmeasurableKernel, type KernelCase, type PreparedKernel } from './kernel-bench.js';
import type { TunedKernel } from './tuning-file.js';

/**
 * The smallest speed-up a candidate must show over the default to win. In the final rounds each
 * finalist is timed right after or before the default, and its time is taken relative to the
 * default's in the same round, so that load from other processes (this machine has two shared
 * cores; a kernel's own times move by 10-60% between seconds) falls on both alike. A finalist
 * wins only if the median of those ratios is at most 1 - 5% and it was faster than the default
 * in at least three rounds of four: a smaller gain cannot be told from noise and would make two
 * tuning runs disagree.
 */
export const minimumGain = 0.05;

/** Timings per candidate when screening, and rounds x timings per finalist when re-timing. */
const screenRuns = 2;
const finalRounds = 4;
const finalRunsPerRound = 2;
/** Candidates re-timed after screening. */
const finalists = 3;

/** Not reachable from the command line: lets a test inject wrong or slow candidates. */
export interface TuneHooks {
  /** Schedules tried first after the default, before the pruned space's. */
  readonly extraCandidates?: (key: string, node: Node) => readonly Schedule[];
  /** Rewrites a kernel's output before it is checked (a wrong kernel). */
  readonly tamperOutput?: (key: string, schedule: Schedule, output: Float32Array) => Float32Array;
  /** Rewrites measured times (a slow kernel). */
  readonly adjustTimes?: (key: string, schedule: Schedule, ms: number[]) => number[];
}

export interface TuneInputs {
  readonly device: GPUDevice;
  /** The model's graph (any pipeline); kernels are those of splitForKernels(graph). */
  readonly graph: Graph;
  readonly target: TargetDescription;
  /** All weights, derived ones included. */
  readonly weights: WeightMap;
  readonly input: HostTensor;
  /** Wall-clock ms for the whole search, reference pass included. */
  readonly budgetMs: number;
  /** One line per finished step (stderr). */
  readonly log?: (line: string) => void;
  readonly hooks?: TuneHooks;
}

/** What the search found for one distinct kernel. */
export interface KernelOutcome {
  readonly key: string;
  /** Nodes of the model computed by this kernel. */
  readonly nodes: number;
  /** The result to cache; absent where the kernel could not be measured or was not searched. */
  readonly tuned?: TunedKernel;
  /** Why there is no result. */
  readonly skipped?: string;
}

interface Timed {
  readonly kernel: PreparedKernel;
  readonly times: number[];
  /** Per final round: this kernel's median over the default's in the same round. */
  readonly ratios?: number[];
}

const medianOf = (t: Timed) => median(t.times);

/** Searches every distinct kernel of the graph; see the file's header. */
export async function tuneKernels(inputs: TuneInputs): Promise<KernelOutcome[]> {
  const started = performance.now();
  const deadline = started + inputs.budgetMs;
  const log = inputs.log ?? (() => {});
  const hooks = inputs.hooks ?? {};
  const graph = splitForKernels(inputs.graph);
  const groups = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    const key = kernelKey(node);
    groups.set(key, [...(groups.get(key) ?? []), node]);
  }
  // One reference pass at the tuning size: each kernel's inputs and expected output.
  const needed = new Set<number>();
  for (const [first] of groups.values()) for (const id of [first.id, ...first.inputs]) needed.add(id);
  const values = new Map<number, HostTensor>();
  executeReference(graph, inputs.weights, inputs.input, { onValue: (node, value) => needed.has(node.id) && values.set(node.id, value) });
  log(`reference pass and ${groups.size} distinct kernels of ${graph.nodes.length} dispatches in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  const timeOf = async (key: string, kernel: PreparedKernel, runs: number) => {
    const ms = await kernel.time(runs);
    return hooks.adjustTimes ? hooks.adjustTimes(key, kernel.schedule, ms) : ms;
  };
  const agrees = async (key: string, kernel: PreparedKernel) => {
    const difference = await kernel.check(hooks.tamperOutput ? (out) => hooks.tamperOutput!(key, kernel.schedule, out) : undefined);
    return difference <= agreementTolerance;
  };

  // Every default first: checked, timed, and its share of the model's time known.
  const outcomes = new Map<string, KernelOutcome>();
  const searches: { key: string; nodes: Node[]; kernelCase: KernelCase; defaultKernel: PreparedKernel; defaultMs: number }[] = [];
  for (const [key, nodes] of groups) {
    const kernelCase: KernelCase = { graph, node: nodes[0], target: inputs.target, values, weights: inputs.weights, input: inputs.input };
    try {
      const defaultKernel = await prepareKernel(inputs.device, kernelCase, candidateDefault(kernelCase));
      if (!(await agrees(key, defaultKernel))) {
        defaultKernel.destroy();
        outcomes.set(key, { key, nodes: nodes.length, skipped: 'the default schedule disagrees with the reference executor' });
        continue;
      }
      const defaultMs = median(await timeOf(key, defaultKernel, 3));
      searches.push({ key, nodes, kernelCase, defaultKernel, defaultMs });
    } catch (error) {
      if (!(error instanceof UnmeasurableKernel) && !(error instanceof CandidateError)) throw error;
      outcomes.set(key, { key, nodes: nodes.length, skipped: `not measurable alone: ${error.message}` });
    }
  }
  // The kernels that take most of the model's time are searched first, and longest.
  const weight = (s: (typeof searches)[number]) => s.nodes.length * s.defaultMs;
  searches.sort((a, b) => weight(b) - weight(a));
  let weightLeft = searches.reduce((sum, s) => sum + weight(s), 0);
  for (const [index, search] of searches.entries()) {
    const { key, nodes, kernelCase, defaultKernel, defaultMs } = search;
    const share = weightLeft > 0 ? weight(search) / weightLeft : 1;
    weightLeft -= weight(search);
    const kernelStart = performance.now();
    const allowance = Math.max(0, (deadline - kernelStart) * share);
    const screenUntil = kernelStart + 0.6 * allowance;
    const label = `[${index + 1}/${searches.length}] ${defaultKernel.program.name} ${key.replace(/ #.*/, '').replace(/^\S+ /, '')} x${nodes.length}`;
    const injected = hooks.extraCandidates?.(key, kernelCase.node) ?? [];
    if (allowance <= 0 && injected.length === 0) {
      defaultKernel.destroy();
      outcomes.set(key, { key, nodes: nodes.length, skipped: 'not searched: the budget was spent' });
      log(`${label}: not searched (budget spent); default ${defaultMs.toFixed(2)} ms`);
      continue;
    }
    // Injected candidates (tests) are tried whatever the budget; the space's only within it.
    const candidates = [...injected, ...(allowance > 0 ? candidateOrder(kernelCase.node, kernelCase.target, key) : [])];
    let tried = 0;
    let rejected = 0;
    const best: Timed[] = [];
    for (const schedule of candidates) {
      if (tried >= injected.length && (tried >= maxCandidates + injected.length || (tried > 0 && performance.now() > screenUntil))) break;
      let kernel: PreparedKernel;
      try {
        kernel = await prepareKernel(inputs.device, kernelCase, schedule);
      } catch (error) {
        if (!(error instanceof CandidateError) && !(error instanceof UnmeasurableKernel)) throw error;
        continue;
      }
      tried++;
      if (!(await agrees(key, kernel))) {
        rejected++;
        kernel.destroy();
        continue;
      }
      const times = await timeOf(key, kernel, screenRuns);
      // Only candidates that look at least as fast as the default go on; the best few are kept compiled.
      if (median(times) >= defaultMs) {
        kernel.destroy();
        continue;
      }
      best.push({ kernel, times });
      best.sort((a, b) => medianOf(a) - medianOf(b));
      for (const dropped of best.splice(finalists)) dropped.kernel.destroy();
    }
    // Finals: the default and the finalists timed in turn, each round in another order; then
    // the best finalist by its median ratio to the default is checked again before it may win.
    const field: Timed[] = [{ kernel: defaultKernel, times: [] }, ...best.map((b) => ({ kernel: b.kernel, times: [] as number[], ratios: [] as number[] }))];
    for (let round = 0; round < finalRounds; round++) {
      const medians = new Map<Timed, number>();
      for (let i = 0; i < field.length; i++) {
        const entry = field[(i + round) % field.length];
        const times = await timeOf(key, entry.kernel, finalRunsPerRound);
        entry.times.push(...times);
        medians.set(entry, median(times));
      }
      for (const entry of field.slice(1)) entry.ratios!.push(medians.get(entry)! / medians.get(field[0])!);
    }
    const defaultFinal = median(field[0].times);
    const wins = (entry: Timed) => median(entry.ratios!) <= 1 - minimumGain && entry.ratios!.filter((r) => r < 1).length >= 0.75 * finalRounds;
    let winner: Timed = field[0];
    for (const entry of field.slice(1).filter(wins).sort((a, b) => median(a.ratios!) - median(b.ratios!))) {
      if (!(await agrees(key, entry.kernel))) {
        rejected++;
        continue;
      }
      winner = entry;
      break;
    }
    const tuned: TunedKernel = {
      kernel: winner.kernel.program.name,
      schedule: winner.kernel.schedule,
      ms: medianOf(winner),
      default_ms: defaultFinal,
      is_default: winner === field[0],
      candidates: tried,
      rejected,
    };
    for (const entry of field) entry.kernel.destroy();
    outcomes.set(key, { key, nodes: nodes.length, tuned });
    const result = tuned.is_default ? 'default kept' : `${describeSchedule(tuned.schedule)}, ${(defaultFinal / tuned.ms).toFixed(2)}x`;
    log(`${label}: ${defaultFinal.toFixed(2)} -> ${tuned.ms.toFixed(2)} ms (${result}; ${tried} tried, ${rejected} wrong, ${best.length} re-timed, ${((performance.now() - kernelStart) / 1000).toFixed(1)} s)`);
  }
  return [...groups.keys()].map((key) => outcomes.get(key)!);
}

/** The default heuristic's schedule (the schedule space's first). */
const candidateDefault = (kernelCase: KernelCase): Schedule => defaultSchedule(kernelCase.node, kernelCase.target);

/** A schedule in a few words, for progress lines. */
export function describeSchedule(s: Schedule): string {
  switch (s.strategy) {
    case 'gemm':
      return `gemm ${s.rows}x${s.cols}${s.stage ? `x${s.depth}` : ' unstaged'}, ${s.threadRows}x${s.threadCols}/thread${s.vector === 4 ? ', vec4' : ''}${s.buffers === 2 ? ', double-buffered' : ''}${s.unroll ? '' : ', no unroll'}`;
    case 'rows':
    case 'pixel':
      return `${s.strategy} ${s.workgroupSize} threads, ${s.lanes} lanes, ${s.reduction}${s.strategy === 'pixel' && s.registers ? ', registers' : ''}`;
    case 'window':
      return `window ${s.workgroupSize} threads, ${s.pixels} pixel(s), ${s.stagingFloats} floats staged`;
    default:
      return `${s.strategy} ${s.workgroupSize} threads`;
  }
}
