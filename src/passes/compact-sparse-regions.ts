// Sparse-mask skipping (FCMAE's encoder): a sparse region's values are zero at masked patches,
// so instead of computing them everywhere and masking, this pass holds them compacted, one
// sample per visible patch ([V, C, h, w]), and every kernel of the region does work in
// proportion to the visible fraction. The patch_slots and visible_patches tables map between
// the two forms; a same-padded convolution reads its neighbours through patch_halo (visible
// neighbours, zeros elsewhere: sparse-convolution semantics), and the region's results go back
// in place through scatter_patches. The masking apply_mask nodes disappear.
//
// Only what is computed site by site, or over every site of the batch at once, survives
// compaction unchanged: a region with a per-sample spatial statistic (a dense GRN) or a
// convolution that is neither same-padded nor patch-aligned is left as it is.
import { getOp } from '../ir/registry.js';
import type { Graph, Node, TensorType, ValueId } from '../ir/types.js';
import { pairAttr } from '../ir/op.js';
import type { PassContext } from './context.js';
import type { Pass } from './manager.js';
import { expandNodes } from './rewrite.js';

/** How a region node is computed on compact values, or undefined when it cannot be. */
function compactForm(node: Node, siteRows: number, siteCols: number): { readonly halo: number } | undefined {
  const op = getOp(node.op);
  const math = op.kernel;
  if (math.kind === 'elementwise') return { halo: 0 };
  if (math.kind === 'reduction') return math.over === 'channels' || math.spansBatch?.(node.attrs) ? { halo: 0 } : undefined;
  if (math.kind === 'split') return node.op === 'grn' && node.attrs.over_batch === true ? { halo: 0 } : undefined;
  if (math.kind !== 'contraction') return undefined;
  // A linear layer is computed site by site.
  if (node.attrs.kernel === undefined) return { halo: 0 };
  const [kh, kw] = pairAttr(node.attrs, 'kernel');
  const [sh, sw] = pairAttr(node.attrs, 'stride');
  const [ph, pw] = pairAttr(node.attrs, 'padding');
  // A patch-aligned window: each output site reads sites of its own patch only.
  if (kh === sh && kw === sw && ph === 0 && pw === 0 && siteRows % sh === 0 && siteCols % sw === 0) return { halo: 0 };
  // Same padding, stride 1: the window reaches `padding` sites into the neighbouring patches.
  if (sh === 1 && sw === 1 && ph === pw && kh === kw && kh === 2 * ph + 1) return { halo: ph };
  return undefined;
}

/** The sites of one patch along each axis at a region node's input resolution. */
function sitesOf(type: TensorType, mask: TensorType): readonly [number, number] {
  return [type.shape[2] / mask.shape[1], type.shape[3] / mask.shape[2]];
}

function visibleCount(mask: Node, context: PassContext | undefined): number | undefined {
  if (context?.visiblePatches !== undefined) return context.visiblePatches;
  if (mask.op !== 'patch_mask') return undefined;
  const [n, rows, cols] = mask.type.shape;
  return n * Math.trunc(rows * cols * (1 - (mask.attrs.ratio as number)));
}

/** The region of `mask`: its nodes, or undefined when some cannot be compacted. */
function compactableRegion(graph: Graph, mask: ValueId): Set<ValueId> | undefined {
  const region = new Set(graph.nodes.filter((n) => n.type.mask === mask).map((n) => n.id));
  const maskType = graph.nodes[mask].type;
  for (const id of region) {
    const node = graph.nodes[id];
    if (node.fusion) return undefined;
    if (node.op === 'apply_mask') {
      if (node.inputs[1] !== mask) return undefined;
      continue;
    }
    // Only images are compacted, and an op reading the mask itself needs it in place.
    if (node.inputs.some((i) => i === mask || graph.nodes[i].type.shape.length !== 4) || node.type.shape.length !== 4) return undefined;
    const input = graph.nodes[node.inputs[0]].type;
    const [rows, cols] = sitesOf(input, maskType);
    if (!compactForm(node, rows, cols)) return undefined;
  }
  return region;
}

export const compactSparseRegions: Pass = {
  name: 'compact-sparse-regions',
  description: "computes sparse regions on their visible patches only (FCMAE's sparse-mask skipping)",
  run(graph, context) {
    const masks = new Set(graph.nodes.flatMap((n) => (n.type.mask !== undefined ? [n.type.mask] : [])));
    // Last mask first: a rewrite inserts nodes after its mask only, so earlier masks keep their ids.
    let result = graph;
    for (const mask of [...masks].sort((a, b) => b - a)) {
      const count = visibleCount(result.nodes[mask], context);
      const region = compactableRegion(result, mask);
      if (count !== undefined && count >= 1 && region) result = compact(result, mask, region, count);
    }
    return result;
  },
};

function compact(graph: Graph, mask: ValueId, region: ReadonlySet<ValueId>, count: number): Graph {
  const maskType = graph.nodes[mask].type;
  const [, rows, cols] = maskType.shape;
  let slots = -1;
  let visible = -1;
  /** Old region value -> its compact value in the new graph. */
  const compactOf = new Map<ValueId, ValueId>();
  /** Old value from outside the region -> its gathered compact value. */
  const gathered = new Map<ValueId, ValueId>();
  /** Old region value -> its dense value in the new graph, for readers outside the region. */
  const scattered = new Map<ValueId, ValueId>();
  const typeOf = new Map<ValueId, TensorType>();
  /** Types of the new graph's values this pass made; others keep their old type. */
  const oldType = new Map<ValueId, TensorType>();
  const node = (id: ValueId, op: string, inputs: ValueId[], attrs: Node['attrs'], like: Node): Node => {
    const type: TensorType = { ...getOp(op).infer(inputs.map((i) => typeOf.get(i) ?? oldType.get(i)!), attrs), compact: mask };
    typeOf.set(id, type);
    return { id, op, inputs, attrs, params: op === like.op ? like.params : {}, type, name: like.name, ...(like.loc ? { loc: like.loc } : {}) };
  };
  const rewritten = expandNodes(graph, (original, remap, next) => {
    const nodes: Node[] = [];
    const emit = (n: Node) => {
      nodes.push(n);
      typeOf.set(n.id, n.type);
      return n.id;
    };
    if (original.id === mask) {
      const kept = emit({ ...original, id: next(), inputs: original.inputs.map(remap) });
      slots = next();
      nodes.push({ id: slots, op: 'patch_slots', inputs: [kept], attrs: {}, params: {}, type: { shape: maskType.shape, dtype: 'f32' }, name: `${original.name || 'mask'}.slots` });
      visible = next();
      nodes.push({ id: visible, op: 'visible_patches', inputs: [slots], attrs: { count }, params: {}, type: { shape: [count], dtype: 'f32' }, name: `${original.name || 'mask'}.visible` });
      typeOf.set(slots, maskType);
      typeOf.set(visible, { shape: [count], dtype: 'f32' });
      return { nodes, result: kept };
    }
    if (region.has(original.id)) {
      const compactInput = (id: ValueId): ValueId => {
        const known = compactOf.get(id) ?? gathered.get(id);
        if (known !== undefined) return known;
        const dense = remap(id);
        oldType.set(dense, graph.nodes[id].type);
        const at = next();
        nodes.push(node(at, 'gather_patches', [dense, visible], { grid: [rows, cols] }, original));
        gathered.set(id, at);
        return at;
      };
      if (original.op === 'apply_mask') {
        compactOf.set(original.id, compactInput(original.inputs[0]));
        return { nodes, result: compactOf.get(original.id)! };
      }
      const inputs = original.inputs.map(compactInput);
      const input = graph.nodes[original.inputs[0]].type;
      const [siteRows, siteCols] = sitesOf(input, maskType);
      const { halo } = compactForm(original, siteRows, siteCols)!;
      let attrs = original.attrs;
      if (halo > 0) {
        const padded = next();
        nodes.push(node(padded, 'patch_halo', [inputs[0], visible, slots], { halo }, original));
        inputs[0] = padded;
        attrs = { ...attrs, padding: [0, 0] };
      }
      const at = next();
      nodes.push(node(at, original.op, inputs, attrs, original));
      compactOf.set(original.id, at);
      return { nodes, result: at };
    }
    if (!original.inputs.some((i) => region.has(i))) return undefined;
    const inputs = original.inputs.map((id) => {
      if (!region.has(id)) return remap(id);
      let dense = scattered.get(id);
      if (dense === undefined) {
        dense = next();
        nodes.push(node(dense, 'scatter_patches', [compactOf.get(id)!, slots], {}, graph.nodes[id]));
        const { compact: _, ...plain } = nodes[nodes.length - 1].type;
        nodes[nodes.length - 1] = { ...nodes[nodes.length - 1], type: plain };
        scattered.set(id, dense);
      }
      return dense;
    });
    const at = next();
    nodes.push({ ...original, id: at, inputs });
    return { nodes, result: at };
  });
  // A region value that is itself a result of the graph leaves it in dense form too.
  const nodes = [...rewritten.nodes];
  const outputs = graph.outputs.map((o) => {
    if (!region.has(o.id)) return { ...o, id: rewritten.outputs.find((r) => r.name === o.name)!.id };
    const source = nodes[compactOf.get(o.id)!];
    const { compact: _, ...type } = getOp('scatter_patches').infer([source.type, nodes[slots].type], {});
    nodes.push({ id: nodes.length, op: 'scatter_patches', inputs: [source.id, slots], attrs: {}, params: {}, type, name: source.name, ...(source.loc ? { loc: source.loc } : {}) });
    return { ...o, id: nodes.length - 1 };
  });
  return { ...rewritten, nodes, outputs };
}
