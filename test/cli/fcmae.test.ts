// `convc run` on FCMAE as a user meets it: the golden cases through the command line, the mask
// given or drawn (and written back), and clear errors for masks that do not fit.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { readNpy, writeNpy } from '../../src/io/npy.js';
import { captureIo, repoPath, scaledDifference } from '../helpers.js';
import { fcmaeCases, fcmaeDir, fcmaeModelLine, fcmaeNpy } from '../models/fcmae-helpers.js';

const scratch = mkdtempSync(join(tmpdir(), 'convc-fcmae-cli-'));

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

function modelFile(c: (typeof fcmaeCases)[number]): string {
  const file = join(scratch, `${c.name}.cnx`);
  writeFileSync(file, `import "${repoPath('models/fcmae.cnx').replace(/\\/g, '/')}"\n${fcmaeModelLine(c)}\n`);
  return file;
}

// As in test/models/fcmae-reference.test.ts: the bound, far below the near misses.
const RTOL = 1e-4;

describe('convc run on FCMAE', () => {
  it.each(fcmaeCases.map((c) => [c.name, c] as const))('%s: writes the golden pred and loss, and prints the loss', async (name, c) => {
    const [pred, loss] = [join(scratch, `${name}-pred.npy`), join(scratch, `${name}-loss.npy`)];
    const files = (f: string) => join(fcmaeDir, name, f);
    const { code, out, err } = await convc('run', modelFile(c), '--weights', files('weights.safetensors'), '--input', files('input.npy'), '--mask', files('mask.npy'), '--out', pred, '--loss-out', loss);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(scaledDifference(readNpy(readFileSync(pred), pred).data, fcmaeNpy(name, 'pred.npy').data)).toBeLessThan(RTOL);
    const written = readNpy(readFileSync(loss), loss);
    expect(written.shape).toEqual([]);
    expect(Math.abs(written.data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
    expect(out).toContain(`-> pred [2, 3072, 2, 2], loss [1]\nloss ${written.data[0].toPrecision(7)}\n`);
  });

  it.each([[], ['--dense-mask'], ['--no-fuse']])('the webgpu backend (lavapipe) writes the golden pred and loss, flags %j', async (...flags: string[]) => {
    const c = fcmaeCases[1];
    const [pred, loss] = [join(scratch, 'webgpu-pred.npy'), join(scratch, 'webgpu-loss.npy')];
    const files = (f: string) => join(fcmaeDir, c.name, f);
    const args = ['run', modelFile(c), '--weights', files('weights.safetensors'), '--input', files('input.npy'), '--mask', files('mask.npy'), '--out', pred, '--loss-out', loss, '--backend', 'webgpu', ...flags];
    const { code, err } = await convc(...args);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(scaledDifference(readNpy(readFileSync(pred), pred).data, fcmaeNpy(c.name, 'pred.npy').data)).toBeLessThan(RTOL);
    expect(Math.abs(readNpy(readFileSync(loss), loss).data[0] - c.loss) / c.loss).toBeLessThan(RTOL);
  }, 120_000);

  it('draws a mask from --mask-ratio and --seed, writes it with --mask-out, and the same mask gives the same loss', async () => {
    const c = fcmaeCases[0];
    const file = modelFile(c);
    const maskOut = join(scratch, 'drawn-mask.npy');
    const first = await convc('run', file, '--random-weights', '--batch', '2', '--size', '96', '--mask-ratio', '0.75', '--seed', '7', '--mask-out', maskOut);
    expect(first.code).toBe(0);
    expect(first.err).toContain('masking 7 of 9 patches of each sample at random (--mask-ratio 0.75 --seed 7)');
    const mask = readNpy(readFileSync(maskOut), maskOut);
    expect(mask.shape).toEqual([2, 9]);
    expect([0, 9].map((n) => mask.data.subarray(n, n + 9).reduce((a, b) => a + b, 0))).toEqual([7, 7]);
    const input = join(scratch, 'drawn-input.npy');
    writeFileSync(input, writeNpy({ shape: [2, 3, 96, 96], data: Float32Array.from({ length: 2 * 3 * 96 * 96 }, (_, i) => Math.sin(i)) }));
    const lossOf = async (...maskArgs: string[]) => (await convc('run', file, '--random-weights', '--seed', '7', '--input', input, ...maskArgs)).out.match(/\nloss (\S+)/)![1];
    expect(await lossOf('--mask', maskOut)).toBe(await lossOf('--mask-ratio', '0.75'));
    expect(await lossOf('--mask', maskOut)).not.toBe(await lossOf('--mask-ratio', '0.5'));
  });

  it('refuses masks of the wrong shape or values, masks that hide nothing, and mask flags for models without a mask', async () => {
    const c = fcmaeCases[0];
    const file = modelFile(c);
    const write = (name: string, shape: number[], data: number[]) => {
      const path = join(scratch, name);
      writeFileSync(path, writeNpy({ shape, data: Float32Array.from(data) }));
      return path;
    };
    const run = (...args: string[]) => convc('run', file, '--random-weights', '--batch', '2', '--size', '64', ...args);
    const shape = await run('--mask', write('shape.npy', [2, 2, 2], [1, 0, 1, 1, 0, 1, 1, 1]));
    expect(shape.code).toBe(2);
    expect(shape.err).toMatch(/shape\.npy: the mask has shape \[2, 2, 2\], but the model needs \[2, 4\]/);
    const values = await run('--mask', write('values.npy', [2, 4], [1, 0, 0.5, 1, 0, 1, 1, 1]));
    expect(values.err).toMatch(/values\.npy: mask value 0\.5 at \[0, 2\]; a mask holds only 0 \(keep\) and 1 \(mask\)/);
    expect((await run('--mask', write('none.npy', [2, 4], [0, 0, 0, 0, 0, 0, 0, 0]))).err).toMatch(/keeps every patch/);
    expect((await run('--mask-ratio', '1.5')).err).toMatch(/--mask-ratio needs a fraction from 0 to 1, got '1\.5'/);
    expect((await run('--mask', 'x.npy', '--mask-ratio', '0.5')).err).toMatch(/use one of them/);
    const classifier = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--size', '32', '--mask-ratio', '0.5', '--loss-out', join(scratch, 'l.npy'));
    expect(classifier.code).toBe(2);
    expect(classifier.err).toMatch(/--mask-ratio: 'convnextv2-atto' takes no patch mask/);
    const loss = await convc('run', repoPath('models/convnextv2-atto.cnx'), '--random-weights', '--size', '32', '--loss-out', join(scratch, 'l.npy'));
    expect(loss.err).toMatch(/--loss-out: 'convnextv2-atto' computes no loss/);
    // The tuner measures kernels fed one image; it says so rather than tuning half a model.
    const tune = await convc('tune', file, '--size', '64');
    expect(tune.code).toBe(2);
    expect(tune.err).toMatch(/convc tune handles models with one image input and one output; 'fcmae-mini' takes mask, input and returns pred, loss/);
  });
});
