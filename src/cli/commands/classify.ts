// convc classify: ImageNet classes of image files, through the official models' evaluation
// transform (src/image/preprocess.ts) and any backend.
import { chosenPasses, loadModel } from '../model.js';
import { backendOption, backends, checkPrecision, executeOnBackend, gpujsModeOption } from '../backend-run.js';
import { adapterHelp, modelOptions, nonNegativeInt, parseCommandLine, positiveInt, precisionHelp, precisionOption, precisionOptions, stringOption, tuningHelp, tuningOptions } from '../options.js';
import { progress, type CliIo } from '../io.js';
import { loadWeights, unusedSeedNote, weightHelp, weightOptions } from '../weights.js';
import { decodeImageFile } from '../../image/decode.js';
import { imagenetEval, resizeSizeFor, type ImageTensor } from '../../image/preprocess.js';
import { topClasses, type RankedClass } from '../../image/classes.js';
import { graphInput, mainOutput } from '../../ir/graph-io.js';
import { formatShape, type Graph } from '../../ir/types.js';
import { runFailure, userError } from '../../util/diagnostics.js';

/** Images per run: a batch amortises a run's setup; more only holds more memory. */
const BATCH = 8;

export const classifyHelp = `convc classify <file.cnx> (--weights W.safetensors | --random-weights) IMAGE... [options]

Classifies JPEG and PNG images with an ImageNet-1k model and prints each one's top classes,
with ImageNet's class names and softmax probabilities. Each image goes through the evaluation
transform of the official ConvNeXt models, as torchvision computes it: the shorter side resized
to 256 (bicubic, antialiased, as PIL does), the centre 224x224 cropped, then normalised with
ImageNet's mean and std. With --size S the crop is S and the resize floor(S * 256 / 224).
Images are run in batches of ${BATCH}.

Options:
${weightHelp}
  --top K             how many classes to print per image (default 5)
  --size S            crop size, a square (default 224); the model runs at S x S
  --json              print [{"file", "top": [{"index", "label", "prob"}, ...]}, ...] instead:
                      index is the 0-based class, prob its softmax probability
  --backend NAME      ${backends.join(' | ')} (default reference)
  --gpujs-mode MODE   gpu | cpu: the gpu.js mode the gpujs backend must run in (default gpu)
  --verbose           say which adapter and driver the webgpu backend uses
${adapterHelp}
${precisionHelp} (webgpu, cuda, cuda-emulated)
${tuningHelp}
  --model NAME        which model of the file to use (needed when it defines several)
  --no-fuse           run the unfused pipeline (one kernel per op) instead of the fused one
  --passes a,b,...    run exactly these passes, in order (see 'convc inspect --help')
  -h, --help          show this help`;

/** An image file as the model's input: decoded, resized, cropped and normalised. */
async function preprocess(image: string, size: number): Promise<ImageTensor> {
  const decoded = await decodeImageFile(image);
  try {
    return imagenetEval(decoded, size);
  } catch (error) {
    throw userError(`${image}: ${(error as Error).message} (the image is ${decoded.width}x${decoded.height}; --size ${size} resizes its shorter side to ${resizeSizeFor(size)})`);
  }
}

interface Classified {
  readonly file: string;
  readonly top: readonly RankedClass[];
}

export async function classifyCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('classify', args, {
    ...modelOptions,
    ...weightOptions,
    ...precisionOptions,
    ...tuningOptions,
    top: { type: 'string' },
    size: { type: 'string' },
    json: { type: 'boolean' },
    backend: { type: 'string' },
    'gpujs-mode': { type: 'string' },
    verbose: { type: 'boolean' },
    adapter: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${classifyHelp}\n`);
    return 0;
  }
  if (values['dense-mask'] !== undefined) throw userError('--dense-mask is for models with a sparse region (FCMAE); classify runs classifiers');
  const [file, ...images] = positionals;
  if (file === undefined) throw userError("convc classify needs a .cnx file and images (see 'convc classify --help')");
  if (!file.endsWith('.cnx')) throw userError(`convc classify takes the model's .cnx file first, then images; '${file}' is not a .cnx file`);
  if (images.length === 0) throw userError('convc classify needs at least one image file (JPEG or PNG) after the .cnx file');
  if (values.weights === undefined && values['random-weights'] !== true) throw userError('convc classify needs weights: --weights FILE (or --random-weights, whose classes mean nothing)');
  const top = positiveInt(values.top, '--top', 5);
  const size = positiveInt(values.size, '--size', 224);
  const backend = backendOption(values);
  const precision = precisionOption(values);
  checkPrecision(precision, backend);
  const gpujsMode = gpujsModeOption(values, backend);
  const model = stringOption(values, 'model');
  const passes = chosenPasses(values);

  const shapeOf = (batch: number) => ({ batch, height: size, width: size });
  const { graph } = loadModel(file, { model, size: shapeOf(1), passes });
  const output = graph.outputs.find((o) => o.id === mainOutput(graph))!;
  const outputShape = graph.nodes[output.id].type.shape;
  if (graph.outputs.length !== 1 || outputShape.length !== 2) {
    throw userError(`'${graph.name}' is not a classifier: classify needs one output of logits [N, classes], and its output is ${graph.outputs.map((o) => `${o.name} ${formatShape(graph.nodes[o.id].type.shape)}`).join(', ')}`);
  }
  if (graphInput(graph, 'input').type.shape[1] !== 3) throw userError(`'${graph.name}' takes ${graphInput(graph, 'input').type.shape[1]} input channels; classify feeds RGB images (3)`);
  const weights = loadWeights(graph, values, nonNegativeInt(values.seed, '--seed', 0))!;
  const seedNote = unusedSeedNote(values, false);
  if (seedNote) io.stderr.write(seedNote);
  if (values['random-weights'] === true) io.stderr.write('note: random weights: the classes below mean nothing\n');

  // The reference backend's graph per batch size: every full batch shares one, the last its own.
  const graphs = new Map([[1, graph]]);
  const graphOfBatch = (batch: number): Graph => {
    if (!graphs.has(batch)) graphs.set(batch, loadModel(file, { model, size: shapeOf(batch), passes }).graph);
    return graphs.get(batch)!;
  };
  const results: Classified[] = [];
  // Over several batches only: one batch has the backend's own progress.
  const bar = images.length > BATCH ? progress(io, `classifying ${images.length} images`) : undefined;
  let where = backend as string;
  const plane = 3 * size * size;
  for (let start = 0; start < images.length; start += BATCH) {
    // Decoded a batch at a time: the memory held does not grow with the number of images.
    const files = images.slice(start, start + BATCH);
    const batch = files.length;
    const input = { shape: [batch, 3, size, size], data: new Float32Array(batch * plane) };
    for (const [i, image] of files.entries()) input.data.set((await preprocess(image, size)).data, i * plane);
    const run = await executeOnBackend({
      backend,
      file,
      model,
      passes,
      size: shapeOf(batch),
      visiblePatches: undefined,
      graph: graphOfBatch(batch),
      weights,
      inputs: { input },
      precision,
      gpujsMode,
      values,
      debugNonFinite: false,
      io,
    });
    where = run.where;
    const logits = run.outputs[output.name];
    const classes = logits.shape[1];
    for (let i = 0; i < batch; i++) {
      const row = logits.data.subarray(i * classes, (i + 1) * classes);
      const image = images[start + i];
      if (row.some((v) => !Number.isFinite(v))) throw runFailure(`${graph.name} on ${where}: the logits of ${image} hold a non-finite value`, [`rerun with 'convc run --debug-nonfinite' to find the kernel that produced it`]);
      results.push({ file: image, top: topClasses(row, top) });
    }
    bar?.update(start + batch, images.length);
  }
  bar?.finish();

  if (values.json === true) {
    io.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return 0;
  }
  const lines = [`${graph.name} on ${where}, ${size}x${size} crops:`];
  for (const { file: image, top: ranked } of results) {
    lines.push(`${image}:`);
    for (const c of ranked) lines.push(`  ${(100 * c.prob).toFixed(2).padStart(6)}%  ${String(c.index).padStart(4)}  ${c.label}`);
  }
  io.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
