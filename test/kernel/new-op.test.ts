// Adding an elementwise op touches its definition and nothing in any backend: `relu`,
// defined in test/kernel/relu.ts and added by a test-only registry extension, runs fused and
// unfused on the kernel interpreter and on WebGPU, checked against its own reference math.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executeReference } from '../../src/backends/reference/executor.js';
import { acquireGpu, type AcquiredGpu } from '../../src/backends/webgpu/device.js';
import { executeWebGpu } from '../../src/backends/wgsl/execute.js';
import { lowerToWgsl } from '../../src/backends/wgsl/lower.js';
import { elaborate } from '../../src/dsl/elaborate.js';
import { loadProgram } from '../../src/dsl/load.js';
import { interpretGraph } from '../../src/kernel/execute.js';
import { relu } from './relu.js';
import { registerOp } from '../../src/ir/registry.js';
import type { Graph } from '../../src/ir/types.js';
import { pipelines, runPipeline } from '../../src/passes/manager.js';
import { withDerivedWeights } from '../../src/weights/derive.js';
import { randomInput, randomWeights } from '../../src/weights/random.js';
import { repoPath, scaledDifference } from '../helpers.js';

// Kernels compute in f32 like a GPU; the reference accumulates in f64: the project's f32
// kernel tolerance, 2e-5 of the output's scale.
const KERNEL_RTOL = 2e-5;

const source = `family ReluNet(dim) {
  input(dim)
  conv: conv2d(dim, dim, kernel=3, padding=1)
  act: relu()
  pw: linear(dim, 2 * dim)
  act2: relu()
}
model m = ReluNet(16)
`;

let unregister: () => void = () => {};
let gpu: AcquiredGpu | undefined;
beforeAll(async () => {
  unregister = registerOp(relu);
  gpu = await acquireGpu({ adapter: 'vulkan' });
}, 60_000);
afterAll(() => {
  unregister();
  gpu?.device.destroy();
});

function graphs(): Record<'fused' | 'unfused', Graph> {
  const file = join(mkdtempSync(join(tmpdir(), 'convc-relu-')), 'relu.cnx');
  writeFileSync(file, source);
  const graph = elaborate(loadProgram(file), 'm', { batch: 2, height: 9, width: 8 });
  return { fused: runPipeline(graph, pipelines.fused), unfused: runPipeline(graph, pipelines.unfused) };
}

describe('an elementwise op defined outside src/ (relu)', () => {
  it('is fused into the conv and linear kernels as their epilogue', () => {
    const { fused } = graphs();
    expect(fused.nodes.filter((n) => n.fusion?.epilogue.some((s) => s.op === 'relu'))).toHaveLength(2);
    const program = lowerToWgsl(fused);
    expect(program.shaders.map((s) => s.name)).toEqual(expect.arrayContaining(['conv2d_3x3_relu', 'linear_relu_gemm']));
    expect(program.shaders.find((s) => s.name === 'conv2d_3x3_relu')!.code).toMatch(/let v_relu = max\(acc, 0\.0\);/);
  });

  it.each(['fused', 'unfused'] as const)('%s: the interpreter and WebGPU agree with its reference math', async (pipeline) => {
    const graph = graphs()[pipeline];
    const weights = withDerivedWeights(graph, randomWeights(graph, 5));
    const input = randomInput(graph.nodes[0].type.shape, 6);
    const expected = executeReference(graph, weights, input).data;
    // Half the outputs are clamped: the op really ran.
    expect(expected.filter((v) => v === 0).length).toBeGreaterThan(expected.length / 4);
    expect(scaledDifference(interpretGraph(graph, weights, input).data, expected)).toBeLessThan(KERNEL_RTOL);
    const { output } = await executeWebGpu(() => graph, weights, input, gpu!.device);
    expect(scaledDifference(output.data, expected)).toBeLessThan(KERNEL_RTOL);
  }, 120_000);

  it('needed no backend or kernel code: nothing under src/ names it', () => {
    // git grep exits 1 when nothing matches.
    const grep = spawnSync('git', ['grep', '-l', '-w', '-i', 'relu', '--', 'src'], { cwd: repoPath('.'), encoding: 'utf8' });
    expect(grep.stdout).toBe('');
    expect(grep.status).toBe(1);
  });
});
