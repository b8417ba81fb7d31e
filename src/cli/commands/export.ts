// convc export: writes a model in a standard interchange format (ONNX) for other runtimes.
import { denseMasked, pipelines } from '../../passes/manager.js';
import { exportOnnx, onnxMaxBytes, onnxOpset, onnxSignature, type OnnxValueInfo } from '../../export/onnx.js';
import { graphCost, humanCount } from '../../ir/cost.js';
import { writeFileAtomically } from '../../util/atomic-write.js';
import { userError } from '../../util/diagnostics.js';
import { checkRegularFile } from '../../util/input-file.js';
import { checkOutputFile } from '../../util/output-path.js';
import { randomWeights } from '../../weights/random.js';
import type { CliIo } from '../io.js';
import { loadModel } from '../model.js';
import { inputSize, nonNegativeInt, parseCommandLine, requireOne, stringOption } from '../options.js';
import { loadWeights, unusedSeedNote, weightHelp, weightOptions } from '../weights.js';

export const exportFormats = ['onnx'] as const;

export const exportHelp = `convc export <file.cnx> --format onnx -o FILE [options]

Writes the model, with its weights, in a format other runtimes load:
  onnx   an ONNX model (opset ${onnxOpset}, standard ops only; IR version 8), weights as
         initializers; inputs and outputs float32, named as in the model: a classifier
         takes 'input' (NCHW) and returns 'output'; FCMAE takes 'input' and 'mask' ([N, L],
         1 = masked patch) and returns 'pred' and 'loss'
The export always starts from the unfused pipeline (one IR node per op): it is what the
format's own standard ops express, and runtimes fuse by themselves. Sparse regions (FCMAE's
encoder) are exported dense and masked, so the file runs on masks of any count. Without a weights option
the model gets seeded random weights (as --random-weights), and a note says so.

Options:
  --format NAME       the output format: ${exportFormats.join(' | ')} (required)
  -o, --out FILE      where to write (required); written whole or not at all, replacing
                      a regular file there; missing directories are created
${weightHelp}
  --model NAME        which model of the file to use (needed when it defines several)
  --batch N           fix the batch size to N; without it the batch axis is the symbol 'batch'
  --size HxW          input height x width, or one number for a square (default 224)
  -h, --help          show this help`;

export async function exportCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('export', args, {
    ...weightOptions,
    model: { type: 'string' },
    batch: { type: 'string' },
    size: { type: 'string' },
    format: { type: 'string' },
    out: { type: 'string', short: 'o' },
  });
  if (values.help) {
    io.stdout.write(`${exportHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'export', 'a .cnx file');
  const format = stringOption(values, 'format');
  if (format === undefined) throw userError(`convc export needs --format; formats: ${exportFormats.join(', ')}`);
  if (!(exportFormats as readonly string[]).includes(format)) throw userError(`unknown format '${format}'; formats: ${exportFormats.join(', ')}`);
  const outPath = stringOption(values, 'out');
  if (outPath === undefined) throw userError(`convc export needs an output file: -o FILE (see 'convc export --help')`);
  checkRegularFile(file, 'model file', { ignoreMissing: true });
  // Before the model is built and its weights drawn: a bad path fails in a moment.
  checkOutputFile(outPath, 'the output file', { createParents: true });
  const batchFixed = values.batch !== undefined;
  const size = inputSize(values);
  const { graph } = loadModel(file, { model: stringOption(values, 'model'), size, passes: denseMasked(pipelines.unfused) });
  // Checked before any weights are read or drawn: the largest zoo models do not fit.
  const { params } = graphCost(graph);
  if (4 * params > onnxMaxBytes) {
    throw userError(`${graph.name} has ${humanCount(params)} parameters (${(4 * params / 2 ** 30).toFixed(2)} GiB in f32): over the 2 GiB a single ONNX file can hold, and convc does not write ONNX external data yet`);
  }
  const seed = nonNegativeInt(values.seed, '--seed', 0);
  let weights = loadWeights(graph, values, seed);
  const seedNote = unusedSeedNote(values, false);
  if (seedNote) io.stderr.write(seedNote);
  if (!weights) {
    io.stderr.write(`note: no --weights given; exporting seeded random weights (--random-weights --seed ${seed})\n`);
    weights = randomWeights(graph, seed);
  }
  const batch = batchFixed ? 'fixed' : 'dynamic';
  const bytes = exportOnnx(graph, weights, { batch });
  writeFileAtomically(outPath, bytes, { what: 'the output file', createParents: true });
  const { inputs, outputs } = onnxSignature(graph, batch);
  const list = (values: readonly OnnxValueInfo[]) => values.map((v) => `${v.name} [${v.shape.join(', ')}]`).join(', ');
  // A classifier's line reads 'input [..] -> output [..]'; several inputs or outputs are listed.
  const signature = inputs.length === 1 && outputs.length === 1 ? `${list(inputs)} -> ${list(outputs)}` : `inputs ${list(inputs)} -> outputs ${list(outputs)}`;
  io.stdout.write(
    `exported ${graph.name} to ${outPath}: ONNX opset ${onnxOpset}, ${signature}, ` +
      `${humanCount(params)} params, ${(bytes.length / 2 ** 20).toFixed(1)} MiB\n`,
  );
  return 0;
}
