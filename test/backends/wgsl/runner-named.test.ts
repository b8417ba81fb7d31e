// The generated runner of a model of several inputs and outputs (FCMAE: image and patch mask
// in, pred and loss out) takes run(input, mask) and resolves to { pred, loss }, typed so under
// tsc --strict; a classifier's runner still takes run(input) and resolves to a Float32Array.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importRunnerJavaScript } from '../../../src/backends/wgsl/load-runner.js';
import { lowerToWgsl } from '../../../src/backends/wgsl/lower.js';
import { generateRunnerFiles } from '../../../src/backends/wgsl/runner.js';
import { pipelines } from '../../../src/passes/manager.js';
import { fcmaeCases, fcmaeGraph } from '../../models/fcmae-helpers.js';
import { repoPath, zooGraph } from '../../helpers.js';

const fcmae = lowerToWgsl(fcmaeGraph(fcmaeCases[0], 2, pipelines.fused));
const classifier = lowerToWgsl(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }));

/** Callers of each runner, as an app would write them; `@ts-expect-error` marks calls tsc must refuse. */
const uses = {
  fcmae: `import { createModel, modelInfo } from './model.js';
export async function use(device: GPUDevice, weights: ArrayBuffer, input: Float32Array, mask: Float32Array): Promise<number> {
  const model = await createModel(device, weights);
  const { pred, loss }: { readonly pred: Float32Array; readonly loss: Float32Array } = await model.run(input, mask);
  // @ts-expect-error the mask is required
  await model.run(input);
  // @ts-expect-error the result is named, not one array
  const single: Float32Array = await model.run(input, mask);
  const names: readonly string[] = modelInfo.inputs.map((i) => i.name);
  return pred.length + loss[0] + names.length + single.length + ((await model.findNonFinite(input, mask))?.index ?? 0);
}
`,
  classifier: `import { createModel } from './model.js';
export async function use(device: GPUDevice, weights: ArrayBuffer, input: Float32Array): Promise<number> {
  const model = await createModel(device, weights);
  const logits: Float32Array = await model.run(input);
  // @ts-expect-error a classifier takes one input
  await model.run(input, input);
  return logits.length;
}
`,
};

describe('the runner of a model of named inputs and outputs', () => {
  it('describes its inputs and outputs as callers hold them (the mask [N, L]), the image first', () => {
    expect(fcmae.inputs.map((i) => [i.name, i.shape])).toEqual([
      ['input', [2, 3, 64, 64]],
      ['mask', [2, 4]],
    ]);
    expect(fcmae.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['pred', [2, 3072, 2, 2]],
      ['loss', [1]],
    ]);
    // One buffer each, apart from each other and from activations.
    const buffers = [...fcmae.inputs, ...fcmae.outputs].map((t) => t.buffer);
    expect(new Set(buffers).size).toBe(4);
    expect(buffers.map((b) => fcmae.buffers[b].role)).toEqual(['input', 'input', 'output', 'output']);
    expect(fcmae.buffers.filter((b) => b.role === 'input' || b.role === 'output').every((b) => b.dtype === 'f32')).toBe(true);
  });

  it('types run(input, mask) -> { pred, loss }, and a classifier run(input) -> Float32Array, under tsc --strict', () => {
    const root = mkdtempSync(join(tmpdir(), 'convc-runner-named-'));
    const files: string[] = [];
    for (const [name, program] of [['fcmae', fcmae], ['classifier', classifier]] as const) {
      const dir = join(root, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'model.ts'), generateRunnerFiles(program).ts);
      writeFileSync(join(dir, 'use.ts'), uses[name]);
      files.push(join(dir, 'model.ts'), join(dir, 'use.ts'));
    }
    const tsc = repoPath('node_modules/typescript/bin/tsc');
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2022,dom'];
    const types = ['--typeRoots', repoPath('node_modules'), '--types', '@webgpu/types'];
    expect(() => execFileSync(process.execPath, [tsc, ...args, ...types, ...files], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  }, 120_000);

  it("keeps a classifier's runner documented and declared as before", async () => {
    const { ts, js } = generateRunnerFiles(classifier);
    expect(ts).toContain('  const logits = await model.run(inputNCHW);');
    expect(ts).toContain('export type ModelInputs = [input: Float32Array];');
    expect(ts).toContain('export type ModelOutput = Float32Array;');
    const runner = await importRunnerJavaScript(js);
    expect(runner.modelInfo).toMatchObject({ inputShape: [1, 3, 32, 32], outputShape: [1, 1000], inputs: [{ name: 'input', shape: [1, 3, 32, 32] }], outputs: [{ name: 'output', shape: [1, 1000] }] });
  });

  it('documents the named call', () => {
    const { ts } = generateRunnerFiles(fcmae);
    expect(ts).toContain('  const { pred, loss } = await model.run(inputNCHW, mask);');
    expect(ts).toContain('export type ModelInputs = [input: Float32Array, mask: Float32Array];');
    expect(ts).toContain('export type ModelOutput = { readonly "pred": Float32Array; readonly "loss": Float32Array };');
  });
});
