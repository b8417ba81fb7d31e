// convc bench as a command: both configurations and both peers on one adapter, JSON and SVG;
// outputs held to the reference executor's, so a wrong configuration fails the command.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agreementTolerance } from '../../src/bench/bench.js';
import { ortWebGpuAdapter } from '../../src/bench/peers.js';
import { median, quantile, shuffled, summarize } from '../../src/bench/stats.js';
import { benchCommand } from '../../src/cli/commands/bench.js';
import { main } from '../../src/cli/main.js';
import { seededRandom } from '../../src/weights/random.js';
import { captureIo, repoPath } from '../helpers.js';

describe('convc bench', () => {
  it('measures fused, unfused, ort-webgpu and ort-cpu in one run and writes JSON and SVG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-bench-'));
    const io = captureIo();
    const code = await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--batch', '2', '--runs', '3', '--warmup', '1', '--order-seed', '7', '--json', join(dir, 'r.json'), '--svg', join(dir, 'r.svg')], io);
    expect(code, io.err()).toBe(0);
    expect(io.out()).toMatch(/convc fused\s+[\d.]+\s+[\d.]+/);
    expect(io.out()).toMatch(/fused vs unfused: [\d.]+x/);
    expect(io.out()).toMatch(/order seed 7/);
    expect(io.out()).toMatch(/adapter \(--adapter auto\): \S/);
    expect(io.out()).toMatch(/ort-webgpu adapter: unverified: /);
    const result = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(result).toMatchObject({ model: 'convnextv2-atto', batch: 2, size: [32, 32], runs: 3, order_seed: 7, adapter_choice: 'auto', tolerance: agreementTolerance });
    expect(result.adapter).toMatch(/\S/);
    for (const config of [result.fused, result.unfused, result.peers['ort-webgpu'], result.peers['ort-cpu']]) {
      expect(config.error).toBeUndefined();
      for (const key of ['median_ms', 'q1_ms', 'q3_ms', 'min_ms', 'max_ms', 'images_per_s']) expect(config[key]).toBeGreaterThan(0);
      expect(config.iqr_ms).toBeCloseTo(config.q3_ms - config.q1_ms, 9);
      // Every configuration computed the same model as the reference executor.
      expect(config.max_scaled_diff_vs_reference).toBeLessThanOrEqual(agreementTolerance);
      expect(config.wrong).toBe(false);
    }
    // ORT gets the benchmarked batch and size as fixed dims, not a symbolic batch.
    for (const name of ['ort-webgpu', 'ort-cpu']) expect(result.peers[name].input_shape).toEqual([2, 3, 32, 32]);
    expect(result.fused.adapter).toBe(result.adapter);
    expect(result.fused.adapter_verified).toBe(true);
    expect(result.peers['ort-webgpu'].adapter_verified).toBe(false);
    expect(result.fused.dispatches).toBeLessThan(result.unfused.dispatches);
    expect(readFileSync(join(dir, 'r.svg'), 'utf8')).toMatch(/^<svg[\s\S]*convc fused[\s\S]*ort-cpu[\s\S]*<\/svg>/);
  }, 180_000);

  it('marks a configuration whose output differs from the reference wrong, shows no ratio for it and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-bench-'));
    const io = captureIo();
    // Off by 1e-3 of the output's scale in one element: an error a broken kernel could make.
    const tamperOutput = (config: string, output: Float32Array) => {
      if (config !== 'fused') return output;
      const wrong = output.slice();
      const scale = Math.max(...wrong.map(Math.abs));
      wrong[3] += 1e-3 * scale;
      return wrong;
    };
    const args = [repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--runs', '2', '--warmup', '0', '--peers', 'none', '--json', join(dir, 'r.json')];
    const code = await benchCommand(args, io, { tamperOutput });
    expect(code, io.err()).toBe(1);
    expect(io.out()).toMatch(/convc fused\s.*WRONG \d/);
    expect(io.out()).not.toMatch(/convc unfused\s.*WRONG/);
    expect(io.out()).toMatch(/fused vs unfused: wrong/);
    expect(io.err()).toMatch(/convc fused computed a different output than the reference executor/);
    const result = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(result.fused.wrong).toBe(true);
    expect(result.fused.max_scaled_diff_vs_reference).toBeGreaterThan(5e-4);
    expect(result.unfused.wrong).toBe(false);
    expect(result.ratios.fused_vs_unfused).toBe('wrong');
  }, 120_000);

  it('benchmarks FCMAE sparse against dense-masked, whole and encoder alone, each checked against the reference', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-bench-'));
    const io = captureIo();
    const code = await main(['bench', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--batch', '2', '--mask-ratio', '0.75', '--runs', '2', '--warmup', '1', '--order-seed', '3', '--profile', '--json', join(dir, 'f.json')], io);
    expect(code, io.err()).toBe(0);
    expect(io.err()).toContain('masking 3 of 4 patches of each sample at random (--mask-ratio 0.75 --seed 0)');
    expect(io.out()).toMatch(/encoder_sparse \/ encoder_dense \(time\): [\d.]+/);
    const result = JSON.parse(readFileSync(join(dir, 'f.json'), 'utf8'));
    expect(result).toMatchObject({ model: 'fcmae-convnextv2-atto', batch: 2, size: [64, 64], runs: 2, order_seed: 3, masked_patches: 6, patches: 8 });
    for (const name of ['sparse', 'dense', 'encoder_sparse', 'encoder_dense']) {
      expect(result[name].error, name).toBeUndefined();
      expect(result[name].median_ms).toBeGreaterThan(0);
      expect(result[name].max_scaled_diff_vs_reference).toBeLessThanOrEqual(agreementTolerance);
      expect(result[name].wrong).toBe(false);
    }
    // The sparse encoder computes a quarter of the patches after the stem: under half the MACs.
    expect(result.encoder_sparse.gflops * result.encoder_sparse.median_ms).toBeLessThan(0.5 * result.encoder_dense.gflops * result.encoder_dense.median_ms);
    expect(result.ratios.encoder_sparse_over_dense).toBeCloseTo(result.encoder_sparse.median_ms / result.encoder_dense.median_ms, 9);
    // --profile: GPU time per pass of each, from timestamp queries.
    for (const name of ['sparse', 'dense', 'encoder_sparse', 'encoder_dense']) expect(result.gpu[name].gpu_median_ms).toBeGreaterThan(0);
    expect(result.ratios.gpu_encoder_sparse_over_dense).toBeCloseTo(result.gpu.encoder_sparse.gpu_median_ms / result.gpu.encoder_dense.gpu_median_ms, 9);
    expect(io.out()).toMatch(/encoder_sparse \/ encoder_dense \(GPU time\): [\d.]+/);
    const peers = captureIo();
    expect(await main(['bench', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--peers', 'ort-cpu'], peers)).toBe(2);
    expect(peers.err()).toMatch(/is benchmarked sparse against dense, with no peers/);
  }, 300_000);

  it('rejects an unknown peer and an unknown adapter', async () => {
    const io = captureIo();
    expect(await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--peers', 'tvm'], io)).toBe(2);
    expect(io.err()).toMatch(/unknown peer 'tvm'; peers: ort-webgpu, ort-cpu, or none/);
    expect(await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--adapter', 'metal'], io)).toBe(2);
    expect(io.err()).toMatch(/--adapter needs one of auto, vulkan, gl; got 'metal'/);
  });

  it('refuses an unwritable --json or --svg path before benchmarking anything', async () => {
    const io = captureIo();
    const started = Date.now();
    expect(await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--json', '/proc/convc-bench.json'], io)).toBe(2);
    expect(io.err()).toMatch(/cannot write the --json file '\/proc\/convc-bench\.json'/);
    expect(await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--svg', repoPath('models')], io)).toBe(2);
    expect(io.err()).toMatch(/cannot write the --svg file '.*models'/);
    // No adapter was acquired and nothing ran: both answers come at once.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it.runIf(process.platform === 'linux')("refuses ort-webgpu where convc's adapter cannot be the one ORT takes, and calls ORT's adapter unverified", () => {
    const gl = 'device: llvmpipe, backend: opengles; compatibility feature level, via OpenGL ES on surfaceless EGL';
    expect(() => ortWebGpuAdapter({ info: gl })).toThrow(/adapter mismatch, not run: convc runs on opengles/);
    const vulkan = 'vendor: mesa, device: llvmpipe, backend: vulkan; core feature level, via lavapipe from .cache/webgpu';
    expect(ortWebGpuAdapter({ info: vulkan })).toMatchObject({ verified: false, description: expect.stringMatching(/^unverified: /) });
    const unreported = "vendor: nvidia, backend: Dawn's default; core feature level, via Dawn's default adapter";
    expect(ortWebGpuAdapter({ info: unreported }).verified).toBe(false);
  });
});

describe('timing statistics', () => {
  it('takes medians and quartiles by linear interpolation and derives images/s from the median', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([1, 2, 3, 4], 0.75)).toBe(3.25);
    expect(summarize([10, 30, 20], 4)).toEqual({ median_ms: 20, q1_ms: 15, q3_ms: 25, iqr_ms: 10, min_ms: 10, max_ms: 30, runs: 3, images_per_s: 200 });
  });

  it('shuffles the run order reproducibly from a seed, and differently per round', () => {
    const configs = ['fused', 'unfused', 'ort-webgpu', 'ort-cpu'];
    const rounds = (seed: number) => {
      const random = seededRandom(seed);
      return Array.from({ length: 8 }, () => shuffled(configs, random).join(' '));
    };
    expect(rounds(3)).toEqual(rounds(3));
    expect(new Set(rounds(3)).size).toBeGreaterThan(1);
    for (const order of rounds(3)) expect(order.split(' ').sort()).toEqual([...configs].sort());
  });
});
