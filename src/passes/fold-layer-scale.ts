// A layer scale right after a conv or linear is a per-output-channel constant, so it folds into
// that layer's weights and bias: s * (W x + b) = (s W) x + (s b). The folded weights are
// derived when weights are bound (see ParamSpec.derived), so checkpoints load unchanged.
import { getOp } from '../ir/registry.js';
import type { Graph, Node, ParamSpec } from '../ir/types.js';
import type { Pass } from './manager.js';
import { rewriteGraph } from './rewrite.js';
import { paramSetsOf } from '../ir/fusion.js';

/** How many (node, step) places read each weight. */
function readers(graph: Graph): Map<string, number> {
  const counts = new Map<string, number>();
  for (const node of graph.nodes) for (const set of paramSetsOf(node)) for (const key of Object.values(set.params)) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

export const foldLayerScale: Pass = {
  name: 'fold-layer-scale',
  description: "folds a layer scale fused right after a conv or linear into that layer's weights and bias",
  run(graph) {
    const reads = readers(graph);
    const params = new Map(graph.params);
    const replace = new Map<number, Node>();
    for (const node of graph.nodes) {
      const first = node.fusion?.epilogue[0];
      if (!first || first.op !== 'layer_scale' || getOp(node.op).kind !== 'out-elementwise-fusable') continue;
      const scale = first.params.scale;
      // Only weights no one else reads can be replaced by their scaled copies.
      if (Object.values(node.params).some((key) => reads.get(key) !== 1)) continue;
      const folded: Record<string, string> = {};
      for (const [role, key] of Object.entries(node.params)) {
        const source = params.get(key)!;
        const derivedKey = `${key}*${scale}`;
        const spec: ParamSpec = { ...source, key: derivedKey, derived: { rule: 'scale-rows', source: key, scale } };
        params.set(derivedKey, spec);
        folded[role] = derivedKey;
      }
      const { prologue, epilogue, ...others } = node.fusion!;
      const rest = epilogue.slice(1);
      const keeps = prologue.length + rest.length > 0 || Object.keys(others).length > 0;
      replace.set(node.id, { ...node, params: folded, fusion: keeps ? { ...others, prologue, epilogue: rest } : undefined });
    }
    if (replace.size === 0) return graph;
    return { ...rewriteGraph(graph, new Map(), replace), params };
  },
};
