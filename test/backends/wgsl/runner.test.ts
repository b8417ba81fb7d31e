// The generated runner: type-checks under tsc --strict, and its kernels read as promised.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dispatchGrid, lowerToWgsl } from '../../../src/backends/wgsl/lower.js';
import { commentSafe } from '../../../src/backends/wgsl/text.js';
import { importRunnerJavaScript } from '../../../src/backends/wgsl/load-runner.js';
import { generateRunner, generateRunnerFiles } from '../../../src/backends/wgsl/runner.js';
import { pipelines } from '../../../src/passes/manager.js';
import { goldenFiles, goldenGraph, repoPath, zooGraph } from '../../helpers.js';

describe('generated runner', () => {
  it('type-checks with tsc --strict against @webgpu/types', () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-runner-'));
    writeFileSync(join(dir, 'model.ts'), generateRunner(lowerToWgsl(zooGraph('convnextv1-tiny', { batch: 2, height: 64, width: 48 }))));
    const tsc = repoPath('node_modules/typescript/bin/tsc');
    const args = ['--strict', '--noEmit', '--target', 'es2022', '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2022,dom'];
    const types = ['--typeRoots', repoPath('node_modules'), '--types', '@webgpu/types'];
    // execFileSync throws with tsc's diagnostics in the message if the runner does not compile.
    expect(() => execFileSync(process.execPath, [tsc, ...args, ...types, join(dir, 'model.ts')], { encoding: 'utf8', stdio: 'pipe' })).not.toThrow();
  }, 120_000);

  it('exports createModel and modelInfo, and imports nothing', () => {
    const source = generateRunner(lowerToWgsl(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 })));
    expect(source).toMatch(/export async function createModel\(device: GPUDevice, weights: ArrayBuffer \| ArrayBufferView\): Promise<ConvcModel>/);
    expect(source).toMatch(/export const modelInfo = \{/);
    expect(source).not.toMatch(/^\s*import /m);
    expect(source).not.toMatch(/require\(/);
  });

  it('comes as JavaScript too: the same module without its types', async () => {
    const program = lowerToWgsl(zooGraph('convnextv2-atto', { batch: 1, height: 32, width: 32 }));
    const { ts, js } = generateRunnerFiles(program);
    expect(ts).toBe(generateRunner(program));
    expect(js).not.toMatch(/ as const|: GPUDevice|interface /);
    const runner = await importRunnerJavaScript(js);
    expect(runner.modelInfo).toMatchObject({ name: 'convnextv2-atto', inputShape: [1, 3, 32, 32], outputShape: [1, 1000], dispatches: program.dispatches.length });
    expect(typeof runner.createModel).toBe('function');
  });
});

describe('WGSL kernels', () => {
  const program = lowerToWgsl(zooGraph('convnextv2-atto', { batch: 2, height: 67, width: 45 }));

  it('name each kernel and say what it computes and for which IR nodes', () => {
    for (const shader of program.shaders) {
      expect(shader.code).toMatch(new RegExp(`^// ${shader.name}: \\S`));
      expect(shader.code).toMatch(/^\/\/ Computes IR node\(s\): %\d+ /m);
      expect(shader.code).toContain(`fn ${shader.name}(`);
    }
    const names = new Set(program.shaders.map((s) => s.name));
    for (const name of ['nchw_to_nhwc', 'conv2d_4x4_s4', 'conv2d_depthwise_7x7', 'layernorm_channels', 'linear_gemm', 'gelu', 'grn_stats', 'grn_apply', 'residual_add', 'global_avg_pool']) {
      expect(names).toContain(name);
    }
  });

  it('dispatch one kernel per unfused op (two for GRN, split into its statistics and apply; one for the input layout)', () => {
    // V2-atto: 16 conv2d, 17 layernorm, 25 linear, 12 gelu, 12 grn (x2), 12 add, 1 pool, input.
    expect(program.dispatches).toHaveLength(16 + 17 + 25 + 12 + 12 * 2 + 12 + 1 + 1);
  });

  it('bind at most 8 storage buffers, the WebGPU default per shader stage, in every zoo model', () => {
    for (const variant of ['convnextv1-tiny', 'convnextv2-atto']) {
      for (const pipeline of [pipelines.fused, pipelines.unfused]) {
        const lowered = lowerToWgsl(zooGraph(variant, { batch: 1, height: 64, width: 64 }, pipeline));
        for (const d of lowered.dispatches) expect(d.buffers.length, `${variant} ${lowered.shaders[d.shader].name}`).toBeLessThanOrEqual(8);
      }
    }
  });

  it('reuse activation buffers', () => {
    const activations = program.buffers.filter((b) => b.role === 'activation');
    expect(activations.length).toBeLessThan(12);
  });

  it('keep user text from closing a comment or breaking a line', () => {
    expect(commentSafe('a */ b\nc')).toBe('a * / b c');
  });

  it('wrap large grids into two dimensions within the per-dimension limit', () => {
    expect(dispatchGrid(65535)).toEqual([65535, 1, 1]);
    const [x, y] = dispatchGrid(65536 * 3);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y).toBeGreaterThanOrEqual(65536 * 3);
  });
});

describe('what fusion saves', () => {
  const blockDispatches = (name: string, pipeline: readonly string[]) => {
    const { input } = goldenFiles(name);
    const program = lowerToWgsl(goldenGraph(name, input, pipeline));
    // Leave out the NCHW <-> NHWC layout changes at the model's edges.
    return program.dispatches.filter((d) => !program.shaders[d.shader].name.startsWith('nchw_to') && !program.shaders[d.shader].name.startsWith('nhwc_to'));
  };

  it('a V2 block takes at most 4 dispatches fused and at least 8 unfused', () => {
    expect(blockDispatches('v2-block', pipelines.fused).length).toBeLessThanOrEqual(4);
    expect(blockDispatches('v2-block', pipelines.unfused).length).toBeGreaterThanOrEqual(8);
  });

  it('a V1 block takes 3 dispatches fused, 7 unfused', () => {
    expect(blockDispatches('v1-block', pipelines.fused)).toHaveLength(3);
    expect(blockDispatches('v1-block', pipelines.unfused)).toHaveLength(7);
  });

  it('fusion binds fewer bytes', () => {
    const bytes = (pipeline: readonly string[]) => blockDispatches('v2-block', pipeline).reduce((sum, d) => sum + d.bytes, 0);
    expect(bytes(pipelines.fused)).toBeLessThan(0.7 * bytes(pipelines.unfused));
  });
});
