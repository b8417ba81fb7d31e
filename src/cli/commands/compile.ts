// convc compile: checks a model and writes the compiled artifact. For now that is the
// verified IR (graph.json) and a human-readable summary; backends add their outputs here.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { inspectReport } from './inspect.js';
import { loadModel, parsePassList } from '../model.js';
import { inputSize, modelHelp, modelOptions, parseCommandLine, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';
import type { CliIo } from '../io.js';
import { humanCount } from '../../ir/cost.js';
import { graphToJson, printGraph } from '../../ir/print.js';
import { formatShape } from '../../ir/types.js';
import { writeDirectoryAtomically } from '../../util/atomic-write.js';

export const compileHelp = `convc compile <file.cnx> [options]

Parses and checks the model, builds its IR for one input size, runs the pass pipeline
(verifying the graph after every pass) and writes the compiled artifact:
  DIR/graph.json    the verified IR graph
  DIR/summary.txt   shapes, parameter count, MACs and the graph in text form
The directory is written whole or not at all.

Options:
  -o, --out-dir DIR   where to write (default: build/<model name>)
${modelHelp}
${sizeHelp}
  -h, --help          show this help`;

export async function compileCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('compile', args, {
    ...modelOptions,
    ...sizeOptions,
    'out-dir': { type: 'string', short: 'o' },
  });
  if (values.help) {
    io.stdout.write(`${compileHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'compile', 'a .cnx file');
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes: parsePassList(stringOption(values, 'passes')) });
  const outDir = stringOption(values, 'out-dir') ?? join('build', graph.name);
  const report = inspectReport(graph, file);
  await writeDirectoryAtomically(outDir, (dir) => {
    writeFileSync(join(dir, 'graph.json'), `${JSON.stringify(graphToJson(graph), null, 1)}\n`);
    const summary = [
      `model   ${report.model}  (${file})`,
      `input   ${formatShape(report.input)} f32`,
      `output  ${formatShape(report.output)} f32`,
      `params  ${report.params} (${humanCount(report.params)})`,
      `MACs    ${report.macs} (${humanCount(report.macs)})`,
      '',
      printGraph(graph),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'summary.txt'), summary);
  });
  io.stdout.write(
    `compiled ${graph.name}: ${formatShape(report.input)} -> ${formatShape(report.output)}, ` +
      `${humanCount(report.params)} params, ${humanCount(report.macs)} MACs, ${graph.nodes.length} nodes\n` +
      `wrote ${outDir}/graph.json and ${outDir}/summary.txt\n`,
  );
  return 0;
}
