// A WebGPU command prints convc's output and nothing of Dawn's native chatter ("Warning: ...
// artificially reduced", "Couldn't load Vulkan", Mesa's XDG_RUNTIME_DIR complaint), which
// --verbose shows, prefixed `dawn: `. Needs a WebGPU adapter (npm test's pretest sets one up).
import { chmodSync, lstatSync, mkdtempSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { captureNativeStderr } from '../../src/backends/webgpu/quiet-stderr.js';
import { ensureRuntimeDir } from '../../src/backends/webgpu/runtime-dir.js';
import { convcChild } from './child.js';

const savedRuntimeDir = process.env.XDG_RUNTIME_DIR;
afterEach(() => {
  if (savedRuntimeDir === undefined) delete process.env.XDG_RUNTIME_DIR;
  else process.env.XDG_RUNTIME_DIR = savedRuntimeDir;
});

describe('native stderr', () => {
  it('is captured around the work and handed to the log, in order with convc own lines', async () => {
    const lines: string[] = [];
    const result = await captureNativeStderr(async (log) => {
      writeSync(2, 'Warning: written to fd 2 as dawn.node does\n');
      log('a line of convc');
      await new Promise((resolve) => setTimeout(resolve, 10));
      writeSync(2, 'error: another one\n');
      return 42;
    }, (line) => lines.push(line));
    expect(result).toBe(42);
    expect(lines).toEqual(['dawn: Warning: written to fd 2 as dawn.node does', 'a line of convc', 'dawn: error: another one']);
  });

  it('is handed over also when the work throws', async () => {
    const lines: string[] = [];
    await expect(
      captureNativeStderr(async () => {
        writeSync(2, 'Warning: before the error\n');
        throw new Error('no adapter');
      }, (line) => lines.push(line)),
    ).rejects.toThrow('no adapter');
    expect(lines).toEqual(['dawn: Warning: before the error']);
  });
});

describe('XDG_RUNTIME_DIR', () => {
  it('is set to a private directory when unset or invalid, and left alone when fine', () => {
    delete process.env.XDG_RUNTIME_DIR;
    const made = ensureRuntimeDir();
    expect(made).toBeDefined();
    expect(process.env.XDG_RUNTIME_DIR).toBe(made);
    expect(lstatSync(made!).mode & 0o777).toBe(0o700);

    process.env.XDG_RUNTIME_DIR = '/nonexistent/run';
    expect(ensureRuntimeDir()).toBe(made);

    const open = mkdtempSync(join(tmpdir(), 'convc-open-'));
    process.env.XDG_RUNTIME_DIR = open;
    chmodSync(open, 0o755);
    expect(ensureRuntimeDir()).toBe(made);

    const fine = mkdtempSync(join(tmpdir(), 'convc-fine-'));
    process.env.XDG_RUNTIME_DIR = fine;
    expect(ensureRuntimeDir()).toBeUndefined();
    expect(process.env.XDG_RUNTIME_DIR).toBe(fine);
  });
});

describe('convc run --backend webgpu', () => {
  const args = ['run', 'models/convnextv2-atto.cnx', '--random-weights', '--backend', 'webgpu', '--size', '32'];
  // Like a fresh login shell on a server: no XDG_RUNTIME_DIR.
  const env = { ...process.env };
  delete env.XDG_RUNTIME_DIR;

  it("prints only convc's output; --verbose shows Dawn's lines", () => {
    const plain = convcChild(args, { env });
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/convnextv2-atto on webgpu \(.*\): input \[1, 3, 32, 32\] -> output \[1, 1000\]/);
    expect(plain.stderr).not.toMatch(/^Warning:/m);
    expect(plain.stderr).not.toMatch(/XDG_RUNTIME_DIR/);
    expect(plain.stderr).not.toMatch(/Couldn't load Vulkan/);
    expect(plain.stderr).toBe('note: no --input given; using a random N(0, 1) input of shape [1, 3, 32, 32]\n');

    const verbose = convcChild([...args, '--verbose'], { env: { ...env, XDG_RUNTIME_DIR: '/nonexistent/run' } });
    expect(verbose.status, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/^XDG_RUNTIME_DIR '\/nonexistent\/run' is no private directory; using \S+$/m);
    expect(verbose.stderr).toMatch(/^adapter: /m);
    expect(verbose.stderr).not.toMatch(/^Warning:/m);
    // Dawn warns on every adapter whose dynamic-buffer limits it trims, lavapipe's among them.
    if (/llvmpipe/.test(verbose.stdout)) expect(verbose.stderr).toMatch(/^dawn: Warning: maxDynamic\w+ artificially reduced/m);
  }, 180_000);
});
