// convc bench's cuda row. No CI machine has NVIDIA's driver, so the row is run on convc's
// emulated driver (the same generated runner and kernels.cu, on the CPU) through the test-only
// hook; what --cuda auto does without a driver is checked only where there is none.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agreementTolerance, type BenchResult, type ConfigResult } from '../../src/bench/bench.js';
import { probeCudaDevice } from '../../src/bench/cuda-config.js';
import { formatTable, markdownTable } from '../../src/bench/report.js';
import { benchCommand } from '../../src/cli/commands/bench.js';
import { main } from '../../src/cli/main.js';
import { captureIo, repoPath } from '../helpers.js';

const atto = repoPath('models/convnextv2-atto.cnx');
const small = [atto, '--size', '32', '--peers', 'none'];

const noNvidiaDriver = (() => {
  try {
    probeCudaDevice('cuda');
    return false;
  } catch {
    return true;
  }
})();

function bench(args: readonly string[], hooks: Parameters<typeof benchCommand>[2] = {}) {
  const json = join(mkdtempSync(join(tmpdir(), 'convc-bench-cuda-')), 'r.json');
  const io = captureIo();
  return benchCommand([...args, '--json', json], io, hooks).then((code) => ({ code, io, result: JSON.parse(readFileSync(json, 'utf8')) as BenchResult }));
}

describe('convc bench: the cuda row', () => {
  it('times convc fused as CUDA kernels in the same rounds, checks it against the reference and compares it with WebGPU fused', async () => {
    const { code, io, result } = await bench([...small, '--runs', '3', '--warmup', '1', '--order-seed', '5'], { cudaDriver: 'cuda-emulated' });
    expect(code, io.err()).toBe(0);
    const cuda = result.cuda!;
    expect(cuda.error).toBeUndefined();
    for (const key of ['median_ms', 'q1_ms', 'q3_ms', 'min_ms', 'max_ms', 'images_per_s', 'gflops', 'setup_ms', 'dispatches'] as const) expect(cuda[key]).toBeGreaterThan(0);
    expect(cuda.runs).toBe(3);
    expect(cuda.max_scaled_diff_vs_reference).toBeLessThanOrEqual(agreementTolerance);
    expect(cuda.wrong).toBe(false);
    // The driver names the device; it is not the WebGPU adapter the other rows ran on.
    expect(cuda.adapter).toMatch(/^CUDA device 0: convc emulated CUDA device \(CPU\), compute capability 9\.0, driver [\d.]+ \(convc's emulated driver, on the CPU\)$/);
    expect(cuda.adapter).not.toBe(result.adapter);
    expect(cuda.adapter_verified).toBe(true);
    expect(result.ratios.cuda_vs_fused).toBeCloseTo(result.fused.median_ms! / cuda.median_ms!, 9);
    expect(io.out()).toMatch(/convc cuda\s+[\d.]+\s+[\d.]+.*\s\d\.\de-\d+\s+cuda$/m);
    expect(io.out()).toMatch(/convc cuda device: CUDA device 0: convc emulated CUDA device \(CPU\).*; not the WebGPU adapter/);
    expect(io.out()).toMatch(/cuda vs fused: [\d.]+x/);
  }, 180_000);

  it('marks a cuda row whose output differs from the reference wrong, gives it no ratio and exits 1', async () => {
    const tamperOutput = (config: string, output: Float32Array) => {
      if (config !== 'cuda') return output;
      const wrong = output.slice();
      wrong[3] += 1e-3 * Math.max(...wrong.map(Math.abs));
      return wrong;
    };
    const { code, io, result } = await bench([...small, '--runs', '2', '--warmup', '0'], { cudaDriver: 'cuda-emulated', tamperOutput });
    expect(code, io.err()).toBe(1);
    expect(result.cuda!.wrong).toBe(true);
    expect(result.cuda!.max_scaled_diff_vs_reference).toBeGreaterThan(5e-4);
    expect(result.fused.wrong).toBe(false);
    expect(result.ratios.cuda_vs_fused).toBe('wrong');
    expect(io.out()).toMatch(/convc cuda\s.*WRONG \d/);
    expect(io.out()).toMatch(/cuda vs fused: wrong/);
    expect(io.err()).toMatch(/convc cuda computed a different output than the reference executor/);
  }, 180_000);

  it.runIf(noNvidiaDriver)('leaves the row out where no CUDA driver loads, saying why in the JSON; --cuda on makes that an error and exit 1', async () => {
    const auto = await bench([...small, '--runs', '1', '--warmup', '0']);
    expect(auto.code, auto.io.err()).toBe(0);
    expect(auto.result.cuda).toEqual({ not_run: expect.stringMatching(/^no CUDA driver \(libcuda\.so\.1\) on this machine: /) });
    expect(auto.result.ratios).not.toHaveProperty('cuda_vs_fused');
    expect(auto.io.out()).not.toMatch(/cuda/);

    const on = await bench([...small, '--runs', '1', '--warmup', '0', '--cuda', 'on']);
    expect(on.code).toBe(1);
    expect(on.result.cuda!.error).toMatch(/^no CUDA driver \(libcuda\.so\.1\) on this machine: /);
    expect(on.io.out()).toMatch(/convc cuda\s+error: no CUDA driver/);
    expect(on.io.err()).toMatch(/error: --cuda on, but the convc cuda row did not run: no CUDA driver/);

    const off = await bench([...small, '--runs', '1', '--warmup', '0', '--cuda', 'off']);
    expect(off.code).toBe(0);
    expect(off.result.cuda).toEqual({ not_run: '--cuda off' });
  }, 180_000);

  it('refuses an unknown --cuda, and --cuda on for FCMAE, before benchmarking anything', async () => {
    const io = captureIo();
    expect(await main(['bench', atto, '--cuda', 'yes'], io)).toBe(2);
    expect(io.err()).toMatch(/--cuda needs one of auto, on, off; got 'yes'/);
    expect(await main(['bench', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--cuda', 'on'], io)).toBe(2);
    expect(io.err()).toMatch(/--cuda on: 'fcmae-convnextv2-atto' is benchmarked sparse against dense on WebGPU, with no cuda row/);
  });
});

describe('bench tables with a cuda row', () => {
  const timed = (median_ms: number, extra: Partial<ConfigResult> = {}): ConfigResult => ({ median_ms, iqr_ms: 0.5, q1_ms: median_ms, q3_ms: median_ms + 0.5, min_ms: median_ms, max_ms: median_ms + 1, runs: 3, images_per_s: 1000 / median_ms, max_scaled_diff_vs_reference: 1e-6, wrong: false, adapter: 'webgpu adapter', adapter_verified: true, ...extra });
  const result = (cuda?: ConfigResult, cuda_vs_fused?: number | 'wrong'): BenchResult => ({
    adapter: 'webgpu adapter',
    adapter_choice: 'auto',
    model: 'convnextv2-atto',
    batch: 1,
    size: [224, 224],
    date: '2026-01-01T00:00:00.000Z',
    macs: 1e9,
    runs: 3,
    warmup: 1,
    order_seed: 1,
    tolerance: agreementTolerance,
    reference_ms: 1000,
    fused: timed(10),
    unfused: timed(20),
    peers: { 'ort-webgpu': timed(15, { adapter: 'unverified: somewhere', adapter_verified: false }), 'ort-cpu': timed(40, { adapter: 'CPU (no WebGPU adapter)' }) },
    ...(cuda ? { cuda } : {}),
    ratios: { fused_vs_unfused: 2, fused_vs_ort_webgpu: 1.5, ...(cuda_vs_fused !== undefined ? { cuda_vs_fused } : {}) },
  });
  const device = 'CUDA device 0: NVIDIA H200, compute capability 9.0, driver 12.4 (libcuda.so.1)';

  it('keeps the README table as it was where no result has a cuda row', () => {
    const table = markdownTable([result(), result({ not_run: 'no CUDA driver (libcuda.so.1) on this machine: ...' })]).split('\n');
    expect(table[0]).toBe('| model | batch | size | fused ms (IQR) | unfused ms (IQR) | ort-webgpu ms (IQR) | ort-cpu ms (IQR) | fused vs unfused | fused vs ort-webgpu |');
    expect(table[1]).toBe('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    expect(table[2]).toBe('| convnextv2-atto | 1 | 224x224 | 10.0 (0.5) | 20.0 (0.5) | 15.0 (0.5) | 40.0 (0.5) | 2.00x | 1.50x |');
    expect(table[3]).toBe(table[2]);
  });

  it('adds the cuda columns where a result has the row, "-" for results without it, and "wrong" for a wrong one', () => {
    const table = markdownTable([result(timed(4, { adapter: device }), 2.5), result(), result(timed(4, { adapter: device, wrong: true }), 'wrong')]).split('\n');
    expect(table[0]).toBe('| model | batch | size | fused ms (IQR) | unfused ms (IQR) | ort-webgpu ms (IQR) | ort-cpu ms (IQR) | cuda ms (IQR) | fused vs unfused | fused vs ort-webgpu | cuda vs fused |');
    expect(table[1].split('|').length).toBe(table[0].split('|').length);
    expect(table[2]).toBe('| convnextv2-atto | 1 | 224x224 | 10.0 (0.5) | 20.0 (0.5) | 15.0 (0.5) | 40.0 (0.5) | 4.0 (0.5) | 2.00x | 1.50x | 2.50x |');
    expect(table[3]).toBe('| convnextv2-atto | 1 | 224x224 | 10.0 (0.5) | 20.0 (0.5) | 15.0 (0.5) | 40.0 (0.5) | - | 2.00x | 1.50x | - |');
    expect(table[4]).toMatch(/\| 4\.0 \(0\.5\) wrong \| 2\.00x \| 1\.50x \| wrong \|$/);
  });

  it('names the CUDA device in the terminal table, apart from the WebGPU adapter', () => {
    const text = formatTable(result(timed(4, { adapter: device }), 2.5));
    expect(text).toMatch(/^convc cuda\s+4\.00\s.*\s1\.0e-6\s+cuda$/m);
    expect(text).toContain(`convc cuda device: ${device}; not the WebGPU adapter`);
    expect(text).toMatch(/cuda vs fused: 2\.50x/);
    expect(formatTable(result({ not_run: 'no CUDA driver' }))).not.toMatch(/cuda/);
  });
});
