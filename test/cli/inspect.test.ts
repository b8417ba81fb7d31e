// convc inspect's kernel views: the --kernels listing and one dispatch's kernel with --kernel N.
import { beforeAll, describe, expect, it } from 'vitest';
import { lowerToWgsl } from '../../src/backends/wgsl/lower.js';
import type { WgslProgram } from '../../src/backends/wgsl/program.js';
import { renderWgsl } from '../../src/backends/wgsl/render.js';
import { main } from '../../src/cli/main.js';
import { pipelines } from '../../src/passes/manager.js';
import { captureIo, repoPath, zooGraph } from '../helpers.js';

// Small enough to be quick, large enough that every stage keeps a spatial extent.
const size = '64';
const atto = repoPath('models/convnextv2-atto.cnx');

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

// The program the CLI lowers for the same model, size and (default, fused) pipeline.
let program: WgslProgram;
beforeAll(() => {
  program = lowerToWgsl(zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 }, pipelines.fused));
});

describe('convc inspect --kernels', () => {
  it('lists one line per dispatch under a header, with its schedule', async () => {
    const { code, out, err } = await convc('inspect', atto, '--size', size, '--kernels');
    expect(err).toBe('');
    expect(code).toBe(0);
    const lines = out.split('\n');
    const header = lines.findIndex((l) => /^\s*#\s+kernel\s+schedule\s+workgroups x threads\s+covers$/.test(l));
    expect(header).toBeGreaterThan(0);
    const rows = lines.slice(header + 1).filter((l) => l !== '');
    expect(rows).toHaveLength(program.dispatches.length);
    rows.forEach((row, i) => {
      const p = program.programs[i];
      expect(row).toMatch(new RegExp(`^\\s*${i}\\s+${p.name}\\s+${String(p.schedule.strategy)}\\b.*\\s${p.workgroups} x ${p.workgroupSize}\\s+`));
      expect(row.endsWith(program.dispatches[i].covers)).toBe(true);
    });
    for (const strategy of ['gemm', 'pixel', 'window', 'sample']) expect(out).toMatch(new RegExp(`\\s${strategy}\\b`));
    expect(out).toMatch(/gemm rows=\d+ cols=\d+ depth=\d+ thread=\d+x\d+/);
    // Columns line up: every row's covers column starts where the header's does.
    const coversAt = lines[header].indexOf('covers');
    for (const [i, row] of rows.entries()) expect(row.slice(coversAt)).toBe(program.dispatches[i].covers);
  });

  it('adds a kernels array to the JSON report only when asked', async () => {
    const plain = JSON.parse((await convc('inspect', atto, '--size', size, '--json')).out);
    expect(plain.kernels).toBeUndefined();
    const { code, out } = await convc('inspect', atto, '--size', size, '--json', '--kernels');
    expect(code).toBe(0);
    const report = JSON.parse(out);
    expect({ ...report, kernels: undefined }).toEqual({ ...plain, kernels: undefined });
    expect(report.kernels).toHaveLength(report.dispatches);
    expect(report.dispatches).toBe(program.dispatches.length);
    expect(report.kernels[3]).toEqual({
      index: 3,
      name: program.programs[3].name,
      schedule: program.programs[3].schedule,
      workgroups: program.programs[3].workgroups,
      workgroup_size: program.programs[3].workgroupSize,
      covers: program.dispatches[3].covers,
      sparse: false,
    });
  });
});

describe('convc inspect --kernel N', () => {
  it('prints the kernel program, then its WGSL, and nothing else', async () => {
    const { code, out } = await convc('inspect', atto, '--size', size, '--kernel', '3');
    expect(code).toBe(0);
    const name = program.programs[3].name;
    const [text, wgsl] = out.split('# dispatch 3: WGSL\n');
    expect(text.startsWith(`# dispatch 3: kernel program\nkernel ${name}\n`)).toBe(true);
    expect(wgsl).toContain('@compute');
    expect(wgsl).toContain(`fn ${name}(`);
    expect(wgsl).toBe(renderWgsl(program.programs[3]));
    expect(out).not.toMatch(/^params/m);
  });

  it('prints {index, name, schedule, text, wgsl} with --json', async () => {
    const { code, out } = await convc('inspect', atto, '--size', size, '--kernel', '3', '--json');
    expect(code).toBe(0);
    const kernel = JSON.parse(out);
    expect(Object.keys(kernel)).toEqual(['index', 'name', 'schedule', 'text', 'wgsl']);
    expect(kernel.index).toBe(3);
    expect(kernel.name).toBe(program.programs[3].name);
    expect(kernel.schedule).toEqual(program.programs[3].schedule);
    expect(kernel.text).toMatch(new RegExp(`^kernel ${kernel.name}\\n`));
    expect(kernel.wgsl).toBe(renderWgsl(program.programs[3]));
  });

  it.each([
    ['999', /--kernel 999: the model has (\d+) dispatches \(0\.\.(\d+)\)/],
    ['abc', /--kernel needs a dispatch index, an integer in 0\.\.(\d+); got 'abc'/],
    ['1.5', /--kernel needs a dispatch index, an integer in 0\.\.(\d+); got '1\.5'/],
    ['=-1', /--kernel needs a dispatch index, an integer in 0\.\.(\d+); got '-1'/],
  ])('--kernel %s is a user error that gives the valid range', async (value, message) => {
    const args = value.startsWith('=') ? [`--kernel${value}`] : ['--kernel', value];
    const { code, out, err } = await convc('inspect', atto, '--size', size, ...args);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(message);
    expect(err).toContain(`0..${program.dispatches.length - 1}`);
    expect(err).not.toMatch(/\n\s+at /);
  });

  it('the last dispatch is in range, one past it is not', async () => {
    const last = program.dispatches.length - 1;
    expect((await convc('inspect', atto, '--size', size, '--kernel', String(last))).code).toBe(0);
    const { code, err } = await convc('inspect', atto, '--size', size, '--kernel', String(last + 1));
    expect(code).toBe(2);
    expect(err).toContain(`the model has ${last + 1} dispatches (0..${last})`);
  });

  it('names FCMAE\'s inputs and outputs and marks the dispatches computing on visible patches only', async () => {
    const io = captureIo();
    expect(await main(['inspect', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--kernels'], io)).toBe(0);
    const out = io.out();
    expect(out).toMatch(/^inputs {6}input \[1, 3, 64, 64\] f32\n {12}mask \[1, 4\] f32$/m);
    expect(out).toMatch(/^outputs {5}pred \[1, 3072, 2, 2\] f32\n {12}loss \[1\] f32$/m);
    const sparse = Number(out.match(/; (\d+) of them sparse/)![1]);
    expect(sparse).toBeGreaterThan(20);
    expect(out.match(/\[sparse\] /g)).toHaveLength(sparse);
    expect(out).toMatch(/\[sparse\] %\d+ linear\+gelu encoder\.stages\.0\.0\.pwconv1/);
    const dense = captureIo();
    expect(await main(['inspect', repoPath('models/fcmae-convnextv2-atto.cnx'), '--size', '64', '--kernels', '--dense-mask'], dense)).toBe(0);
    expect(dense.out()).not.toContain('[sparse]');
  });
});

