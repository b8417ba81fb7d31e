// convc bench: fused vs unfused convc and ONNX Runtime, side by side on one adapter.
import { randomInt } from 'node:crypto';
import { agreementTolerance, runBench, wrongConfigs, type BenchInputs } from '../../bench/bench.js';
import { formatProfile, formatTable, renderSvg } from '../../bench/report.js';
import { peers } from '../../bench/peers.js';
import { cudaChoices, type CudaChoice } from '../../bench/cuda-config.js';
import { gpujsChoices, type GpuJsChoice } from '../../bench/gpujs-config.js';
import { gpujsTarget } from '../../backends/gpujs/target.js';
import { cudaTarget } from '../../backends/cuda/target.js';
import { acquireGpu } from '../../backends/webgpu/device.js';
import { bindWeights } from '../../weights/bind.js';
import { randomInput, randomWeights } from '../../weights/random.js';
import { readSafetensors } from '../../io/safetensors.js';
import { denseMasked, pipelines, runPipeline } from '../../passes/manager.js';
import { formatSparseTable, runSparseBench, sparseConfigs } from '../../bench/sparse-bench.js';
import { graphInput, graphInputs } from '../../ir/graph-io.js';
import { visibleCount } from '../../ir/ops/patch-compaction.js';
import { sparseRegionResults, subgraph } from '../../ir/subgraph.js';
import type { Graph } from '../../ir/types.js';
import type { AdapterChoice } from '../../backends/webgpu/device.js';
import { chooseMask } from '../mask.js';
import type { Parsed } from '../options.js';
import { userError } from '../../util/diagnostics.js';
import { checkOutputFile } from '../../util/output-path.js';
import { writeFileAtomically } from '../../util/atomic-write.js';
import { progress, type CliIo } from '../io.js';
import { loadModel } from '../model.js';
import { adapterHelp, adapterOption, inputSize, modelHelp, nonNegativeInt, parseCommandLine, positiveInt, precisionOption, precisionOptions, requireOne, sizeHelp, sizeOptions, stringOption, tuningHelp, tuningOptions } from '../options.js';
import { scheduleForCommand } from '../../tune/lookup.js';
import { targetOfDevice } from '../../kernel/target.js';
import { readBytes } from '../weights.js';

export const benchHelp = `convc bench <file.cnx> [options]

Measures one forward pass of the model on a WebGPU adapter: convc fused and unfused, and
ONNX Runtime's WebGPU provider and CPU provider on the same input and weights (the unfused
graph exported to ONNX with the benchmarked batch and size fixed, as convc's kernels are).
After a warm-up, every round runs each configuration once, in an order shuffled per round from
a printed seed; each reports the median and interquartile range (IQR), min and max ms per
batch, images/s, GFLOP/s (2 x MACs / median time) and, for convc, kernel dispatches. Kernel
compilation and weight upload are timed apart (setup). A peer that cannot start is reported
with its error.

Every output is compared with the reference executor's; a configuration off by more than
${agreementTolerance.toExponential(0)} of the output's scale is marked WRONG, its ratios read 'wrong', and the command exits 1
after printing the table. onnxruntime-node can neither be given an adapter nor report its
own: ort-webgpu runs on Dawn's default adapter, reported as unverified, and is refused where
that cannot be convc's (e.g. --adapter gl).

Where a CUDA driver answers (libcuda.so.1 loads and sees a device), a 'convc cuda' row runs
the same model fused for the CUDA target as CUDA kernels (compiled by nvcc, cached) through
its generated runner, in the same rounds and held to the same bound; it runs on the CUDA
device the driver names, not on the WebGPU adapter, and 'cuda vs fused' says how many times
faster it is than convc fused on WebGPU. Elsewhere the row is left out (the JSON says why).

Where gpu.js's GL mode is available (the gl package built by scripts/setup-gpujs.sh, and an X
display or Xvfb), a 'convc gpujs' row likewise runs the model fused for the gpu.js target as
gpu.js kernels through its generated runner, on the display's OpenGL (on a machine without a
GPU, Mesa's llvmpipe on a private Xvfb), and 'gpujs vs fused' compares it with convc fused.

Options:
${modelHelp.split('\n')[0]}
${sizeHelp}
${adapterHelp}
  --runs N            timed runs per configuration (default 10)
  --warmup N          untimed runs first (default 2)
  --order-seed N      seed of the per-round shuffle of the run order (default: a random one,
                      printed with the results)
  --peers a,b         which peers to run: ${peers.map((p) => p.name).join(', ')} (default: all); 'none' for none
  --weights FILE      safetensors weights (default: seeded random weights)
  --seed N            seed for the random weights and input (default 0)
  --cuda WHEN         the convc cuda row: auto (where a CUDA driver answers; default), on (a
                      missing driver or a failed row is an error, and the command exits 1),
                      or off; always f32, default schedules (--tuning is WebGPU's)
  --gpujs WHEN        the convc gpujs row: auto (where gpu.js's GL mode is available; default),
                      on (unavailable or failed is an error, exit 1), or off
  --precision f16     also run convc fused storing activations and weights as f16 (its own
                      row, 'convc fused f16', held to 1e-2 of the output's scale; the adapter
                      needs shader-f16); f32, the default, adds nothing
  --profile           then time every dispatch of both convc pipelines with timestamp queries
                      (the adapter must offer 'timestamp-query'; lavapipe does): GPU ms per
                      kernel kind with calls, share, GFLOP/s and GB/s, and each fused kernel
                      beside the unfused kernels it replaces; median per dispatch of --runs
                      passes after --warmup (at least 1) untimed ones
  --mask-ratio R      models with a patch mask (FCMAE): mask this fraction of the patches at
                      random (from --seed; default: the model's mask_ratio), or
  --mask FILE         use this mask, .npy [N, L]; then the bench compares, instead of the
                      above, the forward pass computed on the visible patches only (sparse)
                      with the same computed everywhere and masked (dense), and apart, their
                      encoders (encoder_sparse, encoder_dense); --profile adds each one's GPU
                      time per pass from timestamp queries (free of the host's share)
  --json FILE         also write the results as JSON (with --profile, under "profile")
  --svg FILE          also write a bar chart of images/s as SVG
${tuningHelp}
                      (convc fused and unfused, f32)
  --verbose           say which adapter and driver, and which tuning file, are used
  -h, --help          show this help`;

/** Not reachable from the command line: lets a test make a configuration's output wrong. */
export interface BenchTestHooks {
  readonly tamperOutput?: BenchInputs['tamperOutput'];
  /** Runs the cuda row on convc's emulated driver (on the CPU), so it is tested without a GPU. */
  readonly cudaDriver?: BenchInputs['cudaDriver'];
}

function gpujsOption(values: Parsed['values']): GpuJsChoice {
  const value = stringOption(values, 'gpujs') ?? 'auto';
  if (!(gpujsChoices as readonly string[]).includes(value)) throw userError(`--gpujs needs one of ${gpujsChoices.join(', ')}; got '${value}'`);
  return value as GpuJsChoice;
}

function cudaOption(values: Parsed['values']): CudaChoice {
  const value = stringOption(values, 'cuda') ?? 'auto';
  if (!(cudaChoices as readonly string[]).includes(value)) throw userError(`--cuda needs one of ${cudaChoices.join(', ')}; got '${value}'`);
  return value as CudaChoice;
}

export async function benchCommand(args: readonly string[], io: CliIo, hooks: BenchTestHooks = {}): Promise<number> {
  const { values, positionals } = parseCommandLine('bench', args, {
    model: { type: 'string' },
    ...sizeOptions,
    adapter: { type: 'string' },
    runs: { type: 'string' },
    warmup: { type: 'string' },
    'order-seed': { type: 'string' },
    peers: { type: 'string' },
    weights: { type: 'string' },
    seed: { type: 'string' },
    json: { type: 'string' },
    svg: { type: 'string' },
    verbose: { type: 'boolean' },
    profile: { type: 'boolean' },
    cuda: { type: 'string' },
    gpujs: { type: 'string' },
    ...tuningOptions,
    ...precisionOptions,
    mask: { type: 'string' },
    'mask-ratio': { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(`${benchHelp}\n`);
    return 0;
  }
  const file = requireOne(positionals, 'bench', 'a .cnx file');
  const adapter = adapterOption(values);
  const precision = precisionOption(values);
  const runs = positiveInt(values.runs, '--runs', 10);
  const warmup = nonNegativeInt(values.warmup, '--warmup', 2);
  const seed = nonNegativeInt(values.seed, '--seed', 0);
  const orderSeed = nonNegativeInt(values['order-seed'], '--order-seed', randomInt(2 ** 31));
  const cuda = cudaOption(values);
  const gpujs = gpujsOption(values);
  const peerList = stringOption(values, 'peers');
  const chosenPeers = peerList === undefined ? peers.map((p) => p.name) : peerList === 'none' ? [] : peerList.split(',').map((s) => s.trim());
  for (const name of chosenPeers) if (!peers.some((p) => p.name === name)) throw userError(`unknown peer '${name}'; peers: ${peers.map((p) => p.name).join(', ')}, or none`);
  const size = inputSize(values);
  // Before the benchmark: a bad --json or --svg path fails now, not after minutes of runs.
  for (const flag of ['json', 'svg'] as const) {
    const path = stringOption(values, flag);
    if (path !== undefined) checkOutputFile(path, `the --${flag} file`, { createParents: true });
  }
  const model = stringOption(values, 'model');
  const elaborated = loadModel(file, { model, size, passes: [] }).graph;
  if (graphInputs(elaborated).some((i) => i.name === 'mask')) {
    // auto and off are met by no row; only insisting on one is a mistake here.
    if (cuda === 'on') throw userError(`--cuda on: '${elaborated.name}' is benchmarked sparse against dense on WebGPU, with no cuda row`);
    if (gpujs === 'on') throw userError(`--gpujs on: '${elaborated.name}' is benchmarked sparse against dense on WebGPU, with no gpujs row`);
    return sparseBench(elaborated, values, io, { adapter, runs, warmup, seed, orderSeed, peerList });
  }
  for (const flag of ['mask', 'mask-ratio'] as const) if (values[flag] !== undefined) throw userError(`--${flag}: '${elaborated.name}' takes no patch mask (only models such as FCMAE do)`);
  const portableFused = loadModel(file, { model, size, passes: pipelines.fused }).graph;
  const unfused = loadModel(file, { model, size, passes: pipelines.unfused }).graph;
  const weightsPath = stringOption(values, 'weights');
  const tensors = weightsPath === undefined ? undefined : readSafetensors(readBytes(weightsPath, 'weights'), weightsPath);
  const weightsFor = (graph: typeof unfused) => (tensors ? bindWeights(graph, tensors, weightsPath!) : randomWeights(graph, seed));
  weightsFor(portableFused); // a mismatched weights file fails here, before any GPU work
  const input = randomInput(unfused.nodes[0].type.shape, seed + 1);

  const gpu = await acquireGpu({ adapter, verbose: values.verbose ? (line) => io.stderr.write(`${line}\n`) : undefined });
  // Fused for this device, as `convc run` fuses: its limits and its cost model decide.
  const target = targetOfDevice(gpu.device, 'this device');
  const fused = loadModel(file, { model, size, passes: pipelines.fused, target }).graph;
  // The cuda row's graph is fused for the CUDA target, as `convc run --backend cuda` fuses it.
  const cudaGraph = cuda === 'off' ? undefined : loadModel(file, { model, size, passes: pipelines.fused, target: cudaTarget() }).graph;
  // The gpujs row's graph is fused for the gpu.js target, as `convc run --backend gpujs` fuses it.
  const gpujsGraph = gpujs === 'off' ? undefined : loadModel(file, { model, size, passes: pipelines.fused, target: gpujsTarget }).graph;
  const bar = progress(io, `bench ${fused.name}`, 0);
  try {
    if (precision === 'f16' && !gpu.features.has('shader-f16')) {
      throw userError(`--precision f16 needs the shader-f16 feature, which this adapter does not have: ${gpu.adapterInfo}`, undefined, ['try another --adapter, or leave out --precision']);
    }
    // Before the benchmark, as a bad path is: no minutes of runs for a profile that cannot be made.
    if (values.profile && !gpu.features.has('timestamp-query')) {
      throw userError(`--profile needs timestamp queries, which this adapter does not offer ('timestamp-query'): ${gpu.adapterInfo}`, undefined, ['try another --adapter, or leave out --profile']);
    }
    io.stderr.write(`adapter (--adapter ${adapter}): ${gpu.adapterInfo}\norder seed: ${orderSeed}\n`);
    const schedule = scheduleForCommand(values, { adapter: gpu.adapterInfo, graphs: [fused, unfused], target, say: (line) => io.stderr.write(`${line}\n`) });
    const cudaRequest: BenchInputs['cuda'] = cuda === 'off' || !cudaGraph ? { choice: 'off' } : { choice: cuda, graph: cudaGraph };
    const gpujsRequest: BenchInputs['gpujs'] = gpujs === 'off' || !gpujsGraph ? { choice: 'off' } : { choice: gpujs, graph: gpujsGraph };
    const result = await runBench(
      { gpu, adapterChoice: adapter, fused, unfused, weightsFor, input, runs, warmup, orderSeed, peers: chosenPeers, f16: precision === 'f16', ...(schedule ? { schedule } : {}), onProgress: (done, total) => bar.update(done, total), tamperOutput: hooks.tamperOutput, profile: values.profile === true, cuda: cudaRequest, gpujs: gpujsRequest, ...(hooks.cudaDriver ? { cudaDriver: hooks.cudaDriver } : {}) },
      gpu.adapterInfo,
    );
    bar.finish();
    io.stdout.write(`${formatTable(result)}\n`);
    if (result.profile) io.stdout.write(`\n${formatProfile(result.profile)}\n`);
    const json = stringOption(values, 'json');
    if (json !== undefined) writeFileAtomically(json, `${JSON.stringify(result, null, 2)}\n`);
    const svg = stringOption(values, 'svg');
    if (svg !== undefined) writeFileAtomically(svg, renderSvg(result));
    const wrong = wrongConfigs(result);
    if (wrong.length > 0) {
      io.stderr.write(`error: ${wrong.join(', ')} computed a different output than the reference executor (over ${result.tolerance.toExponential(0)} of the output's scale); its times are not a result\n`);
      return 1;
    }
    if (cuda === 'on' && result.cuda?.error !== undefined) {
      io.stderr.write(`error: --cuda on, but the convc cuda row did not run: ${result.cuda.error}\n`);
      return 1;
    }
    if (gpujs === 'on' && result.gpujs?.error !== undefined) {
      io.stderr.write(`error: --gpujs on, but the convc gpujs row did not run: ${result.gpujs.error}\n`);
      return 1;
    }
    if (result.profile && 'error' in result.profile) {
      io.stderr.write(`error: the profile failed: ${result.profile.error}\n`);
      return 1;
    }
    return 0;
  } finally {
    gpu.destroy();
  }
}

/**
 * The bench of a model with a sparse region (FCMAE): sparse against dense-masked, whole and
 * encoder alone, on one adapter, every output checked against the reference executor.
 */
async function sparseBench(
  elaborated: Graph,
  values: Parsed['values'],
  io: CliIo,
  options: { readonly adapter: AdapterChoice; readonly runs: number; readonly warmup: number; readonly seed: number; readonly orderSeed: number; readonly peerList: string | undefined },
): Promise<number> {
  if (options.peerList !== undefined && options.peerList !== 'none') throw userError(`--peers: '${elaborated.name}' is benchmarked sparse against dense, with no peers`);
  for (const flag of ['precision', 'svg'] as const) if (values[flag] !== undefined) throw userError(`--${flag} is for classifiers; '${elaborated.name}' is benchmarked sparse against dense`);
  const mask = chooseMask(elaborated, values, options.seed)!;
  if (mask.note) io.stderr.write(mask.note);
  const [result] = sparseRegionResults(elaborated);
  if (result === undefined) throw userError(`'${elaborated.name}' takes a patch mask but has no sparse region to compute on its visible patches`);
  const encoder = subgraph(elaborated, [{ name: 'encoder', id: result }]);
  const weightsPath = stringOption(values, 'weights');
  const all = weightsPath === undefined ? randomWeights(elaborated, options.seed) : bindWeights(elaborated, readSafetensors(readBytes(weightsPath, 'weights'), weightsPath), weightsPath);
  const weightsFor = (graph: Graph) => new Map([...all].filter(([key]) => graph.params.has(key)));
  const input = randomInput(graphInput(elaborated, 'input').type.shape, options.seed + 1);
  const gpu = await acquireGpu({ adapter: options.adapter, verbose: values.verbose ? (line) => io.stderr.write(`${line}\n`) : undefined });
  try {
    const context = { target: targetOfDevice(gpu.device, 'this device'), visiblePatches: visibleCount(mask.given) };
    const build = (graph: Graph, passes: readonly string[]) => runPipeline(graph, passes, { context });
    const graphs = {
      sparse: build(elaborated, pipelines.fused),
      dense: build(elaborated, denseMasked(pipelines.fused)),
      encoder_sparse: build(encoder, pipelines.fused),
      encoder_dense: build(encoder, denseMasked(pipelines.fused)),
    };
    const reference = { model: build(elaborated, denseMasked(pipelines.unfused)), encoder: build(encoder, denseMasked(pipelines.unfused)) };
    io.stderr.write(`adapter (--adapter ${options.adapter}): ${gpu.adapterInfo}\norder seed: ${options.orderSeed}\n`);
    const schedule = scheduleForCommand(values, { adapter: gpu.adapterInfo, graphs: [graphs.sparse, graphs.dense], target: context.target, say: (line) => io.stderr.write(`${line}\n`) });
    if (values.profile && !gpu.features.has('timestamp-query')) {
      throw userError(`--profile needs timestamp queries, which this adapter does not offer ('timestamp-query'): ${gpu.adapterInfo}`);
    }
    const bar = progress(io, `bench ${elaborated.name}`, 0);
    const bench = await runSparseBench(
      { gpu, graphs, reference, weightsFor, input, mask: mask.graph, profile: values.profile === true, runs: options.runs, warmup: options.warmup, orderSeed: options.orderSeed, ...(schedule ? { schedule } : {}), onProgress: (done, total) => bar.update(done, total) },
      gpu.adapterInfo,
    );
    bar.finish();
    io.stdout.write(`${formatSparseTable(bench)}\n`);
    const json = stringOption(values, 'json');
    if (json !== undefined) writeFileAtomically(json, `${JSON.stringify(bench, null, 2)}\n`);
    const wrong = sparseConfigs.filter((name) => bench[name]?.wrong);
    if (wrong.length > 0) {
      io.stderr.write(`error: ${wrong.join(', ')} computed a different output than the reference executor (over ${bench.tolerance.toExponential(0)} of the output's scale); its times are not a result\n`);
      return 1;
    }
    return 0;
  } finally {
    gpu.destroy();
  }
}
