// convc classify: the top classes of image files, as the reference executor computes them from
// the evaluation transform's tensors; its JSON; and errors that name the file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { executeReference } from '../../src/backends/reference/executor.js';
import { topClasses } from '../../src/image/classes.js';
import { decodeImageFile } from '../../src/image/decode.js';
import { imagenetEval } from '../../src/image/preprocess.js';
import { randomWeights } from '../../src/weights/random.js';
import { captureIo, repoPath, zooGraph } from '../helpers.js';

const model = repoPath('models/convnextv2-atto.cnx');
const images = ['shapes.png', 'portrait.jpg', 'gray.png'].map((name) => repoPath(`test/fixtures/images/${name}`));
const scratch = mkdtempSync(join(tmpdir(), 'convc-classify-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function classify(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await main(['classify', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

interface JsonEntry {
  file: string;
  top: { index: number; label: string; prob: number }[];
}

describe('convc classify', () => {
  it("prints each image's top classes as the reference executor ranks them, as JSON", async () => {
    const { code, out, err } = await classify(model, '--random-weights', '--seed', '3', '--size', '64', '--top', '4', '--json', ...images);
    expect(err).toBe('note: random weights: the classes below mean nothing\n');
    expect(code).toBe(0);
    const entries = JSON.parse(out) as JsonEntry[];
    expect(entries.map((e) => e.file)).toEqual(images);
    // The same weights and transform, one image at a time, on the unfused graph.
    const graph = zooGraph('convnextv2-atto', { batch: 1, height: 64, width: 64 });
    const weights = randomWeights(graph, 3);
    for (const [i, entry] of entries.entries()) {
      const tensor = imagenetEval(await decodeImageFile(images[i]), 64);
      const logits = executeReference(graph, weights, { shape: [...tensor.shape], data: tensor.data }).data;
      const expected = topClasses(logits, 4);
      expect(entry.top.map((c) => c.index)).toEqual(expected.map((c) => c.index));
      expect(entry.top.map((c) => c.label)).toEqual(expected.map((c) => c.label));
      // Batched against one at a time, fused against unfused: f32 summation order only.
      for (const [k, c] of entry.top.entries()) expect(c.prob).toBeCloseTo(expected[k].prob, 5);
      expect(entry.top.every((c, k) => k === 0 || c.prob <= entry.top[k - 1].prob)).toBe(true);
    }
  });

  it('gives each image the same classes when they span several batches (of 8)', async () => {
    const many = Array.from({ length: 9 }, (_, i) => images[i % images.length]);
    const run = async (files: string[]) => JSON.parse((await classify(model, '--random-weights', '--size', '64', '--top', '3', '--json', ...files)).out) as JsonEntry[];
    const alone = await run(images);
    const batched = await run(many);
    expect(batched.map((e) => e.file)).toEqual(many);
    for (const [i, entry] of batched.entries()) {
      const expected = alone[i % images.length];
      expect(entry.top.map((c) => c.index)).toEqual(expected.top.map((c) => c.index));
      for (const [k, c] of entry.top.entries()) expect(c.prob).toBeCloseTo(expected.top[k].prob, 6);
    }
  });

  it('prints a readable table by default, with ImageNet names', async () => {
    const { code, out } = await classify(model, '--random-weights', '--size', '64', images[0]);
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toBe('convnextv2-atto on reference, 64x64 crops:');
    expect(lines[1]).toBe(`${images[0]}:`);
    expect(lines.slice(2)).toHaveLength(5);
    for (const line of lines.slice(2)) expect(line).toMatch(/^ +\d+\.\d\d% +\d+ {2}\S/);
  });

  it('names the file of a corrupt, truncated, unsupported or missing image', async () => {
    const garbage = join(scratch, 'notes.jpg');
    writeFileSync(garbage, 'this is not a picture');
    const truncated = join(scratch, 'cut.png');
    const png = await sharp(images[0]).toBuffer();
    writeFileSync(truncated, png.subarray(0, png.length >> 1));
    const gif = join(scratch, 'anim.gif');
    await sharp(images[0]).gif().toFile(gif);
    const cases: [string, RegExp][] = [
      [garbage, /notes\.jpg: not a JPEG or PNG image/],
      [truncated, /cut\.png: a damaged PNG image/],
      [gif, /anim\.gif: a gif image; convc classify reads JPEG and PNG/],
      [join(scratch, 'missing.png'), /missing\.png: no such image file/],
    ];
    for (const [file, message] of cases) {
      const { code, out, err } = await classify(model, '--random-weights', '--size', '64', images[0], file);
      expect(code, file).toBe(2);
      expect(out).toBe('');
      expect(err).toMatch(message);
    }
  });

  it('refuses a model that is not a classifier and bad options', async () => {
    const fcmae = await classify(repoPath('models/fcmae-convnextv2-atto.cnx'), '--random-weights', '--size', '64', images[0]);
    expect(fcmae.code).toBe(2);
    expect(fcmae.err).toMatch(/is not a classifier/);
    expect((await classify(model, images[0])).err).toMatch(/needs weights/);
    expect((await classify(model, '--random-weights')).err).toMatch(/at least one image/);
    expect((await classify(images[0], '--random-weights')).err).toMatch(/\.cnx file first/);
    expect((await classify(model, '--random-weights', '--top', '0', images[0])).err).toMatch(/--top needs a positive integer/);
  });
});
