// convc bench as a command: both configurations and both peers on one adapter, JSON and SVG.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { median, summarize } from '../../src/bench/stats.js';
import { main } from '../../src/cli/main.js';
import { captureIo, repoPath } from '../helpers.js';

describe('convc bench', () => {
  it('measures fused, unfused, ort-webgpu and ort-cpu in one run and writes JSON and SVG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'convc-bench-'));
    const io = captureIo();
    const code = await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--size', '32', '--batch', '2', '--runs', '2', '--warmup', '1', '--json', join(dir, 'r.json'), '--svg', join(dir, 'r.svg')], io);
    expect(code, io.err()).toBe(0);
    expect(io.out()).toMatch(/convc fused\s+[\d.]+/);
    expect(io.out()).toMatch(/fused vs unfused: [\d.]+x/);
    const result = JSON.parse(readFileSync(join(dir, 'r.json'), 'utf8'));
    expect(result).toMatchObject({ model: 'convnextv2-atto', batch: 2, size: [32, 32] });
    expect(result.adapter).toMatch(/\S/);
    for (const config of [result.fused, result.unfused, result.peers['ort-webgpu'], result.peers['ort-cpu']]) {
      expect(config.error).toBeUndefined();
      for (const key of ['median_ms', 'min_ms', 'max_ms', 'images_per_s']) expect(config[key]).toBeGreaterThan(0);
      // Every configuration computed the same model: outputs agree with convc fused.
      expect(config.max_rel_diff_vs_fused).toBeLessThan(1e-3);
    }
    expect(result.fused.dispatches).toBeLessThan(result.unfused.dispatches);
    expect(readFileSync(join(dir, 'r.svg'), 'utf8')).toMatch(/^<svg[\s\S]*convc fused[\s\S]*ort-cpu[\s\S]*<\/svg>/);
  }, 180_000);

  it('rejects an unknown peer', async () => {
    const io = captureIo();
    expect(await main(['bench', repoPath('models/convnextv2-atto.cnx'), '--peers', 'tvm'], io)).toBe(2);
    expect(io.err()).toMatch(/unknown peer 'tvm'; peers: ort-webgpu, ort-cpu, or none/);
  });
});

describe('timing statistics', () => {
  it('takes medians of odd and even counts and derives images/s from the median', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarize([10, 30, 20], 4)).toEqual({ median_ms: 20, min_ms: 10, max_ms: 30, runs: 3, images_per_s: 200 });
  });
});
