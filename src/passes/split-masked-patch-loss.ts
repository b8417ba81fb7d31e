// FCMAE's loss in ops kernels know: the image patchified into the prediction's layout (one
// position per patch, its pixels as channels), with norm_pix_loss normalised per patch over
// those channels (unbiased variance + 1e-6), the squared error against the prediction, and its
// mean over the masked patches. The reference executor still evaluates masked_patch_loss whole.
import type { Node } from '../ir/types.js';
import type { Pass } from './manager.js';
import { expandNodes } from './rewrite.js';

export const splitMaskedPatchLoss: Pass = {
  name: 'split-masked-patch-loss',
  description: 'splits masked_patch_loss into patchify, channel_norm (norm_pix_loss), squared_error and masked_mean',
  run(graph) {
    if (!graph.nodes.some((n) => n.op === 'masked_patch_loss')) return graph;
    return expandNodes(graph, (node, remap, next) => {
      if (node.op !== 'masked_patch_loss' || node.fusion) return undefined;
      const [pred, image, mask] = node.inputs.map(remap);
      const predType = graph.nodes[node.inputs[0]].type;
      const at = { name: node.name, loc: node.loc, params: {} };
      const nodes: Node[] = [{ ...at, id: next(), op: 'patchify', inputs: [image], attrs: { patch: node.attrs.patch }, type: predType }];
      if (node.attrs.norm_pix_loss === true) {
        nodes.push({ ...at, id: next(), op: 'channel_norm', inputs: [nodes[nodes.length - 1].id], attrs: { eps: 1e-6, unbiased: true }, type: predType });
      }
      const error: Node = { ...at, id: next(), op: 'squared_error', inputs: [pred, nodes[nodes.length - 1].id], attrs: {}, type: predType };
      const loss: Node = { ...at, id: next(), op: 'masked_mean', inputs: [error.id, mask], attrs: {}, type: node.type };
      nodes.push(error, loss);
      return { nodes, result: loss.id };
    });
  },
};
