// --random-weights: deterministic weights from a seed, drawn as each weight's RandomInit says.
// Values are chosen so that no op degenerates to an identity (see ParamSpec.init).
import type { WeightMap } from '../backends/reference/executor.js';
import { withDerivedWeights } from './derive.js';
import { numel, type Graph, type HostTensor } from '../ir/types.js';

/** mulberry32: a small, fast, well-mixed 32-bit generator; enough for test weights. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomWeights(graph: Graph, seed = 0): WeightMap {
  const random = seededRandom(seed);
  const weights = new Map<string, HostTensor>();
  // Sorted keys: the same seed gives the same weights whatever order the graph lists them in.
  for (const key of [...graph.params.keys()].sort()) {
    const spec = graph.params.get(key)!;
    if (spec.derived) continue;
    const data = new Float32Array(numel(spec.shape));
    const init = spec.init;
    // fan-in: uniform with variance 1/fanIn, so activations keep their scale layer to layer.
    const [lo, hi] = init.kind === 'fan-in' ? [-Math.sqrt(3 / init.fanIn), Math.sqrt(3 / init.fanIn)] : [init.lo, init.hi];
    for (let i = 0; i < data.length; i++) data[i] = lo + (hi - lo) * random();
    weights.set(key, { shape: spec.shape, data });
  }
  return withDerivedWeights(graph, weights);
}

/** A standard-normal input tensor (Box-Muller), for runs without an --input file. */
export function randomInput(shape: readonly number[], seed = 1): HostTensor {
  const random = seededRandom(seed);
  const data = new Float32Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  }
  return { shape, data };
}
