// GRN = statistics (a reduction over H, W and then channels) + a per-(sample, channel) scale and
// shift. Split, the statistics get one small kernel and the apply step can fold into the next
// pointwise layer's input (fuse-prologues).
import type { Node } from '../ir/types.js';
import type { Pass } from './manager.js';
import { expandNodes } from './rewrite.js';

export const splitGrn: Pass = {
  name: 'split-grn',
  description: 'splits grn into grn_stats (a reduction) and grn_apply (a scale and shift)',
  run(graph) {
    if (!graph.nodes.some((n) => n.op === 'grn')) return graph;
    return expandNodes(graph, (node, remap, next) => {
      if (node.op !== 'grn' || node.fusion) return undefined;
      const input = remap(node.inputs[0]);
      const stats = next();
      const apply = next();
      const [n, c] = node.type.shape;
      const nodes: Node[] = [
          { id: stats, op: 'grn_stats', inputs: [input], attrs: { dim: node.attrs.dim, eps: node.attrs.eps, over_batch: node.attrs.over_batch ?? false }, params: {}, type: { ...node.type, shape: [n, c] }, name: node.name, loc: node.loc },
          { id: apply, op: 'grn_apply', inputs: [input, stats], attrs: { dim: node.attrs.dim }, params: node.params, type: node.type, name: node.name, loc: node.loc },
      ];
      return { nodes, result: apply };
    });
  },
};
