// f16 storage (--precision f16): activations and weights stored as f16, arithmetic in f32,
// on lavapipe (which has shader-f16) against the PyTorch goldens, the f32 kernels and the
// reference; refused where the device lacks shader-f16 (Dawn's OpenGL ES path).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { acquireGpu, type AcquiredGpu } from '../../../src/backends/webgpu/device.js';
import { executeReference } from '../../../src/backends/reference/executor.js';
import { executeWebGpu } from '../../../src/backends/wgsl/execute.js';
import { importRunner } from '../../../src/backends/wgsl/load-runner.js';
import { lowerToWgsl, packWeights } from '../../../src/backends/wgsl/lower.js';
import { generateRunner } from '../../../src/backends/wgsl/runner.js';
import { interpretGraph } from '../../../src/kernel/execute.js';
import { pipelines } from '../../../src/passes/manager.js';
import { UserError } from '../../../src/util/diagnostics.js';
import { bindWeights } from '../../../src/weights/bind.js';
import { randomInput, randomWeights } from '../../../src/weights/random.js';
import { captureIo, goldenCases, goldenFiles, goldenGraph, repoPath, scaledDifference, zooGraph } from '../../helpers.js';

// f16 keeps 11 significant bits: each stored value is off by at most 2^-12 (2.4e-4) of itself,
// and over a network's ~20 stored stages these add up to about 1e-3 of the output's scale. The
// project's bound for f16 against f32 is 1e-2 (bench's f16AgreementTolerance): 10x margin, and
// a misread buffer or wrong layout errs by O(1).
const F16_RTOL = 1e-2;

let vulkan: AcquiredGpu;
let gl: AcquiredGpu;
beforeAll(async () => {
  vulkan = await acquireGpu({ adapter: 'vulkan' });
  gl = await acquireGpu({ adapter: 'gl' });
}, 120_000);
afterAll(() => {
  vulkan?.destroy();
  gl?.destroy();
});

describe('f16 storage on lavapipe', () => {
  it('lavapipe has shader-f16 and the OpenGL ES path does not (what these tests rely on)', () => {
    expect(vulkan.device.features.has('shader-f16')).toBe(true);
    expect(gl.device.features.has('shader-f16')).toBe(false);
  });

  const cases = goldenCases.flatMap((c) => (['fused', 'unfused'] as const).map((pipeline) => [c.name, pipeline] as const));
  it.each(cases)('PyTorch golden %s, %s: within 1e-2 of the output scale, and of f32', async (name, pipeline) => {
    const { input, output, weights, paths } = goldenFiles(name);
    const graph = goldenGraph(name, input, pipelines[pipeline]);
    const bound = bindWeights(graph, weights, paths.weights);
    const half = await executeWebGpu(() => graph, bound, input, vulkan.device, { precision: 'f16' });
    const full = await executeWebGpu(() => graph, bound, input, vulkan.device);
    expect(scaledDifference(half.output.data, output.data)).toBeLessThan(F16_RTOL);
    expect(scaledDifference(half.output.data, full.output.data)).toBeLessThan(F16_RTOL);
    // And f16 really was used: the result is not bit-identical to f32's.
    expect(scaledDifference(half.output.data, full.output.data)).toBeGreaterThan(0);
  });

  it('V2-atto at 224, fused, against the reference; every kernel buffer but the caller input and output and GRN partial sums is f16', async () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 224, width: 224 }, pipelines.fused);
    const weights = randomWeights(graph, 5);
    const input = randomInput(graph.nodes[0].type.shape, 6);
    const { output } = await executeWebGpu(() => graph, weights, input, vulkan.device, { precision: 'f16' });
    expect(scaledDifference(output.data, executeReference(graph, weights, input).data)).toBeLessThan(F16_RTOL);
    const program = lowerToWgsl(graph, { precision: 'f16' });
    // Partial sums of squares (scratch) stay f32: they outgrow f16's range.
    for (const b of program.buffers) expect(b.dtype, b.role).toBe(b.role === 'input' || b.role === 'output' || b.role === 'scratch' ? 'f32' : 'f16');
    expect(program.buffers.some((b) => b.role === 'scratch')).toBe(true);
    expect(program.shaders.every((s) => s.needs.f16 === true && /^enable f16;$/m.test(s.code))).toBe(true);
  }, 120_000);

  it('the interpreter, rounding as f16 memory does, agrees with the GPU', async () => {
    const { input, weights: tensors, paths } = goldenFiles('convnextv2-mini');
    const graph = goldenGraph('convnextv2-mini', input, pipelines.fused);
    const weights = bindWeights(graph, tensors, paths.weights);
    const interpreted = interpretGraph(graph, weights, input, { storage: 'f16' });
    const { output } = await executeWebGpu(() => graph, weights, input, vulkan.device, { precision: 'f16' });
    // Both round the same stores; they differ only where WGSL's f32 -> f16 conversion picks the
    // other neighbour of an inexact value, which it may (and in f32 summation order).
    expect(scaledDifference(output.data, interpreted.data)).toBeLessThan(1e-3);
    expect(scaledDifference(interpreted.data, executeReference(graph, weights, input).data)).toBeLessThan(F16_RTOL);
  }, 60_000);

  it('halves the packed weights', () => {
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);
    const weights = randomWeights(graph, 1);
    const full = packWeights(graph, lowerToWgsl(graph), weights);
    const half = packWeights(graph, lowerToWgsl(graph, { precision: 'f16' }), weights);
    expect(half).toBeInstanceOf(Uint16Array);
    expect(half.byteLength * 2).toBe(full.byteLength);
  });
});

describe('f16 storage where the device lacks shader-f16', () => {
  const graph = zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }, pipelines.fused);

  it('convc run refuses before lowering, with a user error', async () => {
    const weights = randomWeights(graph, 1);
    const input = randomInput(graph.nodes[0].type.shape, 2);
    await expect(executeWebGpu(() => graph, weights, input, gl.device, { precision: 'f16' })).rejects.toThrow(UserError);
    await expect(executeWebGpu(() => graph, weights, input, gl.device, { precision: 'f16' })).rejects.toThrow(/--precision f16 needs the shader-f16 feature/);
  });

  it('a runner compiled for f16 refuses the device, naming the feature', async () => {
    const program = lowerToWgsl(graph, { precision: 'f16' });
    const runner = await importRunner(generateRunner(program));
    await expect(runner.createModel(gl.device, packWeights(graph, program, randomWeights(graph)))).rejects.toThrow(/kernel \w+ stores f16 and needs the shader-f16 feature/);
  });
});

describe('the command line', () => {
  async function convc(...args: string[]) {
    const io = captureIo();
    const code = await main(args, io);
    return { code, out: io.out(), err: io.err() };
  }

  it('compile --precision f16 writes half the weights.bin and says so in the summary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-f16-'));
    const model = repoPath('models/convnextv2-atto.cnx');
    expect((await convc('compile', model, '-o', join(dir, 'f32'), '--random-weights', '--size', '32')).code).toBe(0);
    expect((await convc('compile', model, '-o', join(dir, 'f16'), '--random-weights', '--size', '32', '--precision', 'f16')).code).toBe(0);
    expect(readFileSync(join(dir, 'f16', 'weights.bin')).length * 2).toBe(readFileSync(join(dir, 'f32', 'weights.bin')).length);
    expect(readFileSync(join(dir, 'f16', 'summary.txt'), 'utf8')).toMatch(/^storage\s+f16 activations and weights \(the device needs shader-f16\)/m);
    expect(readFileSync(join(dir, 'f16', 'model.ts'), 'utf8')).toContain('precision: "f16" as');
  });

  it('run --precision f16 on the webgpu backend; a bad value, the reference backend and the gl adapter are user errors', async () => {
    const model = repoPath('models/convnextv2-atto.cnx');
    const ok = await convc('run', model, '--random-weights', '--backend', 'webgpu', '--adapter', 'vulkan', '--size', '32', '--precision', 'f16');
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/top classes/);
    expect((await convc('run', model, '--random-weights', '--precision', 'f8')).err).toMatch(/--precision needs f32 or f16; got 'f8'/);
    expect((await convc('run', model, '--random-weights', '--precision', 'f16')).err).toMatch(/--precision f16 is for GPU backends/);
    const onGl = await convc('run', model, '--random-weights', '--backend', 'webgpu', '--adapter', 'gl', '--size', '32', '--precision', 'f16');
    expect(onGl.code).toBe(2);
    expect(onGl.err).toMatch(/--precision f16 needs the shader-f16 feature/);
  });

  it('bench --precision f16 gives its own row, held to 1e-2', async () => {
    const { code, out } = await convc('bench', repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--runs', '1', '--warmup', '0', '--peers', 'none', '--adapter', 'vulkan', '--precision', 'f16');
    expect(code).toBe(0);
    expect(out).toMatch(/^convc fused f16 .* \d\.\de-[3-9] +convc's$/m);
    expect(out).toMatch(/fused f16 vs fused: \d+\.\d\dx/);
    expect(out).toContain('(1e-2 for f16 storage)');
  }, 60_000);
});
