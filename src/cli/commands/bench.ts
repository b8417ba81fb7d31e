// convc bench: fused vs unfused convc and ONNX Runtime, side by side on one adapter.
import { runBench } from '../../bench/bench.js';
import { formatTable, renderSvg } from '../../bench/report.js';
import { peers } from '../../bench/peers.js';
import { acquireGpu } from '../../backends/webgpu/device.js';
import { bindWeights } from '../../weights/bind.js';
import { randomInput, randomWeights } from '../../weights/random.js';
import { readSafetensors } from '../../io/safetensors.js';
import { pipelines } from '../../passes/manager.js';
import { userError } from '../../util/diagnostics.js';
import { writeFileAtomically } from '../../util/atomic-write.js';
import { progress, type CliIo } from '../io.js';
import { loadModel } from '../model.js';
import { inputSize, modelHelp, nonNegativeInt, parseCommandLine, positiveInt, requireOne, sizeHelp, sizeOptions, stringOption } from '../options.js';
import { readBytes } from '../weights.js';

export const benchHelp = `convc bench <file.cnx> [options]

Measures one forward pass of the model on a WebGPU adapter: convc fused and unfused, and
ONNX Runtime's WebGPU provider (same adapter) and CPU provider on the same input and weights
(the unfused graph exported to ONNX). Configurations run in alternation in one process, after
a warm-up; each reports the median, min and max ms per batch, images/s, GFLOP/s
(2 x MACs / median time) and, for convc, kernel dispatches. Kernel compilation and weight
upload are timed apart (setup). A peer that cannot start is reported with its error.

Options:
${modelHelp.split('\n')[0]}
${sizeHelp}
  --runs N            timed runs per configuration (default 10)
  --warmup N          untimed runs first (default 2)
  --peers a,b         which peers to run: ${peers.map((p) => p.name).join(', ')} (default: all); 'none' for none
  --weights FILE      safetensors weights (default: seeded random weights)
  --seed N            seed for the random weights and input (default 0)
  --json FILE         also write the results as JSON
  --svg FILE          also write a bar chart of images/s as SVG
  --verbose           say which adapter and driver are used
  -h, --help          show this help`;

export async function benchCommand(args: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandLine('bench', args, {
    model: { type: 'string' },
    ...sizeOptions,
    runs: { type: 'string' },
    warmup: { type: 'string' },
    peers: { type: 'string' },
    weights: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' },
    svg: { type: 'string' },
    verbose: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${benchHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'bench', 'a .cnx file');
  const runs = positiveInt(values.runs, '--runs', 10);
  const warmup = nonNegativeInt(values.warmup, '--warmup', 2);
  const seed = nonNegativeInt(values.seed, '--seed', 0);
  const peerList = stringOption(values, 'peers');
  const chosenPeers = peerList === undefined ? peers.map((p) => p.name) : peerList === 'none' ? [] : peerList.split(',').map((s) => s.trim());
  for (const name of chosenPeers) if (!peers.some((p) => p.name === name)) throw userError(`unknown peer '${name}'; peers: ${peers.map((p) => p.name).join(', ')}, or none`);
  const size = inputSize(values);
  const model = stringOption(values, 'model');
  const fused = loadModel(file, { model, size, passes: pipelines.fused }).graph;
  const unfused = loadModel(file, { model, size, passes: pipelines.unfused }).graph;
  const weightsPath = stringOption(values, 'weights');
  const tensors = weightsPath === undefined ? undefined : readSafetensors(readBytes(weightsPath, 'weights'), weightsPath);
  const weightsFor = (graph: typeof fused) => (tensors ? bindWeights(graph, tensors, weightsPath!) : randomWeights(graph, seed));
  weightsFor(fused); // a mismatched weights file fails here, before any GPU work
  const input = randomInput(fused.nodes[0].type.shape, seed + 1);

  const gpu = await acquireGpu({ verbose: values.verbose ? (line) => io.stderr.write(`${line}\n`) : undefined });
  const bar = progress(io, `bench ${fused.name}`, 0);
  try {
    io.stderr.write(`adapter: ${gpu.adapterInfo}\n`);
    const result = await runBench({ gpu, fused, unfused, weightsFor, input, runs, warmup, peers: chosenPeers, onProgress: (done, total) => bar.update(done, total) }, gpu.adapterInfo);
    bar.finish();
    io.stdout.write(`${formatTable(result)}\n`);
    const json = stringOption(values, 'json');
    if (json !== undefined) writeFileAtomically(json, `${JSON.stringify(result, null, 2)}\n`);
    const svg = stringOption(values, 'svg');
    if (svg !== undefined) writeFileAtomically(svg, renderSvg(result));
    return 0;
  } finally {
    gpu.destroy();
  }
}
