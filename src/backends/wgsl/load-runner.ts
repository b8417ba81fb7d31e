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

export interface RunnerModel {
  run(input: Float32Array): Promise<Float32Array>;
  findNonFinite(input: Float32Array): Promise<NonFiniteReport | null>;
  destroy(): void;
}

export interface RunnerModule {
  readonly modelInfo: { readonly name: string; readonly inputShape: readonly number[]; readonly outputShape: readonly number[]; readonly dispatches: number };
  createModel(device: GPUDevice, weights: ArrayBuffer | ArrayBufferView): Promise<RunnerModel>;
}

export function transpileRunner(source: string): string {
  const { ts } = createRequire(import.meta.url)('ts-morph') as typeof TsMorph;
  return ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, removeComments: false },
  }).outputText;
}

/** Imports a TypeScript runner (model.ts). */
export async function importRunner(source: string): Promise<RunnerModule> {
  return importRunnerJavaScript(transpileRunner(source));
}

/** Imports a JavaScript runner (model.js) from a temporary file (not a data: URL, so stack traces stay readable). */
export async function importRunnerJavaScript(javascript: string): Promise<RunnerModule> {
  const dir = mkdtempSync(join(tmpdir(), 'convc-runner-'));
  const file = join(dir, 'model.mjs');
  writeFileSync(file, javascript);
  try {
    return (await import(pathToFileURL(file).href)) as RunnerModule;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
