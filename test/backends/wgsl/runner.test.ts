// The generated runner: type-checks under tsc --strict, and its kernels read as promised.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lowerToWgsl } from '../../../src/backends/wgsl/lower.js';
import { commentSafe } from '../../../src/backends/wgsl/module.js';
import { generateRunner } from '../../../src/backends/wgsl/runner.js';
import { dispatchGrid } from '../../../src/backends/wgsl/schedule.js';
import { repoPath, zooGraph } from '../../helpers.js';

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
    for (const name of ['nchw_to_nhwc', 'conv2d_4x4_s4', 'conv2d_depthwise_7x7', 'layernorm_channels', 'linear', 'gelu', 'grn_norms', 'grn_mean', 'grn_apply', 'residual_add', 'global_avg_pool']) {
      expect(names).toContain(name);
    }
  });

  it('dispatch one kernel per unfused op (three for GRN, one for the input layout)', () => {
    // V2-atto: 16 conv2d, 17 layernorm, 25 linear, 12 gelu, 12 grn (x3), 12 add, 1 pool, input.
    expect(program.dispatches).toHaveLength(16 + 17 + 25 + 12 + 12 * 3 + 12 + 1 + 1);
  });

  it('reuse activation buffers', () => {
    const activations = program.buffers.filter((b) => b.role === 'activation');
    expect(activations.length).toBeLessThan(12);
  });

  it('keep user text from closing a comment or breaking a line', () => {
    expect(commentSafe('a */ b\nc')).toBe('a * / b c');
  });

  it('wrap large grids into two dimensions within the per-dimension limit', () => {
    expect(dispatchGrid(64 * 65535, { workgroupSize: 64 })).toEqual([65535, 1, 1]);
    const [x, y] = dispatchGrid(64 * 65536 * 3, { workgroupSize: 64 });
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y * 64).toBeGreaterThanOrEqual(64 * 65536 * 3);
  });
});
