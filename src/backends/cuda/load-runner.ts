// Loads a generated CUDA runner into this process, so `convc run --backend cuda` executes exactly
// the model.js `convc compile --target cuda` writes. The runner is imported from a temporary
// file, where `import('koffi')` would not find convc's dependencies: convc hands it its own koffi.
import { createRequire } from 'node:module';
import { importRunnerJavaScript, transpileRunner, type NamedOutputs, type RunnerTensorInfo } from '../wgsl/load-runner.js';

/**
 * A loaded CUDA runner's model: run() takes the inputs in order (a classifier's image alone) and
 * resolves to the output, or, for a model of several outputs, to them by name.
 */
export interface CudaRunnerModel<Output = Float32Array | NamedOutputs> {
  run(...inputs: Float32Array[]): Promise<Output>;
  destroy(): void;
}

/** createModel's options, as the runner declares them (koffi: the module, typed by the runner itself). */
export interface CudaRunnerOptions {
  /** The kernel image (fat binary or cubin; or, for the emulated driver, its own image). */
  readonly module?: Uint8Array;
  /** The driver library; the runner's default is libcuda.so.1. */
  readonly library?: string;
  readonly koffi?: unknown;
  readonly device?: number;
}

export interface CudaRunnerKernelInfo {
  readonly name: string;
  readonly blockSize: number;
  readonly sharedBytes: number;
}

export interface CudaRunnerModule<Output = Float32Array | NamedOutputs> {
  readonly modelInfo: {
    readonly name: string;
    readonly inputShape: readonly number[];
    readonly outputShape: readonly number[];
    readonly inputs: readonly RunnerTensorInfo[];
    readonly outputs: readonly RunnerTensorInfo[];
    readonly dispatches: number;
    readonly kernels: readonly CudaRunnerKernelInfo[];
  };
  createModel(weights: ArrayBuffer | ArrayBufferView, options?: CudaRunnerOptions): Promise<CudaRunnerModel<Output>>;
}

/** Imports a JavaScript CUDA runner (model.js). */
export async function importCudaRunner<Output = Float32Array | NamedOutputs>(javascript: string): Promise<CudaRunnerModule<Output>> {
  return (await importRunnerJavaScript(javascript)) as unknown as CudaRunnerModule<Output>;
}

/** Imports a TypeScript CUDA runner (model.ts), transpiled first. */
export async function importCudaRunnerTypeScript<Output = Float32Array | NamedOutputs>(source: string): Promise<CudaRunnerModule<Output>> {
  return importCudaRunner<Output>(transpileRunner(source));
}

/** convc's own koffi (a CommonJS require resolves it from convc's dependencies, wherever the runner lies). */
export function convcKoffi(): unknown {
  return createRequire(import.meta.url)('koffi');
}

/**
 * Imports a JavaScript CUDA runner and creates its model with convc's koffi: the kernel image
 * and the driver library as `options` say (the runner's defaults otherwise).
 */
export async function loadCudaRunner<Output = Float32Array | NamedOutputs>(
  javascript: string,
  weights: ArrayBuffer | ArrayBufferView,
  options: Omit<CudaRunnerOptions, 'koffi'> = {},
): Promise<CudaRunnerModel<Output>> {
  const runner = await importCudaRunner<Output>(javascript);
  return runner.createModel(weights, { ...options, koffi: convcKoffi() });
}
