// Decoding JPEG and PNG files to RGB bytes for `convc classify`, with sharp (libvips). Like PIL's
// Image.open(...).convert('RGB') that torchvision's loaders use: no EXIF rotation, grayscale
// copied to three channels, alpha dropped (not composited).
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { userError } from '../util/diagnostics.js';
import type { RgbImage } from './preprocess.js';

const formats: Readonly<Record<string, string>> = { jpeg: 'JPEG', png: 'PNG' };

/** Decodes an image file; a missing, corrupt or unsupported file is a user error naming it. */
export async function decodeImageFile(file: string): Promise<RgbImage> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw userError(code === 'ENOENT' ? `${file}: no such image file` : code === 'EISDIR' ? `${file}: is a directory, not an image` : `${file}: cannot be read (${(error as Error).message})`);
  }
  let format: string | undefined;
  try {
    format = (await sharp(bytes).metadata()).format;
  } catch {
    throw userError(`${file}: not a JPEG or PNG image (its contents are not an image format convc reads)`);
  }
  if (format === undefined || !(format in formats)) {
    throw userError(`${file}: a ${format ?? 'unknown'} image; convc classify reads JPEG and PNG`);
  }
  try {
    // failOn 'warning': a truncated or damaged file is refused rather than half decoded.
    const { data, info } = await sharp(bytes, { failOn: 'warning' }).toColourspace('srgb').removeAlpha().raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, channels: 3, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
  } catch (error) {
    throw userError(`${file}: a damaged ${formats[format]} image: ${(error as Error).message.trim()}`);
  }
}
