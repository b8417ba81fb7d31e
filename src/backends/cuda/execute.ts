// Runs a graph on CUDA through its generated runner, exactly as a user's Node program would:
// the runner calls the driver API through koffi. Two drivers sit behind the same code path:
//  - 'cuda': the NVIDIA driver (libcuda.so.1), the kernels compiled by nvcc into a fat binary;
//  - 'cuda-emulated': convc's emulated driver (emulation/driver.cpp), the same kernels.cu
//    compiled by g++ with the host emulation header, run on the CPU with real barriers.
import type { StorageType } from '../../kernel/ir.js';
import { packWeights } from '../../kernel/model-program.js';
import type { WeightMap } from '../reference/executor.js';
import type { Graph, HostTensor } from '../../ir/types.js';
import { modelInputs } from '../../kernel/model-io.js';
import { runFailure, userError, UserError } from '../../util/diagnostics.js';
import { buildEmulatedKernels, emulatedDriverPath } from './emulation/build.js';
import { lowerToCuda, type CudaProgram } from './lower.js';
import { cachedCudaImage } from './nvcc.js';
import { generateCudaRunnerFiles } from './runner.js';
import { loadCudaRunner, type CudaRunnerModel } from './load-runner.js';

export type CudaDriverKind = 'cuda' | 'cuda-emulated';

export interface CudaModelOptions {
  readonly driver: CudaDriverKind;
  /** How activations and weights are stored (arithmetic is f32 either way). */
  readonly precision?: StorageType;
}

export interface CudaModel {
  readonly program: CudaProgram;
  readonly model: CudaRunnerModel;
}

/** Lowers, compiles and loads `graph` through its generated runner on the driver asked for. */
export async function createCudaModel(graph: Graph, weights: WeightMap, options: CudaModelOptions): Promise<CudaModel> {
  const program = lowerToCuda(graph, { precision: options.precision ?? 'f32' });
  const emulated = options.driver === 'cuda-emulated';
  const image = emulated ? buildEmulatedKernels(program.module, program.shaders.map((s) => s.name)) : cachedCudaImage(program);
  const model = await fromRunner(program, () => loadCudaRunner(generateCudaRunnerFiles(program).js, packWeights(graph, program, weights), { module: image, ...(emulated ? { library: emulatedDriverPath() } : {}) }));
  return { program, model };
}

/**
 * Runs a step of the generated runner, whose errors (prefixed with the model's name) say what
 * the driver refused: no driver at all is the user's to fix (exit 2), any other CUDA failure a
 * failed run (exit 1), not a convc bug.
 */
async function fromRunner<T>(program: CudaProgram, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof UserError || !(error instanceof Error) || !error.message.startsWith(`${program.model}: `)) throw error;
    if (/cannot load the CUDA driver library/.test(error.message)) throw userError(`${error.message}`, undefined, ['--backend cuda-emulated runs the same runner and kernels on the CPU, without a GPU']);
    throw runFailure(error.message);
  }
}

/** Runs a model once on named inputs (the image `input`, and `mask` for FCMAE) to its named outputs. */
export async function executeCudaModel(graph: Graph, weights: WeightMap, inputs: Readonly<Record<string, HostTensor>>, options: CudaModelOptions): Promise<Readonly<Record<string, HostTensor>>> {
  const { program, model } = await createCudaModel(graph, weights, options);
  try {
    const ordered = modelInputs(graph).map(({ name }) => {
      const tensor = inputs[name] as HostTensor | undefined;
      if (!tensor) throw new Error(`internal: no value for model input '${name}'`);
      return tensor.data;
    });
    const result = await fromRunner(program, () => model.run(...ordered));
    const byName: Readonly<Record<string, Float32Array>> = result instanceof Float32Array ? { [program.outputs[0].name]: result } : result;
    return Object.fromEntries(program.outputs.map((o) => [o.name, { shape: o.shape, data: byName[o.name] }]));
  } finally {
    model.destroy();
  }
}
