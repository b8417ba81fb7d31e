// convc's ImageNet evaluation transform against torchvision's (goldens by make-fixtures.py).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeImageFile } from '../../src/image/decode.js';
import { imagenetEval, resizeAndCrop } from '../../src/image/preprocess.js';
import { readNpy } from '../../src/io/npy.js';
import { repoPath } from '../helpers.js';

const fixture = (name: string): string => repoPath(`test/fixtures/images/${name}`);

async function goldenCrop(stem: string): Promise<Uint8Array> {
  const { data, info } = await sharp(fixture(`${stem}.crop224.png`)).raw().toBuffer({ resolveWithObject: true });
  expect([info.width, info.height, info.channels]).toEqual([224, 224, 3]);
  return new Uint8Array(data);
}

function countDiffering(a: Uint8Array, b: Uint8Array): { count: number; max: number } {
  let count = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > 0) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

describe('the ImageNet evaluation transform', () => {
  // PNG is lossless and the resize does Pillow's integer arithmetic: the bytes must be the same.
  for (const name of ['shapes.png', 'gray.png']) {
    it(`gives torchvision's bytes for ${name} (Resize(256, bicubic) + CenterCrop(224))`, async () => {
      const image = await decodeImageFile(fixture(name));
      const crop = resizeAndCrop(image, 256, 224);
      expect(countDiffering(crop, await goldenCrop(name.replace('.png', '')))).toEqual({ count: 0, max: 0 });
    });
  }

  it("gives torchvision's bytes for a JPEG too", async () => {
    // sharp 0.35.5 (pinned; mozjpeg) and Debian's PIL (libjpeg-turbo) share the integer IDCT and
    // fancy upsampling and decode this 4:2:0 file to the same bytes. Nothing promises that
    // across decoder versions: if a sharp upgrade breaks only this test, compare the decodes.
    const image = await decodeImageFile(fixture('portrait.jpg'));
    expect(countDiffering(resizeAndCrop(image, 256, 224), await goldenCrop('portrait'))).toEqual({ count: 0, max: 0 });
  });

  for (const name of ['shapes.png', 'gray.png', 'portrait.jpg']) {
    it(`matches torchvision's whole transform (crop 64, resize 73, normalised) for ${name}`, async () => {
      const golden = readNpy(readFileSync(fixture(name.replace(/\.(png|jpg)$/, '.t64.npy'))), name);
      const tensor = imagenetEval(await decodeImageFile(fixture(name)), 64);
      expect(tensor.shape).toEqual(golden.shape);
      let max = 0;
      for (let i = 0; i < golden.data.length; i++) max = Math.max(max, Math.abs(tensor.data[i] - golden.data[i]));
      // The same bytes and the same f32 operations as ToTensor and Normalize: equal.
      expect(max).toBe(0);
    });
  }

  it('drops alpha instead of compositing, and refuses a crop larger than the resize', () => {
    const rgba = { width: 2, height: 2, channels: 4 as const, data: new Uint8Array([10, 20, 30, 0, 10, 20, 30, 255, 10, 20, 30, 7, 10, 20, 30, 128]) };
    expect([...resizeAndCrop(rgba, 2, 2)]).toEqual([10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30]);
    expect(() => resizeAndCrop(rgba, 2, 3)).toThrow(/smaller than the 3x3 crop/);
  });
});
