// convc inspect: what a model is made of, what it costs, and what fusion did to it.
import { chosenPasses, loadModel } from '../model.js';
import { inputSize, modelHelp, modelOptions, parseCommandLine, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';
import type { CliIo } from '../io.js';
import { lowerToWgsl } from '../../backends/wgsl/lower.js';
import type { WgslProgram } from '../../backends/wgsl/program.js';
import { graphCost, humanCount } from '../../ir/cost.js';
import { printGraph } from '../../ir/print.js';
import { formatShape, type Graph } from '../../ir/types.js';
import { passRegistry, pipelines } from '../../passes/manager.js';
import { userError } from '../../util/diagnostics.js';

export const inspectHelp = `convc inspect <file.cnx> [options]

Prints a model's input and output shapes, parameter count, MACs (multiply-adds of conv and
linear layers, the papers' "FLOPs"), op counts, and what one forward pass costs on the WGSL
backend: kernel dispatches and the bytes they bind (an estimate of memory traffic).

Options:
${modelHelp}
${sizeHelp}
  --graph             also print the IR graph
  --after PASS        print the IR graph as it is right after PASS, and stop
  --kernels           also list the WGSL dispatches of one forward pass
  --json              print JSON instead: {model, file, pipeline, input, output, params, macs,
                      dispatches, bytes_moved, ops, nodes}
  -h, --help          show this help

Pipelines: fused (the default): ${pipelines.fused.join(', ')}
           unfused (--no-fuse): ${pipelines.unfused.join(', ')}
Passes:
${[...passRegistry.values()].map((p) => `  ${p.name.padEnd(20)}${p.description}`).join('\n')}`;

export interface InspectReport {
  readonly model: string;
  readonly file: string;
  readonly pipeline: readonly string[];
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly params: number;
  readonly macs: number;
  /** Kernel dispatches of one forward pass on the WGSL backend. */
  readonly dispatches: number;
  /** Bytes the dispatches bind, summed: an estimate of the memory traffic of one pass. */
  readonly bytes_moved: number;
  readonly ops: Readonly<Record<string, number>>;
  readonly nodes: number;
}

export function inspectReport(graph: Graph, file: string, pipeline: readonly string[], program: WgslProgram = lowerToWgsl(graph)): InspectReport {
  const cost = graphCost(graph);
  const input = graph.nodes.find((n) => n.op === 'input')!;
  return {
    model: graph.name,
    file,
    pipeline,
    input: input.type.shape,
    output: graph.nodes[graph.output].type.shape,
    params: cost.params,
    macs: cost.macs,
    dispatches: program.dispatches.length,
    bytes_moved: program.dispatches.reduce((sum, d) => sum + d.bytes, 0),
    ops: cost.ops,
    nodes: graph.nodes.length,
  };
}

export async function inspectCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('inspect', args, {
    ...modelOptions,
    ...sizeOptions,
    graph: { type: 'boolean' },
    after: { type: 'string' },
    kernels: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${inspectHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'inspect', 'a .cnx file');
  const passes = chosenPasses(values);
  const after = stringOption(values, 'after');
  if (after !== undefined && !passes.includes(after)) {
    throw userError(`--after ${after}: that pass is not in the pipeline (${passes.join(', ') || 'no passes'})`);
  }
  let snapshot: Graph | undefined;
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes }, (t) => {
    if (t.pass === after) snapshot = t.graph;
  });
  if (snapshot) {
    io.stdout.write(`# after ${after}\n${printGraph(snapshot)}\n`);
    return 0;
  }
  const program = lowerToWgsl(graph);
  const report = inspectReport(graph, file, passes, program);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const ops = Object.entries(report.ops)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
  io.stdout.write(
    [
      `model       ${report.model}  (${file})`,
      `pipeline    ${passes.join(', ') || '(none)'}`,
      `input       ${formatShape(report.input)} f32`,
      `output      ${formatShape(report.output)} f32`,
      `params      ${report.params.toLocaleString('en-US')} (${humanCount(report.params)})`,
      `MACs        ${report.macs.toLocaleString('en-US')} (${humanCount(report.macs)})`,
      `dispatches  ${report.dispatches} (WGSL, one forward pass)`,
      `bytes       ${report.bytes_moved.toLocaleString('en-US')} (${humanCount(report.bytes_moved)}B bound by those dispatches)`,
      `ops         ${ops}`,
      '',
    ].join('\n'),
  );
  if (values.kernels) {
    io.stdout.write(`\n${program.dispatches.map((d, i) => `${String(i).padStart(4)}  ${program.shaders[d.shader].name.padEnd(28)} ${d.covers}`).join('\n')}\n`);
  }
  if (values.graph) io.stdout.write(`\n${printGraph(graph)}\n`);
  return 0;
}
