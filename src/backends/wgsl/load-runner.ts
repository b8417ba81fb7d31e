// Loads a generated runner into this process as a module, so `convc run --backend webgpu`
// executes exactly the model.js `convc compile` writes. A TypeScript runner is transpiled first
// (by the compiler ts-morph ships, loaded only then).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as TsMorph from 'ts-morph';

export interface NonFiniteReport {
  readonly dispatch: number;
  readonly kernel: string;
  readonly covers: string;
  readonly index: number;
  readonly value: number;
}

/**
 * A loaded runner's model: run() takes the inputs in order (a classifier's image alone) and
 * resolves to the output, or, for a model of several outputs, to them by name (`Output`).
 */
export interface RunnerModel<Output = Float32Array> {
  run(...inputs: Float32Array[]): Promise<Output>;
  findNonFinite(...inputs: Float32Array[]): Promise<NonFiniteReport | null>;
  destroy(): void;
}

/** Outputs by name, as a runner of several outputs resolves to them. */
export type NamedOutputs = Readonly<Record<string, Float32Array>>;

export interface RunnerTensorInfo {
  readonly name: string;
  readonly shape: readonly number[];
}

export interface RunnerModule<Output = Float32Array> {
  readonly modelInfo: {
    readonly name: string;
    readonly inputShape: readonly number[];
    readonly outputShape: readonly number[];
    readonly inputs: readonly RunnerTensorInfo[];
    readonly outputs: readonly RunnerTensorInfo[];
    readonly dispatches: number;
  };
  createModel(device: GPUDevice, weights: ArrayBuffer | ArrayBufferView): Promise<RunnerModel<Output>>;
}

export function transpileRunner(source: string): string {
  const { ts } = createRequire(import.meta.url)('ts-morph') as typeof TsMorph;
  return ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, removeComments: false },
  }).outputText;
}

/** Imports a TypeScript runner (model.ts). */
export async function importRunner<Output = Float32Array>(source: string): Promise<RunnerModule<Output>> {
  return importRunnerJavaScript<Output>(transpileRunner(source));
}

/** Imports a JavaScript runner (model.js) from a temporary file (not a data: URL, so stack traces stay readable). */
export async function importRunnerJavaScript<Output = Float32Array>(javascript: string): Promise<RunnerModule<Output>> {
  const dir = mkdtempSync(join(tmpdir(), 'convc-runner-'));
  const file = join(dir, 'model.mjs');
  writeFileSync(file, javascript);
  try {
    return (await import(pathToFileURL(file).href)) as RunnerModule<Output>;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
