// Loads a generated runner into this process: the TypeScript is transpiled (by the compiler
// ts-morph ships) and imported as a module, so `convc run --backend webgpu` executes exactly
// the file `convc compile` writes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ts } from 'ts-morph';

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
  return ts.transpileModule(source, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, removeComments: false },
  }).outputText;
}

/** Imports the runner from a temporary file (not a data: URL, so stack traces stay readable). */
export async function importRunner(source: string): Promise<RunnerModule> {
  const javascript = transpileRunner(source);
  const dir = mkdtempSync(join(tmpdir(), 'convc-runner-'));
  const file = join(dir, 'model.mjs');
  writeFileSync(file, javascript);
  try {
    return (await import(pathToFileURL(file).href)) as RunnerModule;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
