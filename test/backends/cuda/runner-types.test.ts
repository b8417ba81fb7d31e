// The generated CUDA runner as a user's TypeScript sees it: it type-checks under tsc --strict
// with koffi's own types and Node's, run() is typed by the model's inputs and outputs (FCMAE's
// run(input, mask) -> { pred, loss }, a classifier's run(input) -> Float32Array), and koffi
// itself fits the options' structural Koffi type. The JavaScript is the same module untyped.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importCudaRunner } from '../../../src/backends/cuda/load-runner.js';
import { lowerToCuda } from '../../../src/backends/cuda/lower.js';
import { generateCudaRunnerFiles } from '../../../src/backends/cuda/runner.js';
import { pipelines } from '../../../src/passes/manager.js';
import { repoPath, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph } from '../../models/fcmae-helpers.js';

const fcmae = lowerToCuda(fcmaeGraph(fcmaeCases[0], 2, pipelines.fused));
const classifier = lowerToCuda(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }), { precision: 'f16' });

/** Callers of each runner, as an app would write them; `@ts-expect-error` marks what tsc must refuse. */
const uses = {
  fcmae: `import koffi from 'koffi';
import { readFileSync } from 'node:fs';
import { createModel, modelInfo, type Koffi } from './model.js';
export async function use(input: Float32Array, mask: Float32Array): Promise<number> {
  const model = await createModel(readFileSync('weights.bin'), { koffi, library: 'libcuda.so.1', device: 0, module: new Uint8Array(8) });
  const { pred, loss }: { readonly pred: Float32Array; readonly loss: Float32Array } = await model.run(input, mask);
  // @ts-expect-error the mask is required
  await model.run(input);
  // @ts-expect-error the result is named, not one array
  const single: Float32Array = await model.run(input, mask);
  // @ts-expect-error koffi's module, not a path to it
  await createModel(new ArrayBuffer(0), { koffi: 'koffi' });
  const bound: Koffi = koffi;
  const names: readonly string[] = modelInfo.kernels.map((k) => k.name);
  model.destroy();
  return pred.length + loss[0] + names.length + single.length + (bound === koffi ? 1 : 0);
}
`,
  classifier: `import { createModel, modelInfo } from './model.js';
export async function use(weights: ArrayBuffer, input: Float32Array): Promise<number> {
  const model = await createModel(weights);
  const logits: Float32Array = await model.run(input);
  // @ts-expect-error a classifier takes one input
  await model.run(input, input);
  const precision: 'f32' | 'f16' = modelInfo.precision;
  const blocks: number = modelInfo.kernels[0].blockSize;
  return logits.length + precision.length + blocks;
}
`,
};

describe('the generated CUDA runner under tsc --strict', () => {
  it('type-checks with koffi and Node types, typing run() by the model and taking koffi itself as its koffi option', () => {
    const root = mkdtempSync(join(tmpdir(), 'convc-cuda-runner-types-'));
    // koffi and @types/node resolve from here as from a user's project.
    symlinkSync(repoPath('node_modules'), join(root, 'node_modules'), 'dir');
    const files: string[] = [];
    for (const [name, program] of [['fcmae', fcmae], ['classifier', classifier]] as const) {
      const dir = join(root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'model.ts'), generateCudaRunnerFiles(program).ts);
      writeFileSync(join(dir, 'use.ts'), uses[name]);
      files.push(join(dir, 'model.ts'), join(dir, 'use.ts'));
    }
    const tsc = repoPath('node_modules/typescript/bin/tsc');
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2022'];
    const types = ['--typeRoots', join(root, 'node_modules', '@types'), '--types', 'node'];
    // execFileSync throws with tsc's diagnostics in the message if anything does not compile.
    expect(() => execFileSync(process.execPath, [tsc, ...args, ...types, ...files], { encoding: 'utf8', stdio: 'pipe', cwd: root })).not.toThrow();
  }, 120_000);

  it('declares createModel(weights, options) and the model of its inputs and outputs', () => {
    const { ts } = generateCudaRunnerFiles(fcmae);
    expect(ts).toMatch(/export async function createModel\(weights: ArrayBuffer \| ArrayBufferView, options: CreateModelOptions = \{\}\): Promise<ConvcModel>/);
    expect(ts).toContain('export type ModelInputs = [input: Float32Array, mask: Float32Array];');
    expect(ts).toContain('export type ModelOutput = { readonly "pred": Float32Array; readonly "loss": Float32Array };');
    // Only Node's modules are imported statically; koffi only when the caller brings none.
    expect(ts.match(/^import .*$/gm)).toEqual(['import { readFileSync } from "node:fs";', 'import { fileURLToPath } from "node:url";']);
    expect(ts).toContain("await import('koffi')");
    expect(ts).toContain(`  const { pred, loss } = await model.run(inputNCHW, mask);`);
  });
});

describe('the generated CUDA runner as JavaScript', () => {
  it('is the same module without its types', async () => {
    const { js } = generateCudaRunnerFiles(classifier);
    expect(js).not.toMatch(/ as const|: Koffi|interface |: ArrayBuffer/);
    const runner = await importCudaRunner(js);
    expect(runner.modelInfo).toMatchObject({ name: 'convnextv2-atto', inputShape: [1, 3, 32, 32], outputShape: [1, 1000], dispatches: classifier.dispatches.length });
    expect(runner.modelInfo.kernels.map((k) => k.name)).toEqual(classifier.shaders.map((s) => s.name));
    expect(runner.modelInfo.kernels.map((k) => k.blockSize)).toEqual(classifier.shaders.map((s) => s.needs.workgroupSize));
    expect(typeof runner.createModel).toBe('function');
  });
});
