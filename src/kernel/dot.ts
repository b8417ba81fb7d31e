// A model's kernels as a Graphviz graph (`convc inspect --dot`): a box per kernel, named by its
// kernel program and the IR nodes it covers, an ellipse per model input and output, and an
// edge wherever a kernel reads what another wrote. Labels quote user-chosen names (node and
// model names), so every string is escaped for DOT.
import { describeNode } from '../ir/print.js';
import { formatShape, type Graph } from '../ir/types.js';
import { commentSafe } from './comment-safe.js';
import { callerShape, hasKernel, modelInputs } from './model-io.js';
import type { ModelKernel } from './lower/index.js';

/** `text` as a DOT string: quoted, its quotes and backslashes escaped, lines as \n. */
function quoted(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

/**
 * The DOT text of `graph` (as lowered: the graph `kernels` were made from) and its kernels in
 * dispatch order.
 */
export function graphToDot(graph: Graph, kernels: readonly ModelKernel[]): string {
  const lines = [
    `// convc inspect --dot: model '${commentSafe(graph.name)}', ${kernels.length} kernel dispatches (boxes) and the IR nodes each covers.`,
    `digraph ${quoted(graph.name)} {`,
    '  rankdir=TB;',
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [color="#555555"];',
  ];
  // Where each value is read from: its kernel's box, or the caller's tensor for an input
  // kernels read directly.
  const source = new Map<number, string>();
  for (const { name, node } of modelInputs(graph)) {
    const id = `input_${name}`;
    lines.push(`  ${quoted(id)} [shape=ellipse, style=filled, fillcolor="#e8f0fe", label=${quoted(`${name}\n${formatShape(callerShape(node))}`)}];`);
    if (!hasKernel(node)) source.set(node.id, id);
  }
  kernels.forEach((kernel, index) => {
    const id = `kernel_${index}`;
    const covers = kernel.node !== undefined ? describeNode(graph.nodes[kernel.node]) : `layout of output ${kernel.output ?? ''}`;
    lines.push(`  ${quoted(id)} [shape=box, style="rounded,filled", fillcolor="#f4f4f4", label=${quoted(`${index}: ${kernel.program.name}\n${covers}`)}];`);
    if (kernel.node !== undefined) source.set(kernel.node, id);
  });
  kernels.forEach((kernel, index) => {
    const id = quoted(`kernel_${index}`);
    if (kernel.node === undefined) {
      const output = graph.outputs.find((o) => o.name === kernel.output);
      const from = output && source.get(output.id);
      if (from !== undefined) lines.push(`  ${quoted(from)} -> ${id};`);
      lines.push(`  ${id} -> ${quoted(`output_${kernel.output ?? ''}`)};`);
      return;
    }
    const node = graph.nodes[kernel.node];
    const input = modelInputs(graph).find((i) => i.node.id === node.id);
    if (input) lines.push(`  ${quoted(`input_${input.name}`)} -> ${id};`);
    for (const from of new Set(node.inputs)) {
      const at = source.get(from);
      if (at !== undefined) lines.push(`  ${quoted(at)} -> ${id};`);
    }
  });
  const layouts = new Set(kernels.flatMap((k) => (k.output !== undefined ? [k.output] : [])));
  for (const output of graph.outputs) {
    const id = quoted(`output_${output.name}`);
    lines.push(`  ${id} [shape=ellipse, style=filled, fillcolor="#e6f4ea", label=${quoted(`${output.name}\n${formatShape(graph.nodes[output.id].type.shape)}`)}];`);
    const from = source.get(output.id);
    if (!layouts.has(output.name) && from !== undefined) lines.push(`  ${quoted(from)} -> ${id};`);
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}
