// "Never lose a user's files": compile replaces only its own output, staging never outlives an
// error or Ctrl-C, and bad input or output paths are clear errors before the expensive work.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { writeDirectoryAtomically } from '../../src/util/atomic-write.js';
import { planOutputDirectory } from '../../src/util/output-directory.js';
import { captureIo, repoPath } from '../helpers.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'convc-safety-'));
const atto = repoPath('models/convnextv2-atto.cnx');
const small = ['--size', '32'];
const leftovers = (dir: string) => readdirSync(dir).filter((name) => /convc-(staging|previous|partial|probe)/.test(name));

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

function expectUserError(result: { code: number; err: string }, message: RegExp) {
  expect(result.code).toBe(2);
  expect(result.err).toMatch(message);
  expect(result.err).not.toMatch(/\n\s+at |internal error/);
}

/** A folder of the user's: a model and notes, nothing convc wrote. */
function sourceFolder(dir: string): string {
  const folder = join(dir, 'src');
  mkdirSync(folder);
  writeFileSync(join(folder, 'mine.cnx'), readFileSync(atto, 'utf8'));
  writeFileSync(join(folder, 'convnextv2.cnx'), readFileSync(repoPath('models/convnextv2.cnx'), 'utf8'));
  writeFileSync(join(folder, 'notes.txt'), 'do not lose me\n');
  return folder;
}

const originalCwd = process.cwd();
const originalHome = process.env.HOME;
afterEach(() => {
  process.chdir(originalCwd);
  if (originalHome === undefined) delete process.env.HOME;
  else process.env.HOME = originalHome;
});

describe('convc compile -o replaces only its own output', () => {
  it('refuses a source folder, names it, and leaves it as it was', async () => {
    const dir = scratch();
    const folder = sourceFolder(dir);
    const result = await convc('compile', atto, ...small, '-o', folder);
    expectUserError(result, new RegExp(`refusing to write the output to '${folder}': it is a directory that convc did not write, holding 'convnextv2\\.cnx', 'mine\\.cnx', 'notes\\.txt'.*--force`));
    expect(readdirSync(folder).sort()).toEqual(['convnextv2.cnx', 'mine.cnx', 'notes.txt']);
    expect(readFileSync(join(folder, 'notes.txt'), 'utf8')).toBe('do not lose me\n');
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses a regular file, even with --force', async () => {
    const dir = scratch();
    const file = join(dir, 'file.txt');
    writeFileSync(file, 'data\n');
    for (const extra of [[], ['--force']]) {
      expectUserError(await convc('compile', atto, ...small, '-o', file, ...extra), /it is a regular file, not a directory; convc compile writes a directory and never replaces a file/);
      expect(readFileSync(file, 'utf8')).toBe('data\n');
    }
    expect(readdirSync(dir)).toEqual(['file.txt']);
  });

  it("refuses -o . and leaves nothing behind, even where '.' is a previous output", async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'keep.txt'), 'x');
    process.chdir(dir);
    expectUserError(await convc('compile', atto, ...small, '-o', '.'), /refusing to write the output to '\.': it is the current directory/);
    expect(readdirSync(dir)).toEqual(['keep.txt']);

    const previous = join(dir, 'previous');
    expect((await convc('compile', atto, ...small, '-o', previous)).code).toBe(0);
    process.chdir(previous);
    const before = readdirSync(previous).sort();
    for (const extra of [[], ['--force']]) {
      expectUserError(await convc('compile', atto, ...small, '-o', '.', ...extra), /it is the current directory, which convc cannot replace while it runs there \(although it holds a previous convc output\)/);
    }
    expect(readdirSync(previous).sort()).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(['keep.txt', 'previous']);
  });

  it('fills a new or empty directory, marks it, and replaces it on the next compile', async () => {
    const dir = scratch();
    const out = join(dir, 'out');
    mkdirSync(out);
    expect((await convc('compile', atto, ...small, '--random-weights', '-o', out)).code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['.convc-output', 'graph.json', 'kernels', 'model.js', 'model.ts', 'summary.txt', 'weights.bin']);
    const marker = readFileSync(join(out, '.convc-output'), 'utf8');
    expect(marker).toMatch(/^convc-output 1\n/);
    expect(marker).toContain('\nweights.bin\n');
    expect(marker).toContain('\nkernels/000-nchw_to_nhwc.wgsl\n');

    // Again, without weights: the old output goes, weights.bin with it.
    const second = await convc('compile', atto, '--size', '64', '-o', out);
    expect(second.code, second.err).toBe(0);
    expect(readdirSync(out)).not.toContain('weights.bin');
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toContain('[1, 3, 64, 64]');
    expect(readdirSync(dir)).toEqual(['out']);
  });

  it('refuses a previous output that holds a file convc did not write', async () => {
    const dir = scratch();
    const out = join(dir, 'out');
    expect((await convc('compile', atto, ...small, '-o', out)).code).toBe(0);
    writeFileSync(join(out, 'kernels', 'my-notes.md'), 'mine');
    expectUserError(await convc('compile', atto, ...small, '-o', out), /holds a previous convc output, but also 'kernels\/my-notes\.md', which convc did not write/);
    expect(readFileSync(join(out, 'kernels', 'my-notes.md'), 'utf8')).toBe('mine');
  });

  it('replaces a non-empty directory with --force', async () => {
    const dir = scratch();
    const other = join(dir, 'other');
    mkdirSync(other);
    writeFileSync(join(other, 'old.txt'), 'old');
    const result = await convc('compile', atto, ...small, '-o', other, '--force');
    expect(result.code, result.err).toBe(0);
    expect(readdirSync(other)).toContain('.convc-output');
    expect(readdirSync(other)).not.toContain('old.txt');
    expect(readdirSync(dir)).toEqual(['other']);
  });

  it('refuses --force for /, the current directory and those above it, a home directory, and the model\'s own folder', async () => {
    const dir = scratch();
    const folder = sourceFolder(dir);
    writeFileSync(join(dir, 'top.txt'), 'x');
    const home = join(dir, 'home');
    mkdirSync(home);
    writeFileSync(join(home, '.bashrc'), 'x');
    process.env.HOME = home;
    process.chdir(folder);
    const cases: [string, RegExp][] = [
      ['/', /refusing to write the output to '\/': it is the root directory/],
      ['.', /it is the current directory/],
      [dir, /it contains the current directory/],
      [home, /it is a home directory/],
    ];
    for (const [target, message] of cases) expectUserError(await convc('compile', atto, ...small, '-o', target, '--force'), message);
    process.chdir(originalCwd);
    expectUserError(await convc('compile', join(folder, 'mine.cnx'), ...small, '-o', folder, '--force'), /it contains the model file/);
    expect(readdirSync(folder).sort()).toEqual(['convnextv2.cnx', 'mine.cnx', 'notes.txt']);
    expect(readdirSync(home)).toEqual(['.bashrc']);
    expect(readdirSync(dir).sort()).toEqual(['home', 'src', 'top.txt']);
  });

  it('names a missing parent directory or an unwritable place before compiling', async () => {
    expectUserError(await convc('compile', atto, ...small, '-o', '/nonexistent/convc/out'), /cannot write the output directory '\/nonexistent\/convc\/out': the directory '\/nonexistent\/convc' does not exist/);
    expectUserError(await convc('compile', atto, ...small, '-o', '/proc/convc-out'), /cannot create files in '\/proc'/);
  });
});

describe('staging directories', () => {
  it('are removed when writing fails', async () => {
    const dir = scratch();
    const plan = planOutputDirectory(join(dir, 'out'));
    await expect(
      writeDirectoryAtomically(plan, (staging) => {
        writeFileSync(join(staging, 'half.bin'), new Uint8Array(1024));
        throw new Error('disk full, say');
      }),
    ).rejects.toThrow('disk full, say');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('are removed, and the user\'s file kept, when the target changes while compiling', async () => {
    const dir = scratch();
    const out = join(dir, 'out');
    mkdirSync(out);
    let finished = false;
    const running = convc('compile', atto, ...small, '--random-weights', '-o', out).finally(() => (finished = true));
    // While the staging directory is being filled, the user puts a file in the empty target.
    let sawStaging = false;
    await new Promise<void>((done) => {
      const poll = () => {
        if (leftovers(dir).length > 0) {
          sawStaging = true;
          writeFileSync(join(out, 'mine.txt'), 'mine');
          return done();
        }
        if (finished) return done();
        setImmediate(poll);
      };
      poll();
    });
    const result = await running;
    expect(sawStaging).toBe(true);
    expectUserError(result, /it is a directory that convc did not write, holding 'mine\.txt'/);
    expect(readdirSync(out)).toEqual(['mine.txt']);
    expect(readdirSync(dir)).toEqual(['out']);
  });
});

describe('bad input and output paths are clear errors, before the model runs', () => {
  it('run --out into a missing directory fails before running', async () => {
    const result = await convc('run', atto, '--random-weights', ...small, '--out', '/nonexistent/x.npy');
    expectUserError(result, /cannot write the output file '\/nonexistent\/x\.npy': the directory '\/nonexistent' does not exist/);
    // The note comes just before the model runs; the check came earlier.
    expect(result.err).not.toContain('note: no --input');
    expect(result.out).toBe('');
  });

  it('run --out refuses a directory, a device and /proc', async () => {
    const dir = scratch();
    expectUserError(await convc('run', atto, '--random-weights', ...small, '--out', dir), /it is a directory; give a file name/);
    expectUserError(await convc('run', atto, '--random-weights', ...small, '--out', '/dev/null'), /'\/dev\/null': it is a character device; convc replaces only regular files/);
    expectUserError(await convc('run', atto, '--random-weights', ...small, '--out', '/proc/x.npy'), /cannot create files in '\/proc'/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('export -o checks its path before building the model', async () => {
    const dir = scratch();
    expectUserError(await convc('export', atto, '--format', 'onnx', '-o', dir), /cannot write the output file '.*': it is a directory/);
    expectUserError(await convc('export', atto, '--format', 'onnx', '-o', '/proc/a/b.onnx'), /cannot create files in '\/proc'/);
  });

  it('--input /dev/zero, a FIFO, and --weights <a directory> are refused', async () => {
    const dir = scratch();
    expectUserError(await convc('run', atto, '--random-weights', '--input', '/dev/zero'), /cannot read input '\/dev\/zero': it is a character device, not a regular file/);
    expectUserError(await convc('run', atto, ...small, '--weights', dir), new RegExp(`cannot read weights '${dir}': it is a directory, not a regular file`));
    expectUserError(await convc('compile', atto, ...small, '--weights', dir, '-o', join(dir, 'out')), /cannot read weights .*: it is a directory/);
    const fifo = join(dir, 'fifo');
    if (spawnSync('mkfifo', [fifo]).status === 0) {
      expectUserError(await convc('run', atto, ...small, '--weights', fifo), /it is a FIFO \(named pipe\), not a regular file/);
    }
    expectUserError(await convc('compile', '/dev/zero', '-o', join(dir, 'out')), /cannot read model file '\/dev\/zero': it is a character device/);
    expect(leftovers(dir)).toEqual([]);
  });
});

describe('Ctrl-C during compile', () => {
  beforeAll(() => {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoPath(''), stdio: 'pipe' });
  }, 120_000);

  it('removes the staging directory and exits 130', async () => {
    const dir = scratch();
    const child = spawn(process.execPath, [repoPath('bin/convc.js'), 'compile', repoPath('models/convnextv2-huge.cnx'), '--random-weights', '-o', join(dir, 'out')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, signal) => done({ code, signal })));
    let interrupted = false;
    const poll = setInterval(() => {
      if (!interrupted && leftovers(dir).some((name) => name.includes('convc-staging'))) {
        interrupted = true;
        child.kill('SIGINT');
      }
    }, 10);
    const { code, signal } = await exited;
    clearInterval(poll);
    expect(interrupted, stderr).toBe(true);
    expect(signal).toBeNull();
    expect(code).toBe(130);
    expect(readdirSync(dir)).toEqual([]);
  }, 300_000);
});

describe('help', () => {
  it('documents --force and the marker', async () => {
    const { out } = await convc('compile', '--help');
    expect(out).toContain('--force');
    expect(out).toContain('.convc-output');
    expect(existsSync(atto)).toBe(true);
  });
});
