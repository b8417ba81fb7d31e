// convc bench's gpujs row: convc fused for the gpu.js target, run by its generated runner in
// gpu.js's GL mode (headless-gl; here Mesa's llvmpipe on a private Xvfb), timed in the same
// rounds as the WebGPU rows, checked against the reference and compared with convc fused.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agreementTolerance, type BenchResult } from '../../src/bench/bench.js';
import { benchCommand } from '../../src/cli/commands/bench.js';
import { main } from '../../src/cli/main.js';
import { captureIo, repoPath } from '../helpers.js';

const atto = repoPath('models/convnextv2-atto.cnx');
const small = [atto, '--size', '32', '--peers', 'none', '--cuda', 'off'];

function bench(args: readonly string[], hooks: Parameters<typeof benchCommand>[2] = {}) {
  const json = join(mkdtempSync(join(tmpdir(), 'convc-bench-gpujs-')), 'r.json');
  const io = captureIo();
  return benchCommand([...args, '--json', json], io, hooks).then((code) => ({ code, io, result: JSON.parse(readFileSync(json, 'utf8')) as BenchResult }));
}

describe('convc bench: the gpujs row', () => {
  it('times convc fused as gpu.js kernels in GL mode in the same rounds, checks it and compares it with WebGPU fused', async () => {
    const { code, io, result } = await bench([...small, '--runs', '3', '--warmup', '1', '--order-seed', '5']);
    expect(code, io.err()).toBe(0);
    const gpujs = result.gpujs!;
    expect(gpujs.error).toBeUndefined();
    for (const key of ['median_ms', 'q1_ms', 'q3_ms', 'min_ms', 'max_ms', 'images_per_s', 'gflops', 'setup_ms', 'dispatches'] as const) expect(gpujs[key]).toBeGreaterThan(0);
    expect(gpujs.runs).toBe(3);
    expect(gpujs.max_scaled_diff_vs_reference).toBeLessThanOrEqual(agreementTolerance);
    expect(gpujs.wrong).toBe(false);
    // Not the WebGPU adapter: the row names where it ran.
    expect(gpujs.adapter).toMatch(/^gpu\.js GL mode: headless-gl \(WebGL 1 over ANGLE\) on /);
    expect(gpujs.adapter).not.toBe(result.adapter);
    expect(result.ratios.gpujs_vs_fused).toBeCloseTo(result.fused.median_ms! / gpujs.median_ms!, 9);
    expect(io.out()).toMatch(/convc gpujs\s+[\d.]+\s+[\d.]+.*\s\d\.\de-\d+\s+gpu\.js$/m);
    expect(io.out()).toMatch(/convc gpujs device: gpu\.js GL mode: .*; not the WebGPU adapter/);
    expect(io.out()).toMatch(/gpujs vs fused: [\d.]+x/);
  }, 180_000);

  it('marks a gpujs row whose output differs from the reference wrong, gives it no ratio and exits 1', async () => {
    const tamperOutput = (config: string, output: Float32Array) => {
      if (config !== 'gpujs') return output;
      const wrong = output.slice();
      wrong[3] += 1e-3 * Math.max(...wrong.map(Math.abs));
      return wrong;
    };
    const { code, io, result } = await bench([...small, '--runs', '2', '--warmup', '0'], { tamperOutput });
    expect(code, io.err()).toBe(1);
    expect(result.gpujs!.wrong).toBe(true);
    expect(result.fused.wrong).toBe(false);
    expect(result.ratios.gpujs_vs_fused).toBe('wrong');
    expect(io.out()).toMatch(/gpujs vs fused: wrong/);
    expect(io.err()).toMatch(/convc gpujs computed a different output than the reference executor/);
  }, 180_000);

  it('leaves the row out with --gpujs off, saying so in the JSON', async () => {
    const off = await bench([...small, '--runs', '1', '--warmup', '0', '--gpujs', 'off']);
    expect(off.code).toBe(0);
    expect(off.result.gpujs).toEqual({ not_run: '--gpujs off' });
    expect(off.result.ratios).not.toHaveProperty('gpujs_vs_fused');
    expect(off.io.out()).not.toMatch(/gpujs/);
  }, 120_000);

  it('refuses an unknown --gpujs, and --gpujs on for FCMAE, before benchmarking anything', async () => {
    const io = captureIo();
    expect(await main(['bench', atto, '--gpujs', 'yes'], io)).toBe(2);
    expect(io.err()).toMatch(/--gpujs needs one of auto, on, off; got 'yes'/);
    expect(await main(['bench', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--gpujs', 'on'], io)).toBe(2);
    expect(io.err()).toMatch(/--gpujs on: 'fcmae-convnextv2-atto' is benchmarked sparse against dense on WebGPU, with no gpujs row/);
  });
});
