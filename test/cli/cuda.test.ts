// The CUDA backends as a user meets them: `convc run --backend cuda-emulated` reproduces every
// PyTorch golden through the generated runner and the emulated driver (the kernels.cu a GPU
// would run, compiled by g++ for the CPU); `--backend cuda` without a driver is a clear error
// naming libcuda.so.1; `convc compile --target cuda` writes a package whose own model.js and
// kernels.cu run on the emulated driver and agree with the reference executor.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readNpy } from '../../src/io/npy.js';
import { buildEmulatedKernels, emulatedDriverPath } from '../../src/backends/cuda/emulation/build.js';
import { convcKoffi, importCudaRunner } from '../../src/backends/cuda/load-runner.js';
import { findNvcc } from '../../src/backends/cuda/nvcc.js';
import { executeReference } from '../../src/backends/reference/executor.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { pipelines } from '../../src/passes/manager.js';
import { captureIo, goldenCases, goldenDir, goldenFiles, repoPath, scaledDifference, zooGraph } from '../helpers.js';
import { fcmaeCases, fcmaeDir, fcmaeModelLine, fcmaeNpy } from '../models/fcmae-helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'convc-cuda-cli-'));

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

// The goldens are f64 PyTorch and the kernels compute in f32: issue 13's bound of 1e-4 of the
// output's scale, as for the reference executor's and WebGPU's golden tests.
const RTOL = 1e-4;

/** Whether this machine has a CUDA driver a runner could load (none here or in CI). */
function driverLoads(): boolean {
  try {
    (convcKoffi() as { load(path: string): unknown }).load('libcuda.so.1');
    return true;
  } catch {
    return false;
  }
}

describe('convc run --backend cuda-emulated', () => {
  it.each(goldenCases.map((c) => c.name))('reproduces the PyTorch golden %s', async (name) => {
    const { output, paths } = goldenFiles(name);
    const out = join(scratch, `${name}.npy`);
    const result = await convc('run', join(goldenDir, 'cases.cnx'), '--model', name, '--weights', paths.weights, '--input', paths.input, '--out', out, '--backend', 'cuda-emulated');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).toContain('on cuda-emulated (the CPU, through the emulated driver)');
    expect(scaledDifference(readNpy(readFileSync(out), out).data, output.data)).toBeLessThan(RTOL);
  }, 120_000);

  it('reproduces FCMAE goldens (pred and loss), the encoder compacted to the visible patches', async () => {
    const c = fcmaeCases[0];
    const file = join(scratch, `${c.name}.cnx`);
    writeFileSync(file, `import "${repoPath('models/fcmae.cnx').replace(/\\/g, '/')}"\n${fcmaeModelLine(c)}\n`);
    const [pred, loss] = [join(scratch, 'pred.npy'), join(scratch, 'loss.npy')];
    const files = (f: string) => join(fcmaeDir, c.name, f);
    const result = await convc('run', file, '--weights', files('weights.safetensors'), '--input', files('input.npy'), '--mask', files('mask.npy'), '--out', pred, '--loss-out', loss, '--backend', 'cuda-emulated');
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(scaledDifference(readNpy(readFileSync(pred), pred).data, fcmaeNpy(c.name, 'pred.npy').data)).toBeLessThan(RTOL);
    expect(Math.abs(readNpy(readFileSync(loss), loss).data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
  }, 120_000);

  it('refuses --debug-nonfinite and tuning files, which are for other backends', async () => {
    const model = repoPath('models/convnextv2-atto.cnx');
    const nonFinite = await convc('run', model, '--random-weights', '--size', '32', '--backend', 'cuda-emulated', '--debug-nonfinite');
    expect(nonFinite.code).toBe(2);
    expect(nonFinite.err).toContain('--debug-nonfinite is for the reference and webgpu backends');
    const tuning = await convc('run', model, '--random-weights', '--size', '32', '--backend', 'cuda-emulated', '--tuning', join(scratch, 'none.json'));
    expect(tuning.code).toBe(2);
    expect(tuning.err).toContain('--tuning files are for WebGPU adapters');
  });
});

describe.runIf(!driverLoads())('convc run --backend cuda on a machine without the NVIDIA driver', () => {
  it('says libcuda.so.1 is missing, what provides it, and that cuda-emulated runs without a GPU', async () => {
    const { code, err } = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--size', '32', '--backend', 'cuda');
    if (findNvcc() === undefined) {
      // Without nvcc the kernels cannot be compiled first; that is the error then.
      expect(err).toContain('nvcc');
      return;
    }
    expect(code).toBe(2);
    expect(err).toMatch(/^error: convnextv2-atto: cannot load the CUDA driver library libcuda\.so\.1\./m);
    expect(err).toContain('NVIDIA driver');
    expect(err).toContain('--backend cuda-emulated');
    expect(err).not.toMatch(/internal error|\n\s+at /);
  }, 120_000);
});

describe('convc compile --target cuda', () => {
  it("writes kernels.cu, the runner and (with nvcc) kernels.fatbin; the package's own runner and kernels agree with the reference", async () => {
    const dir = join(scratch, 'atto');
    const { code, out, err } = await convc('compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'cuda', '--size', '32', '--batch', '2', '--random-weights', '--seed', '5', '-o', dir);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/CUDA launches\nwrote .*\(model\.ts, model\.js, kernels\.cu \(\d+ kernels\)/);
    expect(existsSync(join(dir, 'kernels.fatbin'))).toBe(findNvcc() !== undefined);
    const kernels = readFileSync(join(dir, 'kernels.cu'), 'utf8');
    const names = [...kernels.matchAll(/^extern "C" __global__ void (\w+)\(/gm)].map((m) => m[1]);
    const runner = await importCudaRunner<Float32Array>(readFileSync(join(dir, 'model.js'), 'utf8'));
    expect(runner.modelInfo.kernels.map((k) => k.name)).toEqual(names);
    const model = await runner.createModel(readFileSync(join(dir, 'weights.bin')), { module: buildEmulatedKernels(kernels, names), library: emulatedDriverPath(), koffi: convcKoffi() });
    try {
      const graph = zooGraph('convnextv2-atto', { batch: 2, height: 32, width: 32 }, pipelines.unfused);
      const input = randomInput([2, 3, 32, 32], 9);
      const logits = await model.run(input.data);
      expect(scaledDifference(logits, executeReference(graph, randomWeights(graph, 5), input).data)).toBeLessThan(RTOL);
    } finally {
      model.destroy();
    }
  }, 180_000);

  it('without nvcc writes kernels.cu and says how to build kernels.fatbin', async () => {
    const saved = process.env.NVCC;
    process.env.NVCC = join(scratch, 'no-nvcc-here');
    try {
      const dir = join(scratch, 'no-nvcc');
      const { code, err } = await convc('compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'cuda', '--size', '32', '-o', dir);
      expect(code).toBe(0);
      expect(err).toContain('note: nvcc not found');
      expect(err).toContain(`nvcc -fatbin -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 -gencode arch=compute_90,code=compute_90 -o ${dir}/kernels.fatbin ${dir}/kernels.cu`);
      expect(existsSync(join(dir, 'kernels.cu'))).toBe(true);
      expect(existsSync(join(dir, 'kernels.fatbin'))).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.NVCC;
      else process.env.NVCC = saved;
    }
  });

  it('refuses an unknown target and WebGPU tuning files', async () => {
    expect((await convc('compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'metal')).err).toContain("unknown target 'metal'; targets: webgpu, cuda");
    expect((await convc('compile', repoPath('models/convnextv2-atto.cnx'), '--target', 'cuda', '--no-tuning')).err).toContain('--target cuda uses its default schedules');
  });
});
