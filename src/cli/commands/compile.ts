// convc compile: checks a model and writes the compiled artifact: the verified IR, the WGSL
// kernels and a TypeScript runner (plus its JavaScript), and with weights, weights.bin.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectReport } from './inspect.js';
import { chosenPasses, loadModel } from '../model.js';
import { inputSize, modelHelp, modelOptions, nonNegativeInt, parseCommandLine, precisionHelp, precisionOption, precisionOptions, requireOne, sizeHelp, sizeOptions, stringOption, tuningHelp, tuningOptions } from '../options.js';
import { scheduleForCommand } from '../../tune/lookup.js';
import { webgpuDefaultTarget } from '../../kernel/target.js';
import type { CliIo } from '../io.js';
import { loadWeights, unusedSeedNote, weightHelp, weightOptions } from '../weights.js';
import { lowerToWgsl, packWeights } from '../../backends/wgsl/lower.js';
import { generateRunnerFiles } from '../../backends/wgsl/runner.js';
import { humanCount } from '../../ir/cost.js';
import { graphToJson, printGraph } from '../../ir/print.js';
import { formatShape } from '../../ir/types.js';
import { writeDirectoryAtomically, writeLargeFile } from '../../util/atomic-write.js';
import { checkRegularFile } from '../../util/input-file.js';
import { yieldToSignals } from '../../util/interrupt-cleanup.js';
import { outputMarkerName, planOutputDirectory } from '../../util/output-directory.js';

export const compileHelp = `convc compile <file.cnx> [options]

Parses and checks the model, builds its IR for one input size, runs the pass pipeline
(verifying the graph after every pass) and writes a self-contained package:
  DIR/model.ts        the runner: createModel(device, weights) -> { run(input), destroy() };
                      it imports nothing but the WebGPU API (types: @webgpu/types)
  DIR/model.js        the same runner as JavaScript
  DIR/kernels/*.wgsl  the WGSL kernels the runner embeds, one file per kernel
  DIR/weights.bin     with --weights or --random-weights: the weights packed for the runner
  DIR/graph.json      the verified IR graph
  DIR/summary.txt     shapes, parameter count, MACs and the graph in text form
  DIR/${outputMarkerName}   marks DIR as convc's output and lists the files above
The directory is written whole or not at all: in a staging directory beside DIR, removed on
an error or Ctrl-C, then renamed into place. DIR may be new, empty, or a previous convc output
holding only the files it wrote, which is replaced; anything else is refused (a file always).

Options:
  -o, --out-dir DIR   where to write (default: build/<model name>)
  --force             replace DIR even if it holds files convc did not write; never a file,
                      /, a home directory, the current directory or one holding it, or one
                      holding the model or weights being compiled
${weightHelp}
${modelHelp}
${sizeHelp}
${precisionHelp}
${tuningHelp}
                      (compile uses a tuning file only when given one: its runner is portable)
  --verbose           say which tuning file is used
  -h, --help          show this help`;

export async function compileCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('compile', args, {
    ...modelOptions,
    ...sizeOptions,
    ...weightOptions,
    ...precisionOptions,
    ...tuningOptions,
    verbose: { type: 'boolean' },
    'out-dir': { type: 'string', short: 'o' },
    force: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${compileHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'compile', 'a .cnx file');
  const precision = precisionOption(values);
  checkRegularFile(file, 'model file', { ignoreMissing: true });
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size: inputSize(values), passes: chosenPasses(values) });
  // Where the output goes is settled before the weights are read or drawn and the model lowered.
  const explicitOut = stringOption(values, 'out-dir');
  const outDir = explicitOut ?? join('build', graph.name);
  const weightsPath = stringOption(values, 'weights');
  const plan = planOutputDirectory(outDir, {
    force: values.force === true,
    createParents: explicitOut === undefined,
    inputs: [{ path: file, what: 'model file' }, ...(weightsPath === undefined ? [] : [{ path: weightsPath, what: 'weights file' }])],
  });
  const weights = loadWeights(graph, values, nonNegativeInt(values.seed, '--seed', 0));
  const seedNote = unusedSeedNote(values, false);
  if (seedNote) io.stderr.write(seedNote);
  const schedule = scheduleForCommand(values, { adapter: undefined, graphs: [graph], target: webgpuDefaultTarget, precision, say: (line) => io.stderr.write(`${line}\n`) });
  const program = lowerToWgsl(graph, { precision, ...(schedule ? { schedule } : {}) });
  const report = inspectReport(graph, file, chosenPasses(values), program);
  const runner = generateRunnerFiles(program);
  const packed = weights ? packWeights(graph, program, weights) : undefined;
  // Only writing happens while the staging directory exists; each step lets a Ctrl-C through.
  await writeDirectoryAtomically(plan, async (dir) => {
    writeFileSync(join(dir, 'model.ts'), runner.ts);
    writeFileSync(join(dir, 'model.js'), runner.js);
    mkdirSync(join(dir, 'kernels'));
    program.shaders.forEach((shader, index) => {
      writeFileSync(join(dir, 'kernels', `${String(index).padStart(3, '0')}-${shader.name}.wgsl`), shader.code);
    });
    await yieldToSignals();
    if (packed) await writeLargeFile(join(dir, 'weights.bin'), new Uint8Array(packed.buffer, packed.byteOffset, packed.byteLength));
    writeFileSync(join(dir, 'graph.json'), `${JSON.stringify(graphToJson(graph), null, 1)}\n`);
    const summary = [
      `model       ${report.model}  (${file})`,
      ...namedLines('input', report.inputs),
      ...namedLines('output', report.outputs),
      `params      ${report.params} (${humanCount(report.params)})`,
      `MACs        ${report.macs} (${humanCount(report.macs)})`,
      `dispatches  ${program.dispatches.length} (WGSL, ${program.shaders.length} distinct kernels)`,
      `storage     ${precision} activations and weights${precision === 'f16' ? ' (the device needs shader-f16), f32 arithmetic' : ''}`,
      '',
      printGraph(graph),
      '',
    ].join('\n');
    writeFileSync(join(dir, 'summary.txt'), summary);
  });
  io.stdout.write(
    `compiled ${graph.name}: ${signature(report.inputs)} -> ${signature(report.outputs)}, ` +
      `${humanCount(report.params)} params, ${humanCount(report.macs)} MACs, ${program.dispatches.length} WGSL dispatches\n` +
      `wrote ${outDir.replace(/[\\/]+$/, '')}/ (model.ts, model.js, ${program.shaders.length} kernels${weights ? ', weights.bin' : ''}, graph.json, summary.txt)\n`,
  );
  return 0;
}

/** `input       [1, 3, 224, 224] f32`, or a line per name where a model has several. */
function namedLines(what: string, tensors: readonly { readonly name: string; readonly shape: readonly number[] }[]): string[] {
  return tensors.map((t) => `${(tensors.length === 1 ? what : `${what} ${t.name}`).padEnd(11)} ${formatShape(t.shape)} f32`);
}

/** `[1, 3, 224, 224]`, or `input [..], mask [..]` where a model has several. */
function signature(tensors: readonly { readonly name: string; readonly shape: readonly number[] }[]): string {
  return tensors.length === 1 ? formatShape(tensors[0].shape) : tensors.map((t) => `${t.name} ${formatShape(t.shape)}`).join(', ');
}
