// The CLI as a user meets it: help, errors, compile's artifact, run against the goldens.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readNpy } from '../../src/io/npy.js';
import { captureIo, goldenCases, goldenDir, goldenFiles, repoPath, scaledDifference } from '../helpers.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'convc-cli-'));

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe('help and argument errors', () => {
  it.each(['compile', 'run', 'inspect', 'classify', 'bench', 'export'])('convc %s --help describes the command and its flags', async (command) => {
    const { code, out } = await convc(command, '--help');
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`^convc ${command} <file\\.cnx>`));
    expect(out).toContain('--model NAME');
  });

  it('documents only flags the command accepts', async () => {
    for (const command of ['compile', 'run', 'inspect', 'classify', 'bench', 'export']) {
      const { out } = await convc(command, '--help');
      for (const flag of out.match(/--[a-z-]+/g) ?? []) {
        const { err } = await convc(command, flag, '--help');
        expect(err, `${command} ${flag}`).not.toMatch(/unknown option/);
      }
    }
  });

  it('lists the commands on --help and fails without one', async () => {
    expect((await convc('--help')).out).toMatch(/compile.*\n.*run.*\n.*inspect/);
    expect((await convc()).code).toBe(2);
  });

  it.each([
    [['compile', 'models/convnextv2-atto.cnx', '--fuse-harder'], /unknown option '--fuse-harder'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['compile'], /needs a \.cnx file/],
    [['inspect', 'models/convnextv2-atto.cnx', '--size', '12by4'], /--size needs HxW/],
    [['inspect', 'models/convnextv2-atto.cnx', '--batch', '0'], /--batch needs a positive integer/],
    [['inspect', 'models/nope.cnx'], /cannot read 'models\/nope\.cnx': no such file/],
    [['run', 'models/convnextv2-atto.cnx', '--random-weights', '--weights', 'w.safetensors'], /either --weights FILE or --random-weights, not both/],
    [['run', 'models/convnextv2-atto.cnx'], /needs weights: --weights FILE or --random-weights/],
    [['run', 'models/convnextv2-atto.cnx', '--random-weights', '--backend', 'tpu'], /unknown backend 'tpu'/],
    [['inspect', 'models/convnextv2-atto.cnx', '--passes', 'fuse-everything'], /unknown pass 'fuse-everything'/],
  ])('%j exits 2 with a clear message and no stack trace', async (args, message) => {
    const { code, err } = await convc(...(args as string[]).map((a) => (a.startsWith('models/') ? repoPath(a) : a)));
    expect(code).toBe(2);
    expect(err).toMatch(message);
    expect(err).not.toMatch(/\n\s+at /);
  });
});

describe('convc inspect', () => {
  it('reports params and MACs as JSON', async () => {
    const { code, out } = await convc('inspect', repoPath('models/convnextv2-tiny.cnx'), '--json');
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect(report.model).toBe('convnextv2-tiny');
    expect(report.params).toBeCloseTo(28.6e6, -5);
    expect(report.macs / 1e9).toBeCloseTo(4.46, 2);
    expect(report.output).toEqual([1, 1000]);
  });

  it('follows PyTorch floor rules at 67x45', async () => {
    const { out } = await convc('inspect', repoPath('models/convnextv2-atto.cnx'), '--size', '67x45', '--batch', '3', '--graph');
    // 67x45 -> stem 16x11 -> 8x5 -> 4x2 -> 2x1.
    expect(out).toMatch(/input\s+\[3, 3, 67, 45\]/);
    expect(out).toMatch(/downsample_layers\.3\.1 : \[3, 320, 2, 1\]/);
  });
});

describe('convc compile', () => {
  it('writes the verified graph and a summary', async () => {
    const out = join(scratch(), 'artifact');
    const { code, out: stdout } = await convc('compile', repoPath('models/convnextv2-base.cnx'), '-o', out);
    expect(code).toBe(0);
    expect(stdout).toContain('compiled convnextv2-base');
    expect(readdirSync(out).sort()).toEqual(['.convc-output', 'graph.json', 'kernels', 'model.js', 'model.ts', 'summary.txt']);
    expect(readdirSync(join(out, 'kernels'))).toContain('000-nchw_to_nhwc.wgsl');
    const graph = JSON.parse(readFileSync(join(out, 'graph.json'), 'utf8'));
    expect(graph.name).toBe('convnextv2-base');
    // Fused by default: each GRN is split, its statistics one node, its apply folded into pwconv2.
    expect(graph.nodes.filter((n: { op: string }) => n.op === 'grn_stats')).toHaveLength(36);
    expect(graph.params.find((p: { key: string }) => p.key === 'stages.2.26.grn.gamma').shape).toEqual([2048]);
    expect(readFileSync(join(out, 'summary.txt'), 'utf8')).toMatch(/params\s+88\d{6}/);
  });

  it('packs weights for the runner with --random-weights', async () => {
    const out = join(scratch(), 'artifact');
    expect((await convc('compile', repoPath('models/convnextv2-atto.cnx'), '-o', out, '--random-weights', '--size', '32')).code).toBe(0);
    // Every weight once, as f32: the parameter count times four bytes.
    expect(readFileSync(join(out, 'weights.bin')).length).toBe(3_708_400 * 4);
  });

  it('leaves no directory behind when the model fails, and keeps an old artifact intact', async () => {
    const dir = scratch();
    const bad = join(dir, 'bad.cnx');
    writeFileSync(bad, `import "${repoPath('models/convnextv2.cnx')}"\nmodel tiny-input = ConvNeXtV2(depths=[1,1,1,1], dims=[8,8,8,8])\n`);
    const out = join(dir, 'out');
    // 16x16 is too small for four downsamplings after the stem (16 -> 4 -> 2 -> 1 -> 0).
    const failed = await convc('compile', bad, '-o', out, '--size', '16');
    expect(failed.code).toBe(2);
    expect(failed.err).toMatch(/does not fit a 1x1 input/);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual(['bad.cnx']);

    expect((await convc('compile', bad, '-o', out)).code).toBe(0);
    const before = readFileSync(join(out, 'graph.json'), 'utf8');
    expect((await convc('compile', bad, '-o', out, '--size', '16')).code).toBe(2);
    expect(readFileSync(join(out, 'graph.json'), 'utf8')).toBe(before);
    expect(readdirSync(dir).sort()).toEqual(['bad.cnx', 'out']);
  });
});

describe('convc run', () => {
  it.each(goldenCases.filter((c) => c.kind === 'model').map((c) => c.name))('reproduces the PyTorch golden %s', async (name) => {
    const { output, paths } = goldenFiles(name);
    const out = join(scratch(), 'y.npy');
    const result = await convc('run', join(goldenDir, 'cases.cnx'), '--model', name, '--weights', paths.weights, '--input', paths.input, '--out', out);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    const y = readNpy(readFileSync(out), out);
    expect(y.shape).toEqual(output.shape);
    // Same tolerance and reason as the golden test of the reference executor.
    expect(scaledDifference(y.data, output.data)).toBeLessThan(2e-6);
    expect(result.out).toMatch(/top classes/);
  });

  it('reproduces a PyTorch golden on the webgpu backend, through the generated runner', async () => {
    const { output, paths } = goldenFiles('convnextv2-mini');
    const out = join(scratch(), 'y.npy');
    const result = await convc('run', join(goldenDir, 'cases.cnx'), '--model', 'convnextv2-mini', '--weights', paths.weights, '--input', paths.input, '--out', out, '--backend', 'webgpu');
    expect(result.code, result.err).toBe(0);
    expect(result.out).toMatch(/on webgpu \(.+\): input \[2, 3, 64, 48\]/);
    // f32 on the GPU against f64 goldens: the WebGPU golden test's 2e-5 of the output's scale.
    expect(scaledDifference(readNpy(readFileSync(out), out).data, output.data)).toBeLessThan(2e-5);
  }, 60_000);

  it('names the input file when its channels do not fit the model', async () => {
    const { paths } = goldenFiles('convnextv2-gray');
    const { code, err } = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--input', paths.input);
    expect(code).toBe(2);
    expect(err).toMatch(/input\.npy: the input has 1 channels \(shape \[2, 1, 32, 32\]\), but model 'convnextv2-atto' takes 3/);
  });

  it('runs V2-atto at 224 with random weights', async () => {
    const out = join(scratch(), 'y.npy');
    const { code, out: stdout } = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--seed', '3', '--out', out);
    expect(code).toBe(0);
    expect(stdout).toContain('input [1, 3, 224, 224] -> output [1, 1000]');
    const y = readNpy(readFileSync(out), out);
    expect(y.data.every(Number.isFinite)).toBe(true);
  });
});

describe('the installed command', () => {
  beforeAll(() => {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoPath(''), stdio: 'pipe' });
  }, 120_000);

  it('runs as bin/convc.js and exits 2 on a user error', () => {
    const ok = spawnSync(process.execPath, [repoPath('bin/convc.js'), 'inspect', repoPath('models/convnextv1-tiny.cnx'), '--json'], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).model).toBe('convnextv1-tiny');
    const bad = spawnSync(process.execPath, [repoPath('bin/convc.js'), 'compile', repoPath('models/convnextv1-tiny.cnx'), '--bogus'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^error: unknown option '--bogus'/);
  });
});
