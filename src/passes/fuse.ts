// Fusion by op kind (TVM's op-pattern lattice), never by op name:
// - epilogues: an out-elementwise-fusable op (conv2d, linear) absorbs the elementwise and
//   broadcast ops that follow it, and a channel reduction (LayerNorm) where the op declares
//   that its kernel owns whole pixels (channelEpilogue), so it can normalise before writing;
// - prologues: an op that reads its input element by element (linear; conv2d without padding)
//   absorbs the elementwise or broadcast op that produces that input, and a channel reduction
//   where the op declares it can normalise what it loads (channelPrologue).
// A value read by anything else stays in memory, so its producer is never absorbed.
import { computable } from '../kernel/lower/index.js';
import { defaultSchedule, prologueReaders } from '../kernel/schedule.js';
import { getOp } from '../ir/registry.js';
import type { FusedStep, Graph, Node, ValueId } from '../ir/types.js';
import type { Pass } from './manager.js';
import { defaultPassContext, type PassContext } from './context.js';
import { rewriteGraph, useCounts } from './rewrite.js';

const perElement = (op: string) => ['elementwise', 'broadcast'].includes(getOp(op).kind);
const isChannelReduction = (op: string) => getOp(op).kind === 'reduction' && getOp(op).reduces === 'channels';

function step(node: Node, operands: readonly number[]): FusedStep {
  return { op: node.op, attrs: node.attrs, params: node.params, operands, name: node.name };
}

/**
 * A graph being fused in place: the current version of each node by its original id, and the
 * nodes merged away, each forwarding its uses to the value that replaced it. Every fusion is a
 * local change here, so a pass costs time linear in the graph rather than a rebuild per fusion;
 * the graph is rebuilt once at the end.
 */
class FusionState {
  readonly nodes: Node[];
  readonly uses: number[];
  /** Per value, the nodes that read it; entries may name nodes since merged (resolve them). */
  readonly readers: ValueId[][];
  private readonly forward = new Map<ValueId, ValueId>();
  private readonly changed = new Map<ValueId, Node>();

  constructor(private readonly graph: Graph) {
    this.nodes = [...graph.nodes];
    this.uses = useCounts(graph);
    this.readers = graph.nodes.map(() => []);
    for (const node of graph.nodes) for (const input of node.inputs) this.readers[input].push(node.id);
  }

  removed(id: ValueId): boolean {
    return this.forward.has(id);
  }

  /** The value that now stands for `id`, compressing the forwarding chain as it goes. */
  resolve(id: ValueId): ValueId {
    let target = id;
    while (this.forward.has(target)) target = this.forward.get(target)!;
    for (let at = id; at !== target; ) {
      const next = this.forward.get(at)!;
      this.forward.set(at, target);
      at = next;
    }
    return target;
  }

  isOutput(id: ValueId): boolean {
    return this.graph.outputs.some((o) => this.resolve(o.id) === id);
  }

  /** The one node reading `id` (callers check that it has exactly one use). */
  soleReader(id: ValueId): Node | undefined {
    for (const reader of this.readers[id]) {
      const node = this.resolve(reader);
      if (node !== id) return this.nodes[node];
    }
    return undefined;
  }

  /** Replaces node `id` and removes `gone`, whose uses now go to `to`. */
  merge(id: ValueId, fused: Node, gone: ValueId, to: ValueId): void {
    this.nodes[id] = fused;
    this.changed.set(id, fused);
    this.forward.set(gone, to);
  }

  result(): Graph {
    return this.changed.size === 0 ? this.graph : rewriteGraph(this.graph, this.forward, this.changed);
  }
}

// One sweep in node order reaches the same fixpoint as fusing one pair at a time and rescanning:
// a fusion never makes an earlier anchor fusable (it only adds steps to anchors, keeps every
// value's use count and keeps nodes in order), so each anchor takes its whole chain in its turn.

/** Absorbs into each anchor, in order, the chain of consumers it may take as its epilogue. */
function fuseEpiloguesOnce(graph: Graph, context: PassContext): Graph {
  const state = new FusionState(graph);
  for (const { id } of graph.nodes) {
    if (state.removed(id)) continue;
    for (;;) {
      const anchor = state.nodes[id];
      if (getOp(anchor.op).kind !== 'out-elementwise-fusable' || state.uses[id] !== 1 || state.isOutput(id)) break;
      const consumer = state.soleReader(id);
      if (!consumer || consumer.fusion) break;
      const def = getOp(consumer.op);
      const epilogue = anchor.fusion?.epilogue ?? [];
      const legal =
        perElement(consumer.op) ||
        (isChannelReduction(consumer.op) && getOp(anchor.op).channelEpilogue === true && ![...(anchor.fusion?.prologue ?? []), ...epilogue].some((s) => isChannelReduction(s.op)));
      if (!legal) break;
      const inputs = consumer.inputs.map((i) => state.resolve(i));
      // The running value must be the op's first operand; a commutative op may take it second.
      let others: number[];
      if (inputs[0] === id) others = inputs.slice(1);
      else if (def.commutative && inputs.length === 2 && inputs[1] === id) others = [inputs[0]];
      else break;
      // The fused node sits where the anchor was, so every other operand must exist by then.
      if (others.some((other) => other >= id)) break;
      const base = anchor.inputs.length;
      const fused: Node = {
        ...anchor,
        inputs: [...anchor.inputs, ...others],
        type: consumer.type,
        fusion: { prologue: anchor.fusion?.prologue ?? [], epilogue: [...epilogue, step(consumer, others.map((_, i) => base + i))] },
      };
      // Normalising its output over channels has the kernel's threads write all of an output
      // pixel's channels: not on a target whose threads write only their own element (gpu.js).
      // Every other target runs such a kernel under some schedule (a tree reduction over a few
      // lanes fits any workgroup), so no lowering is tried here: this pass runs on every graph.
      if (isChannelReduction(consumer.op) && context.target.threadWrites === 'own-element') break;
      state.merge(id, fused, consumer.id, id);
      // The anchor now makes the consumer's value, so it has the consumer's readers.
      state.uses[id] = state.uses[consumer.id];
      state.readers[id] = state.readers[consumer.id];
    }
  }
  return state.result();
}

/** Absorbs into each anchor, in order, the chain of producers it may take as its prologue. */
function fuseProloguesOnce(graph: Graph, context: PassContext): Graph {
  const state = new FusionState(graph);
  for (const { id } of graph.nodes) {
    if (state.removed(id)) continue;
    for (;;) {
      const anchor = state.nodes[id];
      const def = getOp(anchor.op);
      if (def.kind !== 'out-elementwise-fusable' || !def.readsInputElementwise?.(anchor.attrs)) break;
      const producerId = state.resolve(anchor.inputs[0]);
      const producer = state.nodes[producerId];
      if (producer.fusion || state.uses[producerId] !== 1 || state.isOutput(producerId)) break;
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
      if (!perElement(producer.op) && !normalises && !pools) break;
      const others = producer.inputs.slice(1);
      const base = anchor.inputs.length;
      const fused: Node = {
        ...anchor,
        inputs: [producer.inputs[0], ...anchor.inputs.slice(1), ...others],
        fusion: { prologue: [step(producer, others.map((_, i) => base + i)), ...(anchor.fusion?.prologue ?? [])], epilogue: anchor.fusion?.epilogue ?? [] },
      };
      // Normalising or pooling what it loads makes the kernel stage its input in workgroup
      // memory (a window, a whole sample's channels): fuse only when the target holds it.
      if ((normalises || pools) && !computable({ ...graph, nodes: state.nodes }, fused, context.target)) break;
      // The head as one kernel (pool + LayerNorm + classifier over a sample) runs on one
      // workgroup a sample; on a CPU emulation that is one core, and V2-atto's and V2-tiny's
      // heads on lavapipe profiled at 0.85-0.89x of their three unfused kernels: left apart.
      if ((normalises || pools) && anchor.type.shape.length === 2 && context.target.emulated) break;
      // An elementwise prologue runs once per thread that reads an element: fuse only while
      // that costs the target less than a kernel of its own (the target's cost model).
      if (!normalises && !pools && prologueReaders(fused, defaultSchedule(fused, context.target)) > context.target.prologueRecomputeLimit) break;
      state.merge(id, fused, producerId, producer.inputs[0]);
    }
  }
  return state.result();
}

export const fuseEpilogues: Pass = {
  name: 'fuse-epilogues',
  description: 'folds elementwise ops and channel reductions into the conv or linear before them',
  run: (graph, context = defaultPassContext) => fuseEpiloguesOnce(graph, context),
};

export const fusePrologues: Pass = {
  name: 'fuse-prologues',
  description: 'folds into a linear or unpadded conv the elementwise op, LayerNorm or pooling that makes its input',
  run: (graph, context = defaultPassContext) => fuseProloguesOnce(graph, context),
};
