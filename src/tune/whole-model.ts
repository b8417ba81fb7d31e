// The check that tuning paid off: the whole model's GPU time per forward pass (the sum of its
// dispatches' timestamp times) with the tuned schedules and with the default heuristic's, each
// the median of several passes, timed the way `convc bench --profile` times (timeDispatches).
import type { WeightMap } from '../backends/reference/executor.js';
import { lowerToWgsl, packWeights, type LowerOptions } from '../backends/wgsl/lower.js';
import { median } from '../bench/stats.js';
import { timeDispatches } from '../bench/timestamps.js';
import type { TargetDescription } from '../kernel/target.js';
import type { Graph, HostTensor } from '../ir/types.js';

export interface WholeModelTimes {
  readonly tuned_ms: number;
  readonly default_ms: number;
}

/** Median ms per forward pass of `graph`, tuned (`schedule`) and default, about `runs` passes each. */
export async function timeWholeModel(
  device: GPUDevice,
  graph: Graph,
  target: TargetDescription,
  weights: WeightMap,
  input: HostTensor,
  schedule: NonNullable<LowerOptions['schedule']>,
  runs: number,
): Promise<WholeModelTimes> {
  const passTimes = async (options: LowerOptions, passes: number) => {
    const program = lowerToWgsl(graph, options);
    const times = await timeDispatches(device, program, packWeights(graph, program, weights), input.data, { runs: passes, warmup: 1 });
    return times.map((pass) => pass.reduce((sum, ms) => sum + ms, 0));
  };
  // Alternating, each call with a warm-up pass of its own (fresh buffers): on lavapipe the first
  // passes after a switch run up to 2x slower, which would otherwise fall on one side only.
  // Recompiling is cheap after the first time (Dawn caches identical pipelines).
  const rounds = Math.min(3, runs);
  const perRound = Math.ceil(runs / rounds);
  const tuned: number[] = [];
  const fallback: number[] = [];
  for (let round = 0; round < rounds; round++) {
    fallback.push(...(await passTimes({ target }, perRound)));
    tuned.push(...(await passTimes({ target, schedule }, perRound)));
  }
  return { tuned_ms: median(tuned), default_ms: median(fallback) };
}
