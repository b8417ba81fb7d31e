// A child process of asan.test.ts, run under AddressSanitizer (node with libasan preloaded):
// whole models' kernels.cu, compiled by g++ with -fsanitize=address, run through the generated
// runner on the sanitized emulated driver, whose allocations are exact, so any index past a
// buffer's end is reported and aborts the process. Prints one line a case: `<name> <scaled diff>`.
//   node --import tsx asan-child.ts
import { buildEmulatedKernels, emulatedDriverPath } from '../../../src/backends/cuda/emulation/build.js';
import { loadCudaRunner } from '../../../src/backends/cuda/load-runner.js';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { generateCudaRunnerFiles } from '../../../src/backends/cuda/runner.js';
import { cudaTarget } from '../../../src/backends/cuda/target.js';
import { executeGraph, type WeightMap } from '../../../src/backends/reference/executor.js';
import type { Graph, HostTensor } from '../../../src/ir/types.js';
import { graphInput } from '../../../src/ir/graph-io.js';
import type { StorageType } from '../../../src/kernel/ir.js';
import { packWeights } from '../../../src/kernel/model-program.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { withDerivedWeights } from '../../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { scaledDifference, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph, fcmaeNpy, fcmaeWeights } from '../../models/fcmae-helpers.js';

const sanitize = { sanitize: 'address' } as const;

async function check(name: string, graph: Graph, weights: WeightMap, inputs: Readonly<Record<string, HostTensor>>, precision: StorageType = 'f32'): Promise<void> {
  // Every tensor in an allocation of its own exact size: one past any tensor's end is outside.
  const program = lowerToCuda(graph, { target: cudaTarget(), precision, exactBuffers: true });
  const module = buildEmulatedKernels(program.module, program.shaders.map((s) => s.name), sanitize);
  const model = await loadCudaRunner<Float32Array | Readonly<Record<string, Float32Array>>>(generateCudaRunnerFiles(program).js, packWeights(graph, program, weights), { module, library: emulatedDriverPath(sanitize) });
  try {
    const result = await model.run(...program.inputs.map((i) => inputs[i.name].data));
    // The reference takes each input in its graph shape (a patch mask [N, rows, cols], not [N, L]).
    const expected = executeGraph(graph, weights, Object.fromEntries(Object.entries(inputs).map(([key, t]) => [key, { shape: graphInput(graph, key).type.shape, data: t.data }])));
    const main = program.outputs[0].name;
    const got = result instanceof Float32Array ? result : result[main];
    console.log(`${name} ${scaledDifference(got, expected[main].data)}`);
  } finally {
    model.destroy();
  }
}

const context = { target: cudaTarget() };
for (const [variant, pipeline] of [['convnextv2-atto', 'fused'], ['convnextv2-atto', 'unfused'], ['convnextv1-tiny', 'fused']] as const) {
  // Odd sizes and a batch of 2, so no bound is a power of two by luck.
  const graph = zooGraph(variant, { batch: 2, height: 36, width: 44 }, []);
  const lowered = runPipeline(graph, pipelines[pipeline], { context });
  const weights = randomWeights(graph, 1);
  await check(`${variant}-${pipeline}`, lowered, withDerivedWeights(lowered, weights), { input: randomInput([2, 3, 36, 44], 2) });
  if (variant === 'convnextv2-atto' && pipeline === 'fused') {
    await check(`${variant}-${pipeline}-f16`, lowered, withDerivedWeights(lowered, weights), { input: randomInput([2, 3, 36, 44], 2) }, 'f16');
  }
}
// FCMAE's compacted encoder: the gather kernels (patch tables, halos, scatter) index by tables.
const c = fcmaeCases[0];
const fcmae = fcmaeGraph(c, 2, pipelines.fused);
await check('fcmae', fcmae, bindWeights(fcmae, fcmaeWeights(c.name), 'weights.safetensors'), { input: fcmaeNpy(c.name, 'input.npy'), mask: fcmaeNpy(c.name, 'mask.npy') });
