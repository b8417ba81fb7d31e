// The verifier: every graph, after elaboration and after every pass, must satisfy these.
// A failure here is a compiler bug, never a user mistake, so it throws a plain Error.
import { inferNode, paramSetsOf, stepsOf } from './fusion.js';
import { graphInputs } from './graph-io.js';
import { getOp, opRegistry } from './registry.js';
import { formatShape, sameShape, type Graph } from './types.js';

export function verifyGraph(graph: Graph, after = 'elaboration'): void {
  const problems: string[] = [];
  const seen = new Set<number>();
  const usedParams = new Set<string>();
  graph.nodes.forEach((node, index) => {
    const where = `node %${node.id} (${node.op}${node.name ? ` ${node.name}` : ''})`;
    if (node.id !== index) problems.push(`${where} is at position ${index}; ids must match positions`);
    if (!opRegistry.has(node.op)) {
      problems.push(`${where} uses an unknown op`);
      return;
    }
    const op = getOp(node.op);
    const { prologue, epilogue } = stepsOf(node);
    const operandCount = Math.max(op.arity, ...[...prologue, ...epilogue].flatMap((s) => s.operands.map((i) => i + 1)));
    if (node.inputs.length < op.arity || (!node.fusion && node.inputs.length !== op.arity) || node.inputs.length !== operandCount) {
      problems.push(`${where} has ${node.inputs.length} inputs; ${op.name}${node.fusion ? ' and its fused steps take' : ' takes'} ${operandCount}`);
    }
    for (const step of [...prologue, ...epilogue]) {
      if (!opRegistry.has(step.op)) problems.push(`${where} fuses an unknown op '${step.op}'`);
    }
    for (const input of node.inputs) {
      if (!seen.has(input)) problems.push(`${where} reads %${input}, which is not defined before it`);
    }
    const partials = node.fusion?.partials;
    if (partials !== undefined) {
      const [, , h, w] = node.type.shape;
      if (node.type.shape.length !== 4 || !Number.isInteger(partials.positions) || partials.positions < 1 || (h * w) % partials.positions !== 0) {
        problems.push(`${where} writes partial sums over runs of ${partials.positions} positions, which do not tile ${formatShape(node.type.shape)}`);
      }
    }
    const fromPartials = node.fusion?.fromPartials;
    if (fromPartials !== undefined && seen.has(node.inputs[0])) {
      const producer = graph.nodes[node.inputs[0]];
      if (producer.fusion?.partials?.positions !== fromPartials || producer.fusion.partials.op !== node.op) {
        problems.push(`${where} finishes partial sums over ${fromPartials} positions, which its input %${producer.id} does not write`);
      }
    }
    if (problems.length === 0) {
      try {
        const type = inferNode(node, node.inputs.map((i) => graph.nodes[i].type));
        if (!sameShape(type.shape, node.type.shape) || type.dtype !== node.type.dtype) {
          problems.push(`${where} says ${formatShape(node.type.shape)} ${node.type.dtype} but its shape rule gives ${formatShape(type.shape)} ${type.dtype}`);
        }
      } catch (error) {
        problems.push(`${where} fails its shape rule: ${(error as Error).message}`);
      }
      for (const set of paramSetsOf(node)) {
        for (const decl of getOp(set.op).params(set.attrs)) {
          const key = set.params[decl.role];
          const spec = key === undefined ? undefined : graph.params.get(key);
          if (!spec) problems.push(`${where} lacks its '${decl.role}' weight${set.op !== node.op ? ` (fused ${set.op})` : ''}`);
          else if (!sameShape(spec.shape, decl.shape)) problems.push(`${where} weight '${key}' is ${formatShape(spec.shape)}, expected ${formatShape(decl.shape)}`);
          if (key !== undefined) usedParams.add(key);
        }
      }
    }
    seen.add(node.id);
  });
  if (graph.outputs.length === 0) problems.push('a graph needs at least one output');
  for (const output of graph.outputs) if (!seen.has(output.id)) problems.push(`the output '${output.name}' %${output.id} is not a node of the graph`);
  if (new Set(graph.outputs.map((o) => o.name)).size !== graph.outputs.length) problems.push('two outputs share a name');
  for (const spec of graph.params.values()) {
    const derived = spec.derived;
    if (!derived || !usedParams.has(spec.key)) continue;
    for (const source of [derived.source, derived.scale]) {
      if (!graph.params.has(source)) problems.push(`derived weight '${spec.key}' comes from '${source}', which the graph lacks`);
      else if (graph.params.get(source)!.derived) problems.push(`derived weight '${spec.key}' comes from another derived weight '${source}'`);
      usedParams.add(source);
    }
  }
  for (const key of graph.params.keys()) if (!usedParams.has(key)) problems.push(`weight '${key}' is read by no node`);
  const inputs = graphInputs(graph);
  if (!inputs.some((i) => i.name === 'input')) problems.push('a graph needs an image input');
  if (new Set(inputs.map((i) => i.name)).size !== inputs.length) problems.push('two input nodes share a name');
  if (problems.length > 0) {
    throw new Error(`internal: graph '${graph.name}' is invalid after ${after}:\n  ${problems.join('\n  ')}`);
  }
}
