// Fusion by op kind (TVM's op-pattern lattice), never by op name:
// - epilogues: an out-elementwise-fusable op (conv2d, linear) absorbs the elementwise and
//   broadcast ops that follow it, and a channel reduction (LayerNorm) where the op declares
//   that its kernel owns whole pixels (channelEpilogue), so it can normalise before writing;
// - prologues: an op that reads its input element by element (linear; conv2d without padding)
//   absorbs the elementwise or broadcast op that produces that input, and a channel reduction
//   where the op declares it can normalise what it loads (channelPrologue).
// A value read by anything else stays in memory, so its producer is never absorbed.
import { getOp } from '../ir/registry.js';
import type { FusedStep, Graph, Node } from '../ir/types.js';
import type { Pass } from './manager.js';
import { rewriteGraph, useCounts } from './rewrite.js';

const perElement = (op: string) => ['elementwise', 'broadcast'].includes(getOp(op).kind);
const isChannelReduction = (op: string) => getOp(op).kind === 'reduction' && getOp(op).reduces === 'channels';

function step(node: Node, operands: readonly number[]): FusedStep {
  return { op: node.op, attrs: node.attrs, params: node.params, operands, name: node.name };
}

/** One epilogue fusion, or undefined when none applies. */
function fuseOneEpilogue(graph: Graph): Graph | undefined {
  const uses = useCounts(graph);
  for (const anchor of graph.nodes) {
    if (getOp(anchor.op).kind !== 'out-elementwise-fusable' || uses[anchor.id] !== 1 || anchor.id === graph.output) continue;
    const consumer = graph.nodes.find((n) => n.inputs.includes(anchor.id))!;
    if (consumer.fusion) continue;
    const def = getOp(consumer.op);
    const epilogue = anchor.fusion?.epilogue ?? [];
    const legal =
      perElement(consumer.op) ||
      (isChannelReduction(consumer.op) && getOp(anchor.op).channelEpilogue === true && ![...(anchor.fusion?.prologue ?? []), ...epilogue].some((s) => isChannelReduction(s.op)));
    if (!legal) continue;
    // The running value must be the op's first operand; a commutative op may take it second.
    let others: number[];
    if (consumer.inputs[0] === anchor.id) others = consumer.inputs.slice(1);
    else if (def.commutative && consumer.inputs.length === 2 && consumer.inputs[1] === anchor.id) others = [consumer.inputs[0]];
    else continue;
    // The fused node sits where the anchor was, so every other operand must exist by then.
    if (others.some((id) => id >= anchor.id)) continue;
    const base = anchor.inputs.length;
    const fused: Node = {
      ...anchor,
      inputs: [...anchor.inputs, ...others],
      type: consumer.type,
      fusion: { prologue: anchor.fusion?.prologue ?? [], epilogue: [...epilogue, step(consumer, others.map((_, i) => base + i))] },
    };
    return rewriteGraph(graph, new Map([[consumer.id, anchor.id]]), new Map([[anchor.id, fused]]));
  }
  return undefined;
}

/** One prologue fusion, or undefined when none applies. */
function fuseOnePrologue(graph: Graph): Graph | undefined {
  const uses = useCounts(graph);
  for (const anchor of graph.nodes) {
    const def = getOp(anchor.op);
    if (def.kind !== 'out-elementwise-fusable' || !def.readsInputElementwise?.(anchor.attrs)) continue;
    const producer = graph.nodes[anchor.inputs[0]];
    if (producer.fusion || uses[producer.id] !== 1 || producer.id === graph.output) continue;
    // A channel reduction must be the prologue's last step (the anchor normalises what it
    // loads), and one kernel owns one normalisation.
    const hasChannelReduction = [...(anchor.fusion?.prologue ?? []), ...(anchor.fusion?.epilogue ?? [])].some((s) => isChannelReduction(s.op));
    const input = producer.type;
    const normalises = isChannelReduction(producer.op) && def.channelPrologue?.(anchor.attrs, input) === true && !anchor.fusion && !hasChannelReduction;
    // A spatial reduction (pooling) may only come first, before a channel reduction at most.
    const pools =
      getOp(producer.op).kind === 'reduction' &&
      getOp(producer.op).reduces === 'spatial' &&
      producer.op === 'global_avg_pool' &&
      def.spatialPrologue?.(anchor.attrs, input) === true &&
      (anchor.fusion?.prologue ?? []).every((s) => isChannelReduction(s.op)) &&
      (anchor.fusion?.epilogue ?? []).every((s) => !isChannelReduction(s.op));
    if (!perElement(producer.op) && !normalises && !pools) continue;
    const others = producer.inputs.slice(1);
    const base = anchor.inputs.length;
    const fused: Node = {
      ...anchor,
      inputs: [producer.inputs[0], ...anchor.inputs.slice(1), ...others],
      fusion: { prologue: [step(producer, others.map((_, i) => base + i)), ...(anchor.fusion?.prologue ?? [])], epilogue: anchor.fusion?.epilogue ?? [] },
    };
    return rewriteGraph(graph, new Map([[producer.id, producer.inputs[0]]]), new Map([[anchor.id, fused]]));
  }
  return undefined;
}

function toFixpoint(graph: Graph, once: (g: Graph) => Graph | undefined): Graph {
  let current = graph;
  for (let next = once(current); next; next = once(current)) current = next;
  return current;
}

export const fuseEpilogues: Pass = {
  name: 'fuse-epilogues',
  description: 'folds elementwise ops and channel reductions into the conv or linear before them',
  run: (graph) => toFixpoint(graph, fuseOneEpilogue),
};

export const fusePrologues: Pass = {
  name: 'fuse-prologues',
  description: 'folds into a linear or unpadded conv the elementwise op, LayerNorm or pooling that makes its input',
  run: (graph) => toFixpoint(graph, fuseOnePrologue),
};
