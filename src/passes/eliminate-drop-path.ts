// drop_path is stochastic depth: an identity at inference, so it costs nothing to remove.
import type { Pass } from './manager.js';
import { removeForwarded } from './rewrite.js';

export const eliminateDropPath: Pass = {
  name: 'eliminate-drop-path',
  description: 'removes drop_path nodes (identities at inference)',
  run(graph) {
    const forward = new Map(graph.nodes.filter((n) => n.op === 'drop_path').map((n) => [n.id, n.inputs[0]]));
    return forward.size === 0 ? graph : removeForwarded(graph, forward);
  },
};
