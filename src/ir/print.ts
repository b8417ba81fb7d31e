// Text and JSON forms of a graph, for `convc inspect` and the compile artifact.
import { formatShape, type AttrValue, type Graph } from './types.js';

function formatAttr(value: AttrValue): string {
  return Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
}

/**
 *   %3 = layernorm(%2) {dim=40, eps=0.000001} stages.0.0.norm : [1, 40, 56, 56] f32
 */
export function printGraph(graph: Graph): string {
  const lines = [`graph ${graph.name} {`];
  for (const node of graph.nodes) {
    const attrs = Object.entries(node.attrs)
      .map(([k, v]) => `${k}=${formatAttr(v)}`)
      .join(', ');
    const args = node.inputs.map((i) => `%${i}`).join(', ');
    const name = node.name ? ` ${node.name}` : '';
    lines.push(`  %${node.id} = ${node.op}(${args})${attrs ? ` {${attrs}}` : ''}${name} : ${formatShape(node.type.shape)} ${node.type.dtype}`);
  }
  lines.push(`  return %${graph.output}`);
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
  }[];
  readonly output: number;
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
    })),
    output: graph.output,
    params: [...graph.params.values()].map((p) => ({ key: p.key, shape: p.shape, dtype: p.dtype })),
    aliases: graph.aliases.map((a) => ({ from: a.from, to: a.to })),
  };
}
