// The generated gpu.js runner as a user's TypeScript sees it: it type-checks under tsc --strict
// with gpu.js's own types (its GPU fits the runner's structural GpuJs), run() is typed by the
// model's inputs and outputs (FCMAE's run(input, mask) -> { pred, loss }, a classifier's
// run(input) -> Float32Array). The kernel functions are typed functions of their inputs.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lowerToGpuJs } from '../../../src/backends/gpujs/lower.js';
import { generateGpuJsRunnerFiles } from '../../../src/backends/gpujs/runner.js';
import { gpujsTarget } from '../../../src/backends/gpujs/target.js';
import { pipelines, runPipeline } from '../../../src/passes/manager.js';
import { repoPath, zooGraph } from '../../helpers.js';
import { fcmaeCases, fcmaeGraph } from '../../models/fcmae-helpers.js';

const context = { target: gpujsTarget };
const fcmae = lowerToGpuJs(runPipeline(fcmaeGraph(fcmaeCases[0], 2, []), pipelines.fused, { context }));
const classifier = lowerToGpuJs(runPipeline(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, []), pipelines.fused, { context }));

/** Callers of each runner, as an app would write them; `@ts-expect-error` marks what tsc must refuse. */
const uses = {
  fcmae: `import { GPU } from 'gpu.js';
import { createModel } from './model.js';
export async function use(weights: ArrayBuffer, input: Float32Array, mask: Float32Array): Promise<number> {
  const gpu = new GPU({ mode: 'cpu' });
  const model = await createModel(gpu, weights, { mode: 'cpu' });
  const { pred, loss }: { readonly pred: Float32Array; readonly loss: Float32Array } = await model.run(input, mask);
  // @ts-expect-error the mask is required
  await model.run(input);
  // @ts-expect-error gpu.js has no such mode for this runner
  await createModel(gpu, weights, { mode: 'webgpu' });
  model.destroy();
  return pred.length + loss[0];
}
`,
  classifier: `import { GPU } from 'gpu.js';
import { createModel, modelInfo } from './model.js';
export async function use(weights: ArrayBuffer, input: Float32Array): Promise<number> {
  const gpu = new GPU({ mode: 'headlessgl' });
  const model = await createModel(gpu, weights);
  const logits: Float32Array = await model.run(input);
  // @ts-expect-error a classifier takes one input
  await model.run(input, input);
  const kernels: readonly string[] = modelInfo.kernels;
  model.destroy();
  gpu.destroy();
  return logits.length + kernels.length + modelInfo.steps;
}
`,
};

describe('the generated gpu.js runner under tsc --strict', () => {
  it("type-checks with gpu.js's own types, typing run() by the model", () => {
    const root = mkdtempSync(join(tmpdir(), 'convc-gpujs-runner-types-'));
    // gpu.js resolves from here as from a user's project.
    symlinkSync(repoPath('node_modules'), join(root, 'node_modules'), 'dir');
    const files: string[] = [];
    for (const [name, program] of [['fcmae', fcmae], ['classifier', classifier]] as const) {
      const dir = join(root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'model.ts'), generateGpuJsRunnerFiles(program).ts);
      writeFileSync(join(dir, 'use.ts'), uses[name]);
      files.push(join(dir, 'model.ts'), join(dir, 'use.ts'));
    }
    const tsc = repoPath('node_modules/typescript/bin/tsc');
    // gpu.js runs in browsers too: its types name the DOM's WebGL ones.
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2022,dom'];
    try {
      execFileSync(process.execPath, [tsc, ...args, ...files], { encoding: 'utf8', stdio: 'pipe', cwd: root });
    } catch (error) {
      // tsc's diagnostics are on its stdout.
      expect((error as { stdout?: string }).stdout ?? String(error)).toBe('');
    }
  }, 120_000);

  it('declares createModel(gpu, weights, options), typed kernel functions and no imports', () => {
    const { ts, js } = generateGpuJsRunnerFiles(fcmae);
    expect(ts).toContain('export async function createModel(gpu: GpuJs, weights: ArrayBuffer | ArrayBufferView, options: CreateModelOptions = {}): Promise<ConvcModel> {');
    expect(ts).toContain('export type ModelInputs = [input: Float32Array, mask: Float32Array];');
    expect(ts).toContain('export type ModelOutput = { readonly "pred": Float32Array; readonly "loss": Float32Array };');
    expect(ts).toMatch(/\nfunction linear_gelu\(this: KernelThis, input: KernelInput, weight: KernelInput, bias: KernelInput\): number \{\n/);
    expect(ts).toContain('function convc_udiv(a: number, b: number): number {');
    // The JavaScript is the same kernels untyped, as gpu.js reads them.
    expect(js).toMatch(/\nfunction linear_gelu\(input, weight, bias\) \{\n/);
    expect(ts).not.toMatch(/^import /m);
  });
});
