// The runner's model-independent frame is built with ts-morph once and cached; a missing,
// corrupt or unwritable cache costs only a rebuild, never a wrong runner.
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildRunnerFrame, loadRunnerFrame } from '../../../src/backends/wgsl/runner-frame.js';

describe('the runner frame cache', () => {
  const built = buildRunnerFrame();
  const cacheDir = () => mkdtempSync(join(tmpdir(), 'convc-frame-'));
  const cacheFile = (dir: string) => {
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^runner-frame-[0-9a-f]{32}\.json$/);
    return join(dir, files[0]);
  };

  it('holds the frame in both languages: createModel, typed and untyped', () => {
    expect(built.ts).toMatch(/export async function createModel\(device: GPUDevice, weights: ArrayBuffer \| ArrayBufferView\): Promise<ConvcModel>/);
    expect(built.ts).toMatch(/export interface ConvcModel/);
    expect(built.js).toMatch(/export async function createModel\(device, weights\) \{/);
    expect(built.js).not.toMatch(/interface|: GPUDevice/);
  }, 60_000);

  it('builds and stores the frame where none is cached, then reads it back', () => {
    const dir = cacheDir();
    expect(loadRunnerFrame(dir)).toEqual(built);
    const file = cacheFile(dir);
    // What the cache holds is what is used: a changed entry (same key) comes back as written.
    const entry = JSON.parse(readFileSync(file, 'utf8')) as { key: string };
    writeFileSync(file, JSON.stringify({ ...entry, ts: '// cached ts\n', js: '// cached js\n' }));
    expect(loadRunnerFrame(dir)).toEqual({ ts: '// cached ts\n', js: '// cached js\n' });
  }, 60_000);

  it('rebuilds over a corrupt, truncated or mismatched cache file, and replaces it', () => {
    const dir = cacheDir();
    loadRunnerFrame(dir);
    const file = cacheFile(dir);
    const whole = readFileSync(file, 'utf8');
    for (const junk of [whole.slice(0, whole.length / 2), '\u0000\u0001not json', JSON.stringify({ key: 'another version', ts: 'x', js: 'y' })]) {
      writeFileSync(file, junk);
      expect(loadRunnerFrame(dir)).toEqual(built);
      expect(readFileSync(file, 'utf8')).toBe(whole);
    }
  }, 120_000);

  it('still builds the frame where the cache directory cannot be created', () => {
    const blocker = join(cacheDir(), 'a-file');
    writeFileSync(blocker, '');
    expect(loadRunnerFrame(join(blocker, 'cache'))).toEqual(built);
  }, 60_000);
});
