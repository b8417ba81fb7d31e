// convc inspect: what a model is made of and what it costs.
import { loadModel, parsePassList } from '../model.js';
import { inputSize, modelHelp, modelOptions, parseCommandLine, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';
import type { CliIo } from '../io.js';
import { graphCost, humanCount } from '../../ir/cost.js';
import { printGraph } from '../../ir/print.js';
import { formatShape, type Graph } from '../../ir/types.js';

export const inspectHelp = `convc inspect <file.cnx> [options]

Prints a model's input and output shapes, parameter count, MACs (multiply-adds of conv and
linear layers, the papers' "FLOPs") and op counts.

Options:
${modelHelp}
${sizeHelp}
  --graph             also print the IR graph
  --json              print JSON instead: {model, file, input, output, params, macs, ops, nodes}
  -h, --help          show this help`;

export interface InspectReport {
  readonly model: string;
  readonly file: string;
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly params: number;
  readonly macs: number;
  readonly ops: Readonly<Record<string, number>>;
  readonly nodes: number;
}

export function inspectReport(graph: Graph, file: string): InspectReport {
  const cost = graphCost(graph);
  const input = graph.nodes.find((n) => n.op === 'input')!;
  return {
    model: graph.name,
    file,
    input: input.type.shape,
    output: graph.nodes[graph.output].type.shape,
    params: cost.params,
    macs: cost.macs,
    ops: cost.ops,
    nodes: graph.nodes.length,
  };
}

export async function inspectCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('inspect', args, { ...modelOptions, ...sizeOptions, graph: { type: 'boolean' }, json: { type: 'boolean' } });
  if (values.help) {
    io.stdout.write(`${inspectHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'inspect', 'a .cnx file');
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes: parsePassList(stringOption(values, 'passes')) });
  const report = inspectReport(graph, file);
  if (values.json) {
    io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return 0;
  }
  const ops = Object.entries(report.ops)
    .map(([op, n]) => `${op} ${n}`)
    .join(', ');
  io.stdout.write(
    [
      `model   ${report.model}  (${file})`,
      `input   ${formatShape(report.input)} f32`,
      `output  ${formatShape(report.output)} f32`,
      `params  ${report.params.toLocaleString('en-US')} (${humanCount(report.params)})`,
      `MACs    ${report.macs.toLocaleString('en-US')} (${humanCount(report.macs)})`,
      `ops     ${ops}`,
      '',
    ].join('\n'),
  );
  if (values.graph) io.stdout.write(`\n${printGraph(graph)}\n`);
  return 0;
}
