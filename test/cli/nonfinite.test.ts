// A forward pass whose output holds NaN or infinity is an error (exit 1), never a result, and
// --debug-nonfinite names where the first such value came from.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { randomWeights } from '../../src/weights/random.js';
import { captureIo, goldenDir, goldenFiles, goldenGraph } from '../helpers.js';

async function convc(...args: string[]) {
  const io = captureIo();
  const code = await main(args, io);
  return { code, out: io.out(), err: io.err() };
}

/** The convnextv2-mini golden's weights with one value of stage 1's first pwconv2 made NaN. */
function poisonedWeights(): string {
  const { input } = goldenFiles('convnextv2-mini');
  const weights = new Map(randomWeights(goldenGraph('convnextv2-mini', input), 3));
  const key = 'stages.1.0.pwconv2.weight';
  const tensor = weights.get(key)!;
  const data = Float32Array.from(tensor.data);
  data[5] = Number.NaN;
  weights.set(key, { shape: tensor.shape, data });
  const file = join(mkdtempSync(join(tmpdir(), 'convc-nonfinite-')), 'poisoned.safetensors');
  writeFileSync(file, writeSafetensors(weights));
  return file;
}

describe('non-finite output', () => {
  const weights = poisonedWeights();
  const cases = join(goldenDir, 'cases.cnx');
  const { paths } = goldenFiles('convnextv2-mini');

  it('is an error with exit code 1 on the reference backend, and says how to find its origin', async () => {
    const { code, out, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--weights', weights, '--input', paths.input);
    expect(code).toBe(1);
    expect(out).not.toMatch(/top classes/);
    expect(err).toMatch(/error: convnextv2-mini on reference: the output has 20 non-finite value\(s\) of 20 \(first: NaN at element 0\)/);
    expect(err).toMatch(/rerun with --debug-nonfinite/);
    expect(err).not.toMatch(/internal error|\n\s+at /);
  });

  it('--debug-nonfinite names the first IR node that produced one (reference)', async () => {
    const { code, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--weights', weights, '--input', paths.input, '--debug-nonfinite');
    expect(code).toBe(1);
    expect(err).toMatch(/note: IR node %\d+ grn_apply\+linear\+add stages\.1\.0\.pwconv2 \[2, 32, 8, 6\] first produced NaN at element 0 \(NCHW\)/);
  });

  it.each(['vulkan', 'gl'])('--debug-nonfinite names the first kernel that wrote one (webgpu on %s, fused)', async (adapter) => {
    const { code, out, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--weights', weights, '--input', paths.input, '--backend', 'webgpu', '--adapter', adapter, '--debug-nonfinite');
    expect(code).toBe(1);
    expect(out).toBe('');
    // pwconv2 of stage 1's first block is fused with the GRN before it and the residual after.
    expect(err).toMatch(/note: dispatch \d+ \(kernel grn_apply_linear_add\w*, computing %\d+ grn_apply\+linear\+add stages\.1\.0\.pwconv2 \[2, 32, 8, 6\]\) first wrote NaN at element \d+/);
  }, 120_000);

  it('--adapter takes auto, vulkan or gl only', async () => {
    const { code, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--random-weights', '--backend', 'webgpu', '--adapter', 'metal');
    expect(code).toBe(2);
    expect(err).toMatch(/--adapter needs one of auto, vulkan, gl; got 'metal'/);
  });
});

describe('--seed beside --weights', () => {
  const cases = join(goldenDir, 'cases.cnx');
  const { paths } = goldenFiles('convnextv2-mini');

  it('says it is ignored when weights and input both come from files', async () => {
    const { code, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--weights', paths.weights, '--input', paths.input, '--seed', '7');
    expect(code).toBe(0);
    expect(err).toMatch(/note: --seed is ignored: it seeds random weights \(and a random input\), and here they come from files/);
  });

  it('stays quiet when it seeds the random input', async () => {
    const { code, err } = await convc('run', cases, '--model', 'convnextv2-mini', '--weights', paths.weights, '--seed', '7', '--size', '32');
    expect(code).toBe(0);
    expect(err).not.toMatch(/--seed is ignored/);
  });
});
