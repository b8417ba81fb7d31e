// The CUDA runner's model-independent frame is built with ts-morph once and cached apart from the
// WGSL runner's; a corrupt or unwritable cache costs only a rebuild, never a wrong runner.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildCudaRunnerFrame, loadCudaRunnerFrame } from '../../../src/backends/cuda/runner-frame.js';

describe('the CUDA runner frame cache', () => {
  const built = buildCudaRunnerFrame();
  const cacheDir = () => mkdtempSync(join(tmpdir(), 'convc-cuda-frame-'));

  it('holds createModel in both languages, typed and untyped', () => {
    expect(built.ts).toMatch(/export async function createModel\(weights: ArrayBuffer \| ArrayBufferView, options: CreateModelOptions = \{\}\): Promise<ConvcModel>/);
    expect(built.js).toMatch(/export async function createModel\(weights, options = \{\}\) \{/);
    expect(built.js).not.toMatch(/interface |: Koffi|: CFunction/);
    // Every driver call the runner makes is declared by its versioned name where cuda.h has one.
    for (const call of ['cuMemAlloc_v2', 'cuMemFree_v2', 'cuMemcpyHtoD_v2', 'cuMemcpyDtoH_v2', 'cuDevicePrimaryCtxRelease_v2']) expect(built.ts).toContain(`int ${call}(`);
    expect(built.ts).not.toMatch(/int cuMemAlloc\(|int cuMemcpyHtoD\(/);
  }, 60_000);

  it('stores the frame where none is cached, reads it back, and rebuilds over a corrupt or foreign entry', () => {
    const dir = cacheDir();
    expect(loadCudaRunnerFrame(dir)).toEqual(built);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^cuda-runner-frame-[0-9a-f]{32}\.json$/);
    const file = join(dir, files[0]);
    const whole = readFileSync(file, 'utf8');
    const entry = JSON.parse(whole) as { key: string };
    writeFileSync(file, JSON.stringify({ ...entry, ts: '// cached ts\n', js: '// cached js\n' }));
    expect(loadCudaRunnerFrame(dir)).toEqual({ ts: '// cached ts\n', js: '// cached js\n' });
    for (const junk of [whole.slice(0, whole.length / 2), JSON.stringify({ key: 'another version', ts: 'x', js: 'y' })]) {
      writeFileSync(file, junk);
      expect(loadCudaRunnerFrame(dir)).toEqual(built);
      expect(readFileSync(file, 'utf8')).toBe(whole);
    }
  }, 120_000);

  it('still builds the frame where the cache directory cannot be created', () => {
    const blocker = join(cacheDir(), 'a-file');
    writeFileSync(blocker, '');
    expect(loadCudaRunnerFrame(join(blocker, 'cache'))).toEqual(built);
  }, 60_000);
});
