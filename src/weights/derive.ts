// Weights that constant folding derived from others (ParamSpec.derived), computed once the
// checkpoint's own weights are bound.
import type { WeightMap } from '../backends/reference/executor.js';
import type { Graph, HostTensor } from '../ir/types.js';

export function withDerivedWeights(graph: Graph, weights: WeightMap): WeightMap {
  const derivedSpecs = [...graph.params.values()].filter((spec) => spec.derived);
  if (derivedSpecs.length === 0) return weights;
  const all = new Map<string, HostTensor>(weights);
  for (const spec of derivedSpecs) {
    const { source, scale } = spec.derived!;
    const from = weights.get(source)!.data;
    const by = weights.get(scale)!.data;
    const rowLength = from.length / by.length;
    const data = new Float32Array(from.length);
    // Products in f64, rounded once: the folded weight is as close to w * s as f32 allows.
    for (let i = 0; i < data.length; i++) data[i] = from[i] * by[Math.floor(i / rowLength)];
    all.set(spec.key, { shape: spec.shape, data });
  }
  return all;
}
