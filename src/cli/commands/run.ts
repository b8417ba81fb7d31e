// convc run: executes a model on an input with real or random weights.
import { chosenPasses, loadModel } from '../model.js';
import { backendOption, backends, checkPrecision, executeOnBackend, gpujsModeOption } from '../backend-run.js';
import { adapterHelp, inputSize, modelHelp, modelOptions, nonNegativeInt, parseCommandLine, positiveInt, precisionHelp, precisionOption, precisionOptions, requireOne, sizeOptions, stringOption, tuningHelp, tuningOptions } from '../options.js';
import type { CliIo } from '../io.js';
import { graphInput, mainOutput } from '../../ir/graph-io.js';
import { visibleCount } from '../../ir/ops/patch-compaction.js';
import { checkMaskOptions, chooseMask, describeMask, maskHelp, maskOptions, writeMaskOut } from '../mask.js';
import { readNpy, writeNpy } from '../../io/npy.js';
import { peakHostBytes } from '../../ir/cost.js';
import { formatShape, type HostTensor } from '../../ir/types.js';
import { runFailure, userError } from '../../util/diagnostics.js';
import { writeFileAtomically } from '../../util/atomic-write.js';
import { checkOutputFile } from '../../util/output-path.js';
import { randomInput } from '../../weights/random.js';
import { loadWeights, readBytes, unusedSeedNote, weightHelp, weightOptions } from '../weights.js';

export { backends } from '../backend-run.js';

/** Host memory a run may need before it is refused, in GiB: a third of a 24 GiB machine. */
const DEFAULT_MAX_MEMORY_GIB = 8;

export const runHelp = `convc run <file.cnx> (--weights W.safetensors | --random-weights) [options]

Runs the model and prints the output's shape and, for logits, each sample's top classes.
The reference backend is the plain CPU executor every other backend is checked against;
webgpu compiles the model to WGSL and runs its generated runner on a WebGPU adapter (a real
GPU, or the software driver that scripts/setup-webgpu.sh installs, found automatically).
cuda compiles it to CUDA C (with nvcc; compiled kernels are cached) and runs its generated
runner on the NVIDIA driver (libcuda.so.1); cuda-emulated runs the same runner and kernels.cu
on convc's emulated driver, the kernels compiled by g++ for the CPU: slow, for checking.
gpujs compiles it to gpu.js kernel functions and runs its generated runner on gpu.js: on WebGL
through headless-gl (the gl package, built by scripts/setup-gpujs.sh; a private Xvfb display is
started where there is none), or with --gpujs-mode cpu as JavaScript on the CPU.

Options:
${weightHelp} and for a random input
  --input FILE        input tensor, .npy float32 NCHW (batch >= 1, any size the model accepts);
                      without it, a random N(0, 1) input of --batch and --size is used
  --out FILE          write the output tensor here as .npy float32 (FCMAE: its prediction)
${maskHelp}
  --loss-out FILE     for models with a loss output (FCMAE): write it as a .npy float32 scalar
  --backend NAME      ${backends.join(' | ')} (default reference)
  --gpujs-mode MODE   gpu | cpu: the gpu.js mode the gpujs backend must run in (default gpu)
  --verbose           say which adapter and driver the webgpu backend uses
${adapterHelp}
${precisionHelp} (webgpu, cuda, cuda-emulated; gpujs stores f32)
${tuningHelp}
                      (webgpu; --verbose says which is used)
  --max-memory GIB    refuse, before allocating, a run whose weights and activations need more
                      host memory than this (default ${DEFAULT_MAX_MEMORY_GIB})
  --debug-nonfinite   when the output holds a NaN or an infinity (always an error, exit 1),
                      find the first kernel (webgpu) or IR node (reference) that produced one
                      (not on the cuda and gpujs backends)
${modelHelp}
  --batch N           batch size of the random input used without --input (default 1)
  --size HxW          size of that random input, HxW or one number (default 224)
  -h, --help          show this help`;

function topClasses(output: HostTensor, count: number): string[] {
  const [n, classes] = output.shape;
  const lines: string[] = [];
  for (let b = 0; b < Math.min(n, 4); b++) {
    const row = output.data.subarray(b * classes, (b + 1) * classes);
    const order = [...row.keys()].sort((i, j) => row[j] - row[i]).slice(0, count);
    lines.push(`  sample ${b}: ${order.map((i) => `${i} (${row[i].toFixed(4)})`).join(', ')}`);
  }
  if (n > 4) lines.push(`  ... ${n - 4} more samples`);
  return lines;
}

export async function runCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('run', args, {
    ...modelOptions,
    ...sizeOptions,
    ...weightOptions,
    ...precisionOptions,
    input: { type: 'string' },
    out: { type: 'string' },
    ...maskOptions,
    'loss-out': { type: 'string' },
    backend: { type: 'string' },
    'gpujs-mode': { type: 'string' },
    verbose: { type: 'boolean' },
    ...tuningOptions,
    'debug-nonfinite': { type: 'boolean' },
    adapter: { type: 'string' },
    'max-memory': { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${runHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'run', 'a .cnx file');
  const backend = backendOption(values);
  const precision = precisionOption(values);
  checkPrecision(precision, backend);
  const gpujsMode = gpujsModeOption(values, backend);
  if (values.weights === undefined && values['random-weights'] !== true) {
    throw userError('convc run needs weights: --weights FILE or --random-weights');
  }
  // Before the model runs: a bad --out path fails in a moment, not after the run.
  if (stringOption(values, 'out') !== undefined) checkOutputFile(stringOption(values, 'out')!, 'the output file');
  if (stringOption(values, 'loss-out') !== undefined) checkOutputFile(stringOption(values, 'loss-out')!, 'the loss output file');
  checkMaskOptions(values);
  const seed = nonNegativeInt(values.seed, '--seed', 0);
  const inputPath = stringOption(values, 'input');
  let input: HostTensor;
  if (inputPath !== undefined) {
    if (values.batch !== undefined || values.size !== undefined) throw userError('--batch and --size describe a random input; with --input the file gives the shape');
    input = readNpy(readBytes(inputPath, 'input'), inputPath);
    if (input.shape.length !== 4) throw userError(`${inputPath}: the input must be NCHW (rank 4), but it has shape ${formatShape(input.shape)}`);
    if (input.shape.some((d) => d < 1)) throw userError(`${inputPath}: the input has an empty axis: ${formatShape(input.shape)}`);
  } else {
    const size = inputSize(values);
    input = { shape: [size.batch, 0, size.height, size.width], data: new Float32Array(0) };
  }
  const [batch, , height, width] = input.shape;
  const passes = chosenPasses(values);
  const model = stringOption(values, 'model');
  // The mask (for models that take one) decides how many patches a sparse region computes.
  const mask = chooseMask(loadModel(file, { model, size: { batch, height, width }, passes: [] }).graph, values, seed);
  const visiblePatches = mask && visibleCount(mask.given);
  const { graph } = loadModel(file, { model, size: { batch, height, width }, passes, visiblePatches });
  const maxMemory = positiveInt(values['max-memory'], '--max-memory', DEFAULT_MAX_MEMORY_GIB);
  const needed = peakHostBytes(graph);
  if (needed > maxMemory * 2 ** 30) {
    throw userError(
      `${graph.name} at input ${formatShape(graphInput(graph, 'input').type.shape)} needs about ${(needed / 2 ** 30).toFixed(1)} GiB of host memory ` +
        `for its weights and activations, more than the limit of ${maxMemory} GiB; use a smaller batch or input size, or raise --max-memory`,
    );
  }
  const inputNode = graphInput(graph, 'input');
  if (values['loss-out'] !== undefined && !graph.outputs.some((o) => o.name === 'loss')) throw userError(`--loss-out: '${graph.name}' computes no loss (only models such as FCMAE do)`);
  if (mask?.note) io.stderr.write(mask.note);
  if (inputPath === undefined) {
    input = randomInput(inputNode.type.shape, seed + 1);
    io.stderr.write(`note: no --input given; using a random N(0, 1) input of shape ${formatShape(input.shape)}\n`);
  } else if (input.shape[1] !== inputNode.type.shape[1]) {
    throw userError(`${inputPath}: the input has ${input.shape[1]} channels (shape ${formatShape(input.shape)}), but model '${graph.name}' takes ${inputNode.type.shape[1]}`);
  }
  const weights = loadWeights(graph, values, seed)!;
  const seedNote = unusedSeedNote(values, inputPath === undefined || (mask !== undefined && values.mask === undefined));
  if (seedNote) io.stderr.write(seedNote);
  const debugNonFinite = values['debug-nonfinite'] === true;
  const { outputs, where, origin } = await executeOnBackend({
    backend,
    file,
    model,
    passes,
    size: { batch, height, width },
    visiblePatches,
    graph,
    weights,
    inputs: { input, ...(mask ? { mask: mask.graph } : {}) },
    precision,
    gpujsMode,
    values,
    debugNonFinite,
    io,
  });
  for (const [name, value] of Object.entries(outputs)) {
    const nonFinite = value.data.reduce((count, v) => (Number.isFinite(v) ? count : count + 1), 0);
    if (nonFinite === 0) continue;
    const first = value.data.findIndex((v) => !Number.isFinite(v));
    const what = graph.outputs.length === 1 ? 'the output' : `the output '${name}'`;
    throw runFailure(`${graph.name} on ${where}: ${what} has ${nonFinite} non-finite value(s) of ${value.data.length} (first: ${value.data[first]} at element ${first})`, [
      origin ?? (debugNonFinite ? 'every dispatch wrote finite values; the non-finite value arose in the final read-back' : 'rerun with --debug-nonfinite to find the first kernel that produced one'),
    ]);
  }
  const output = outputs[graph.outputs.find((o) => o.id === mainOutput(graph))!.name];
  const loss = outputs.loss as HostTensor | undefined;
  const outPath = stringOption(values, 'out');
  const lossPath = stringOption(values, 'loss-out');
  const written = [outPath, lossPath].filter((p) => p !== undefined);
  if (outPath !== undefined) writeFileAtomically(outPath, writeNpy(output));
  if (lossPath !== undefined) writeFileAtomically(lossPath, writeNpy({ shape: [], data: loss!.data }));
  const maskPath = mask && writeMaskOut(values, mask);
  if (maskPath) written.push(maskPath);
  const described = mask ? `input ${formatShape(input.shape)}, ${describeMask(mask)}` : `input ${formatShape(input.shape)}`;
  const results = graph.outputs.map((o) => `${graph.outputs.length === 1 ? 'output' : o.name} ${formatShape(outputs[o.name].shape)}`).join(', ');
  const lines = [`${graph.name} on ${where}: ${described} -> ${results}`];
  if (output.shape.length === 2) lines.push('top classes (index (logit)):', ...topClasses(output, 5));
  // f32's 7 significant digits; LOSS.npy holds every bit.
  if (loss) lines.push(`loss ${loss.data[0].toPrecision(7)}`);
  for (const path of written) lines.push(`wrote ${path}`);
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
