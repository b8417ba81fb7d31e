// Ops that kernels only know in parts (GRN as statistics and apply) are split by their pass
// before lowering, whatever pipeline the user chose.
import { getOp } from '../ir/registry.js';
import type { Graph } from '../ir/types.js';
import { runPipeline } from '../passes/manager.js';

/**
 * The graph with every op that kernels only know in parts split by its pass (GRN by
 * split-grn), whatever pipeline the user chose: a graph from `--passes` without it still runs.
 */
export function splitForKernels(graph: Graph): Graph {
  const passes = new Set<string>();
  for (const node of graph.nodes) {
    const math = getOp(node.op).kernel;
    if (math.kind === 'split') passes.add(math.pass);
  }
  return passes.size === 0 ? graph : runPipeline(graph, [...passes]);
}
