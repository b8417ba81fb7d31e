// Text and JSON forms of a graph, for `convc inspect` and the compile artifact.
import { formatShape, type AttrValue, type Fusion, type Graph, type GraphOutput, type Node } from './types.js';

/** One line naming a node: `%9 grn_apply+linear+add stages.0.0.pwconv2 [1, 40, 56, 56]`. */
export function describeNode(node: Node): string {
  const op = node.fusion ? [...node.fusion.prologue.map((s) => s.op), node.op, ...node.fusion.epilogue.map((s) => s.op)].join('+') : node.op;
  return `%${node.id} ${op}${node.name ? ` ${node.name}` : ''} ${formatShape(node.type.shape)}`;
}

function formatAttr(value: AttrValue): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
}

/**
 *   %3 = layernorm(%2) {dim=40, eps=0.000001} stages.0.0.norm : [1, 40, 56, 56] f32
 *
 * A fused node lists its steps, the node's own op starred:
 *   %9 = fused[grn_apply -> *linear -> add](%7, %8, %1) {in=160, out=40, bias=true} stages.0.0.pwconv2 : ...
 */
export function printGraph(graph: Graph): string {
  const lines = [`graph ${graph.name} {`];
  for (const node of graph.nodes) {
    const attrs = Object.entries(node.attrs)
      .map(([k, v]) => `${k}=${formatAttr(v)}`)
      .join(', ');
    const args = node.inputs.map((i) => `%${i}`).join(', ');
    const name = node.name ? ` ${node.name}` : '';
    const steps = node.fusion ? [...node.fusion.prologue.map((s) => s.op), `*${node.op}`, ...node.fusion.epilogue.map((s) => s.op)] : [];
    const op = steps.length > 1 ? `fused[${steps.join(' -> ')}]` : node.op;
    // Partial sums: written beside the value, or finished instead of reading the input.
    const partials = node.fusion?.partials;
    const note = partials
      ? ` + ${partials.op} partial sums per ${partials.positions} positions`
      : node.fusion?.fromPartials !== undefined
        ? ` from %${node.inputs[0]}'s partial sums per ${node.fusion.fromPartials} positions`
        : '';
    lines.push(`  %${node.id} = ${op}(${args})${attrs ? ` {${attrs}}` : ''}${name} : ${formatShape(node.type.shape)} ${node.type.dtype}${note}`);
  }
  lines.push(`  return ${graph.outputs.map((o) => (graph.outputs.length === 1 && o.name === 'output' ? `%${o.id}` : `${o.name}=%${o.id}`)).join(', ')}`);
  lines.push('}');
  return lines.join('\n');
}

export interface GraphJson {
  readonly name: string;
  readonly nodes: readonly {
    readonly id: number;
    readonly op: string;
    readonly inputs: readonly number[];
    readonly attrs: Readonly<Record<string, AttrValue>>;
    readonly params: Readonly<Record<string, string>>;
    readonly shape: readonly number[];
    readonly dtype: string;
    readonly name: string;
    readonly loc?: string;
    readonly fusion?: Fusion;
  }[];
  readonly outputs: readonly GraphOutput[];
  readonly params: readonly { readonly key: string; readonly shape: readonly number[]; readonly dtype: string }[];
  readonly aliases: readonly { readonly from: string; readonly to: string }[];
}

export function graphToJson(graph: Graph): GraphJson {
  return {
    name: graph.name,
    nodes: graph.nodes.map((n) => ({
      id: n.id,
      op: n.op,
      inputs: n.inputs,
      attrs: n.attrs,
      params: n.params,
      shape: n.type.shape,
      dtype: n.type.dtype,
      name: n.name,
      ...(n.loc ? { loc: `${n.loc.file}:${n.loc.line}:${n.loc.col}` } : {}),
      ...(n.fusion ? { fusion: n.fusion } : {}),
    })),
    outputs: graph.outputs,
    params: [...graph.params.values()].map((p) => ({ key: p.key, shape: p.shape, dtype: p.dtype })),
    aliases: graph.aliases.map((a) => ({ from: a.from, to: a.to })),
  };
}
