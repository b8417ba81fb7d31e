// The gpujs backend as a user meets it: `convc run --backend gpujs` reproduces every PyTorch
// golden in gpu.js's GL mode (headless-gl on Mesa's llvmpipe, a private Xvfb display started
// where the process has none) through the generated runner, and in its CPU mode; `convc compile
// --target gpujs` writes a package whose own model.js runs on a gpu.js GPU the caller makes and
// agrees with the reference executor. Options for other backends are refused with clear errors.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importGpuJsRunner, type GpuJsGpu } from '../../src/backends/gpujs/execute.js';
import { executeReference } from '../../src/backends/reference/executor.js';
import { main } from '../../src/cli/main.js';
import { readNpy } from '../../src/io/npy.js';
import { pipelines } from '../../src/passes/manager.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { captureIo, goldenCases, goldenDir, goldenFiles, repoPath, scaledDifference, zooGraph } from '../helpers.js';
import { fcmaeCases, fcmaeDir, fcmaeModelLine, fcmaeNpy } from '../models/fcmae-helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'convc-gpujs-cli-'));

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

// The goldens are f64 PyTorch and the kernels compute in f32 (GLSL floats): issue 14's bound
// of 1e-4 of the output's scale, as for the other backends' golden tests.
const RTOL = 1e-4;

describe('convc run --backend gpujs', () => {
  it.each(goldenCases.map((c) => c.name))('reproduces the PyTorch golden %s in GL mode', async (name) => {
    const { output, paths } = goldenFiles(name);
    const out = join(scratch, `${name}.npy`);
    const result = await convc('run', join(goldenDir, 'cases.cnx'), '--model', name, '--weights', paths.weights, '--input', paths.input, '--out', out, '--backend', 'gpujs');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toContain('on gpujs (WebGL, headless-gl)');
    expect(scaledDifference(readNpy(readFileSync(out), out).data, output.data)).toBeLessThan(RTOL);
  }, 120_000);

  it('reproduces a golden in CPU mode', async () => {
    const { output, paths } = goldenFiles('convnextv2-mini');
    const out = join(scratch, 'cpu.npy');
    const result = await convc('run', join(goldenDir, 'cases.cnx'), '--model', 'convnextv2-mini', '--weights', paths.weights, '--input', paths.input, '--out', out, '--backend', 'gpujs', '--gpujs-mode', 'cpu');
    expect(result.code).toBe(0);
    expect(result.out).toContain('on gpujs (the CPU, kernels as JavaScript)');
    expect(scaledDifference(readNpy(readFileSync(out), out).data, output.data)).toBeLessThan(RTOL);
  }, 120_000);

  it('reproduces FCMAE goldens (pred and loss), the encoder compacted to the visible patches', async () => {
    const c = fcmaeCases[0];
    const file = join(scratch, `${c.name}.cnx`);
    writeFileSync(file, `import "${repoPath('models/fcmae.cnx').replace(/\\/g, '/')}"\n${fcmaeModelLine(c)}\n`);
    const [pred, loss] = [join(scratch, 'pred.npy'), join(scratch, 'loss.npy')];
    const files = (f: string) => join(fcmaeDir, c.name, f);
    const result = await convc('run', file, '--weights', files('weights.safetensors'), '--input', files('input.npy'), '--mask', files('mask.npy'), '--out', pred, '--loss-out', loss, '--backend', 'gpujs');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(scaledDifference(readNpy(readFileSync(pred), pred).data, fcmaeNpy(c.name, 'pred.npy').data)).toBeLessThan(RTOL);
    expect(Math.abs(readNpy(readFileSync(loss), loss).data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
  }, 120_000);

  it('refuses options it cannot honour, naming them', async () => {
    const model = repoPath('models/convnextv2-atto.cnx');
    const run = (...extra: string[]) => convc('run', model, '--random-weights', '--size', '32', ...extra);
    const cases: readonly [readonly string[], string][] = [
      [['--backend', 'gpujs', '--gpujs-mode', 'webgl'], "unknown --gpujs-mode 'webgl'; modes: gpu, cpu"],
      [['--backend', 'webgpu', '--gpujs-mode', 'cpu'], '--gpujs-mode is for the gpujs backend, not webgpu'],
      [['--backend', 'gpujs', '--precision', 'f16'], "--precision f16: gpu.js stores f32 only (its precision 'single')"],
      [['--backend', 'gpujs', '--debug-nonfinite'], '--debug-nonfinite is for the reference and webgpu backends'],
      [['--backend', 'gpujs', '--tuning', join(scratch, 'none.json')], '--tuning files are for WebGPU adapters; the gpujs backend uses its default schedules'],
    ];
    for (const [args, message] of cases) {
      const { code, err } = await run(...args);
      expect(code).toBe(2);
      expect(err).toContain(message);
      expect(err).not.toMatch(/internal error|\n\s+at /);
    }
  });
});

describe('convc compile --target gpujs', () => {
  it("writes the runner and its kernels; the package's own model.js runs on a gpu.js GPU and agrees with the reference", async () => {
    const dir = join(scratch, 'atto');
    const { code, out, err } = await convc('compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'gpujs', '--size', '32', '--batch', '2', '--random-weights', '--seed', '5', '-o', dir);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/gpu\.js kernel runs\nwrote .*\(model\.ts, model\.js, kernels\.js \(\d+ kernels\), weights\.bin/);
    const kernels = readFileSync(join(dir, 'kernels.js'), 'utf8');
    const names = [...kernels.matchAll(/^function (\w+)\(/gm)].map((m) => m[1]).filter((n) => !n.startsWith('convc_'));
    const runner = await importGpuJsRunner(readFileSync(join(dir, 'model.js'), 'utf8'));
    expect(runner.modelInfo.kernels).toEqual(names);
    // The GPU a user makes: gpu.js's own, in its CPU mode (the GL mode is the run tests').
    const { GPU } = createRequire(import.meta.url)('gpu.js') as { GPU: new (settings: object) => GpuJsGpu };
    const gpu = new GPU({ mode: 'cpu' });
    const model = await runner.createModel(gpu, readFileSync(join(dir, 'weights.bin')), { mode: 'cpu' });
    try {
      const graph = zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 32 }, pipelines.unfused);
      const input = randomInput([2, 3, 32, 32], 9);
      const logits = (await model.run(input.data)) as Float32Array;
      expect(scaledDifference(logits, executeReference(graph, randomWeights(graph, 5), input).data)).toBeLessThan(RTOL);
    } finally {
      model.destroy();
      gpu.destroy();
    }
    expect(existsSync(join(dir, 'model.ts'))).toBe(true);
  }, 180_000);

  it('refuses f16 storage and WebGPU tuning files', async () => {
    const model = repoPath('models/convnextv2-atto.cnx');
    expect((await convc('compile', model, '--target', 'gpujs', '--precision', 'f16', '-o', join(scratch, 'f16'))).err).toContain("gpu.js stores f32 only");
    expect((await convc('compile', model, '--target', 'gpujs', '--no-tuning', '-o', join(scratch, 't'))).err).toContain('--target gpujs uses its default schedules');
  });
});
